#!/bin/sh
# Runs on the host with IMAGE_NAME and CONTAINER_NAME set by cccp.
set -eu
echo "testing $IMAGE_NAME in $CONTAINER_NAME"
podman --runtime runc exec "$CONTAINER_NAME" sh -c 'busybox --help >/dev/null && test -d /tmp'
