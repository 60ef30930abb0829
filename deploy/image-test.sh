#!/bin/sh
# cccp's own test of its image (test-script in /cccp.yaml): the pipeline runs
# it in its sandbox with IMAGE_NAME (the image by digest) and CONTAINER_NAME
# (a running container of it). The image runs cccp as UID 1001 and carries
# the tools the local backend drives.
set -eu
x() { podman --runtime runc exec "$CONTAINER_NAME" "$@"; }
v=$(x cccp version)
echo "$v"
case $v in "cccp "?*) ;; *) echo "unexpected cccp version output: $v" >&2; exit 1 ;; esac
uid=$(x id -u)
[ "$uid" = 1001 ] || { echo "cccp runs as UID $uid, not 1001" >&2; exit 1; }
for tool in buildah podman runc skopeo git; do
  x "$tool" --version | head -n 1
done
