#!/usr/bin/env bash
# Installs the system packages cccp drives on one machine: buildah builds,
# podman and runc run test containers, skopeo checks delivered images,
# busybox-static makes base images without a registry, chromium runs the
# browser tests. Debian 12 package names; needs root (or sudo).
set -euo pipefail
pkgs=(git buildah podman runc skopeo busybox-static chromium wrk)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
