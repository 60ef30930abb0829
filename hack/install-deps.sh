#!/usr/bin/env bash
# Installs the system packages cccp drives on one machine: buildah builds,
# podman and runc run test containers, skopeo checks delivered images,
# busybox-static makes base images without a registry, chromium runs the
# browser tests, debootstrap makes the Debian base of the test that builds
# cccp's own image. Repository code runs in a box: bubblewrap for scripts,
# rootless podman (uidmap, slirp4netns, fuse-overlayfs) for their
# containers, both as one of CCCP_SANDBOX_USERS (default 4) unprivileged
# users CCCP_SANDBOX_USER, CCCP_SANDBOX_USER-1, ... (default cccp-sandbox),
# one per box at a time, which this script creates with subuid/subgid
# ranges and a container storage of their own. Builds run their RUN steps
# in a user namespace whose ids come from the subordinate range of the
# user CCCP_BUILD_USER (default cccp-build): CCCP_BUILD_SLOTS (default 16)
# slots of 65536 ids, one per build at a time. Debian 12 package names;
# needs root (or sudo). Idempotent: a second run changes nothing.
set -euo pipefail
pkgs=(git buildah podman runc skopeo busybox-static chromium wrk uidmap slirp4netns fuse-overlayfs bubblewrap debootstrap)
sandbox_user="${CCCP_SANDBOX_USER:-cccp-sandbox}"
sandbox_users="${CCCP_SANDBOX_USERS:-4}"
build_user="${CCCP_BUILD_USER:-cccp-build}"
build_slots="${CCCP_BUILD_SLOTS:-16}"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Subordinate ids: useradd --system writes none. count ids after the
# highest range already handed out (at least 100000), in both files, and
# above every id of a user or group already there (cccp kills whatever
# runs as an id of these ranges, and refuses to start when a user's or
# group's id lies in one).
add_range() { # user count
  local user=$1 count=$2 file flag start ids
  for file in /etc/subuid /etc/subgid; do
    flag=--add-subuids
    ids="/etc/passwd:3"
    if [ "$file" = /etc/subgid ]; then
      flag=--add-subgids
      ids="/etc/passwd:4 /etc/group:3"
    fi
    grep -q "^$user:" "$file" 2>/dev/null && continue
    start=$( (awk -F: '{print $2+$3}' "$file" 2>/dev/null || true
      for f in $ids; do awk -F: -v c="${f#*:}" '$c ~ /^[0-9]+$/ && $c < 2147483648 {print $c+1}' "${f%:*}"; done) |
      awk 'BEGIN{m=100000} $1>m {m=$1} END{print m}')
    $sudo usermod "$flag" "$start-$((start + count - 1))" "$user"
  done
}

# A sandbox user: a system account without a login shell, owning only its
# home (boxes live apart, in root's /var/lib/cccp-boxes/<uid>, which cccp
# makes: root never chowns or mounts inside a folder a sandbox user owns),
# with 65536 subordinate ids for its rootless containers. Its podman runs
# with a HOME, storage and runtime folder of the box's (storage driver
# overlay, set by cccp), so the home holds nothing cccp needs: cccp empties
# it, and the host's /tmp, /var/tmp, /dev/shm of what the user owns,
# whenever a box gives the user back.
add_sandbox_user() { # name
  local user=$1 home=/var/lib/$1
  [ "$user" = "$sandbox_user" ] && home="${CCCP_SANDBOX_HOME:-/var/lib/$user}"
  if ! getent passwd "$user" >/dev/null; then
    $sudo useradd --system --user-group --home-dir "$home" --create-home \
      --shell /usr/sbin/nologin "$user"
  fi
  $sudo chmod 0711 "$home"
  add_range "$user" 65536
}
# One user per box at a time (internal/sandbox hands them out), so that
# two runs' boxes never share a uid: none can signal, trace or read the
# other's processes and files.
add_sandbox_user "$sandbox_user"
for i in $(seq 1 $((sandbox_users - 1))); do
  add_sandbox_user "$sandbox_user-$i"
done

# The build user owns no process and no file: it only holds the
# subordinate ids that builds map root of their RUN steps to.
if ! getent passwd "$build_user" >/dev/null; then
  $sudo useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$build_user"
fi
add_range "$build_user" $((build_slots * 65536))

# slirp4netns (a test container that asks for a network) needs the tun
# device; some VMs ship it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  $sudo chmod 0666 /dev/net/tun
fi

