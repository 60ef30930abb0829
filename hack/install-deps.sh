#!/usr/bin/env bash
# Installs the system packages cccp drives on one machine: buildah builds,
# podman and runc run test containers, skopeo checks delivered images,
# busybox-static makes base images without a registry, chromium runs the
# browser tests, debootstrap makes the Debian base of the test that builds
# cccp's own image. Repository code runs in a box: bubblewrap for scripts,
# rootless podman (uidmap, slirp4netns, fuse-overlayfs) for their
# containers, both as the unprivileged user CCCP_SANDBOX_USER (default
# cccp-sandbox), which this script creates with subuid/subgid ranges and
# a container storage of its own. Debian 12 package names; needs root (or
# sudo). Idempotent: a second run changes nothing.
set -euo pipefail
pkgs=(git buildah podman runc skopeo busybox-static chromium wrk uidmap slirp4netns fuse-overlayfs bubblewrap debootstrap)
sandbox_user="${CCCP_SANDBOX_USER:-cccp-sandbox}"
sandbox_home="${CCCP_SANDBOX_HOME:-/var/lib/$sandbox_user}"

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

# The sandbox user: a system account without a login shell, owning only its
# home (per-run podman storage lives under it).
if ! getent passwd "$sandbox_user" >/dev/null; then
  $sudo useradd --system --user-group --home-dir "$sandbox_home" --create-home \
    --shell /usr/sbin/nologin "$sandbox_user"
fi
$sudo chmod 0711 "$sandbox_home"

# Subordinate ids for its rootless containers: useradd --system writes none.
# 65536 ids after the highest range already handed out (at least 100000).
add_range() { # file flag
  local file=$1 flag=$2
  grep -q "^$sandbox_user:" "$file" 2>/dev/null && return 0
  local start
  start=$(awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}' "$file" 2>/dev/null || echo 100000)
  $sudo usermod "$flag" "$start-$((start + 65535))" "$sandbox_user"
}
add_range /etc/subuid --add-subuids
add_range /etc/subgid --add-subgids

# slirp4netns (a test container that asks for a network) needs the tun
# device; some VMs ship it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  $sudo chmod 0666 /dev/net/tun
fi

# Its container storage: native overlay when the kernel lets an
# unprivileged user mount it (Linux >= 5.13), fuse-overlayfs otherwise;
# never vfs, which copies every layer.
conf="$sandbox_home/.config/containers"
if [ ! -f "$conf/storage.conf" ]; then
  $sudo install -d -o "$sandbox_user" -g "$sandbox_user" -m 0700 "$sandbox_home/.config" "$conf"
  major=$(uname -r | cut -d. -f1); minor=$(uname -r | cut -d. -f2)
  if [ "$major" -gt 5 ] || { [ "$major" -eq 5 ] && [ "$minor" -ge 13 ]; }; then
    opts=''
  else
    opts='mount_program = "/usr/bin/fuse-overlayfs"'
  fi
  printf '[storage]\ndriver = "overlay"\n[storage.options.overlay]\n%s\n' "$opts" |
    $sudo install -o "$sandbox_user" -g "$sandbox_user" -m 0600 /dev/stdin "$conf/storage.conf"
fi
