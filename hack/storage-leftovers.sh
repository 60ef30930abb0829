#!/bin/sh
# Runs a command (by default the container-heavy tests) with the machine's
# default container storage replaced by a probe storage of its own
# (CONTAINERS_STORAGE_CONF), and lists what is left in the probe afterwards:
# what the command would have left in root's /var/lib/containers/storage.
# Other users of the machine do not show up in it. A test run should leave
# only the kept test bases (localhost/busybox:latest, made once per machine
# by internal/testimage).
#
#   hack/storage-leftovers.sh [COMMAND...]
#   default: go test -count=1 -timeout 30m ./internal/backend/local/ ./internal/buildah/
set -eu
[ $# -gt 0 ] || set -- go test -count=1 -timeout 30m ./internal/backend/local/ ./internal/buildah/
probe=$(mktemp -d /tmp/cccp-probe-XXXXXX) # short: podman refuses a run root over 50 characters
g="--root $probe/root --runroot $probe/run"
cleanup() {
  buildah $g rm --all >/dev/null 2>&1 || true
  buildah $g rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$probe"
}
trap cleanup EXIT
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n' "$probe" "$probe" >"$probe/storage.conf"
status=0
CONTAINERS_STORAGE_CONF=$probe/storage.conf "$@" || status=$?
left=$({ buildah $g images --all --no-trunc --format 'image {{.ID}} {{.Name}}:{{.Tag}}'
  buildah $g containers --all --format 'container {{.ContainerID}} {{.ContainerName}}'; } 2>/dev/null || true)
echo "storage-leftovers: $(printf '%s\n' "$left" | grep -c '^image' || true) images, $(printf '%s\n' "$left" | grep -c '^container' || true) containers left"
[ -z "$left" ] || printf '%s\n' "$left"
exit $status
