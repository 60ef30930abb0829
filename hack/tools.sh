#!/usr/bin/env bash
# Installs the Go tools cccp's tests drive into bin/tools: the cosign CLI,
# which checks that cccp's signatures and attestations are what cosign users
# verify, and helm, which lints and renders charts/cccp (deploy/deploytest).
# Each is built from source with `go install` once per machine, into
# ${XDG_CACHE_HOME:-~/.cache}/cccp/tools/<tool>-<version>, and copied from
# there: a fresh clone (CI's) does not build it again. Building both from
# cold caches takes minutes on 2 cores (measured: cosign 79 min, helm 22 min
# while seven other builds shared the machine; the timings are printed).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/bin/tools"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cccp/tools"
mkdir -p "$bin" "$cache"

# tool NAME VERSION PACKAGE: bin/tools/NAME from the machine's cache, built
# there first when missing.
tool() {
  local name=$1 version=$2 pkg=$3
  local cached="$cache/$name-$version"
  if [ ! -x "$cached" ]; then
    echo "installing $name $version (go install $pkg@$version)" >&2
    local start tmp
    start=$(date +%s)
    tmp=$(mktemp -d "$cache/.build-XXXXXX")
    GOBIN="$tmp" go install "$pkg@$version"
    mv "$tmp/$name" "$cached"
    rmdir "$tmp"
    echo "$name installed in $(( $(date +%s) - start ))s" >&2
  fi
  if ! cmp -s "$cached" "$bin/$name"; then
    cp "$cached" "$bin/$name.tmp" && mv "$bin/$name.tmp" "$bin/$name"
  fi
}

tool cosign v2.6.5 github.com/sigstore/cosign/v2/cmd/cosign
tool helm v3.22.0 helm.sh/helm/v3/cmd/helm
