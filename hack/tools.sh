#!/usr/bin/env bash
# Installs the Go tools cccp's tests drive into bin/tools (project-local,
# kept between runs): the cosign CLI, which checks that cccp's signatures
# and attestations are what cosign users verify. A tool already there at
# the wanted version is not rebuilt. Building cosign from source takes a
# few minutes the first time (see the timing printed).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/bin/tools"
mkdir -p "$bin"
cosign_version=v2.6.5
if ! "$bin/cosign" version 2>/dev/null | grep -q "GitVersion:\s*${cosign_version}"; then
  echo "installing cosign ${cosign_version} into bin/tools" >&2
  start=$(date +%s)
  GOBIN="$bin" go install "github.com/sigstore/cosign/v2/cmd/cosign@${cosign_version}"
  echo "cosign installed in $(( $(date +%s) - start ))s" >&2
fi
