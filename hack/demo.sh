#!/usr/bin/env bash
# Runs cccp on the demo index (testdata/demo) on this machine:
# makes a git repository of each demo application, writes the index with
# file:// URLs to them, and runs the whole pipeline against cccp's embedded
# registry. Usage: hack/demo.sh BIN DATA
set -euo pipefail
bin=${1:-bin/cccp}
data=${2:-.cccp-data}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$data"
data=$(cd "$data" && pwd)
git_dir=$data/demo/git
index_dir=$data/demo/index

rm -rf "$git_dir" "$index_dir"
mkdir -p "$git_dir" "$index_dir/index.d"
for app in "$root"/testdata/demo/apps/*/; do
  name=$(basename "$app")
  repo=$git_dir/$name
  cp -r "$app" "$repo"
  # No base image can be pulled here: the base image carries Debian's
  # static busybox.
  if [ -f "$repo/Dockerfile" ] && grep -q 'COPY busybox' "$repo/Dockerfile"; then
    cp /bin/busybox "$repo/busybox"
  fi
  git -C "$repo" init -q -b master
  git -C "$repo" add -A
  git -C "$repo" -c user.name=cccp-demo -c user.email=demo@cccp.invalid commit -qm "demo application $name"
done
for f in "$root"/testdata/demo/index.d/*.yaml; do
  sed "s|\${GIT}|$git_dir|g" "$f" > "$index_dir/index.d/$(basename "$f")"
done

"$bin" index lint --allow-file-urls "$index_dir"
status=0
"$bin" run --index "$index_dir" --data "$data" --allow-file-urls || status=$?
[ "${CCCP_DEMO_SERVE:-1}" = 1 ] || exit $status

listen=${CCCP_LISTEN:-127.0.0.1:8080}
# Re-run, cancel and onboarding need a signed-in admin: a token for this demo.
export CCCP_ADMIN_TOKENS=${CCCP_ADMIN_TOKENS:-$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')}
echo
echo "cccp: the web UI is at http://$listen/ (runs, logs, onboarding); Ctrl-C stops it."
echo "cccp: sign in with the admin token $CCCP_ADMIN_TOKENS"
echo "cccp: images stay in the registry under $data; pull them with"
echo "      podman pull --tls-verify=false 127.0.0.1:5115/demo/hello:latest  (while cccp serves)"
exec "$bin" serve --index "$index_dir" --data "$data" --allow-file-urls --listen "$listen"
