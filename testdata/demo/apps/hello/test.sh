#!/bin/sh
# The web server in the running container answers with the page.
set -eu
podman --runtime runc exec "$CONTAINER_NAME" wget -q -O - http://127.0.0.1:8080/ | grep -q "hello from cccp"
echo "page served"
