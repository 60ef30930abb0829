#!/usr/bin/env bash
# Builds, tests and delivers cccp's own image with cccp (make image): the
# index of testdata/image, its one entry (cccp/cccp, deploy/Containerfile)
# pointed at this repository's current branch as committed, run by
# `cccp run` on the embedded defaults. The image lands in cccp's embedded
# registry as 127.0.0.1:5115/cccp/cccp:latest.
# The Containerfile's bases come from docker.io; where that cannot be
# reached, set CONTAINERS_REGISTRIES_CONF to a registries.conf that mirrors
# docker.io/library/debian and docker.io/library/golang (see
# deploy/imagetest, which does so with bases it makes).
# Usage: hack/image.sh BIN DATA
set -euo pipefail
bin=${1:-bin/cccp}
data=${2:-.cccp-data}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$data"
data=$(cd "$data" && pwd)
branch=$(git -C "$root" rev-parse --abbrev-ref HEAD)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  echo "cccp: note: uncommitted changes are not in the image; it is built from the last commit of $branch" >&2
fi
index_dir=$data/image/index
rm -rf "$index_dir"
mkdir -p "$index_dir/index.d"
sed -e "s|\${GIT_URL}|file://$root|g" -e "s|\${BRANCH}|$branch|g" \
  "$root/testdata/image/index.d/cccp.yaml" > "$index_dir/index.d/cccp.yaml"
"$bin" index lint --allow-file-urls "$index_dir"
exec "$bin" run --index "$index_dir" --data "$data" --allow-file-urls cccp/cccp
