#!/bin/sh
# Runs a command (by default the container-heavy tests) and lists what it
# left in the machine's container storage (root's /var/lib/containers/storage):
# the images and containers there after it that were not there before.
# A test run should leave nothing.
#
#   hack/storage-leftovers.sh [COMMAND...]
#   default: go test -count=1 ./internal/backend/local/ ./internal/buildah/
#
# Other users of the machine (another engineer's tests, the operator's
# podman) add to the storage at the same time; what they add is listed too,
# so read the names. Nothing is removed.
set -eu
[ $# -gt 0 ] || set -- go test -count=1 ./internal/backend/local/ ./internal/buildah/
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
snap() {
  { buildah images --all --no-trunc --format 'image {{.ID}} {{.Name}}:{{.Tag}}'
    buildah containers --all --format 'container {{.ContainerID}} {{.ContainerName}}'
  } | sort >"$1"
}
snap "$tmp/before"
status=0
"$@" || status=$?
snap "$tmp/after"
added=$(comm -13 "$tmp/before" "$tmp/after")
echo "storage-leftovers: before: $(grep -c '^image' "$tmp/before") images, $(grep -c '^container' "$tmp/before") containers;" \
  "after: $(grep -c '^image' "$tmp/after") images, $(grep -c '^container' "$tmp/after") containers;" \
  "new: $(printf '%s' "$added" | grep -c '^image' || true) images, $(printf '%s' "$added" | grep -c '^container' || true) containers"
[ -z "$added" ] || printf '%s\n' "$added"
exit $status
