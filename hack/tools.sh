#!/usr/bin/env bash
# Installs the Go tools cccp's tests drive into bin/tools (project-local,
# kept between runs): the cosign CLI, which checks that cccp's signatures
# and attestations are what cosign users verify, and helm, which lints and
# renders charts/cccp (deploy/deploytest). A tool already there at the
# wanted version is not rebuilt. Building each from source takes a few
# minutes the first time (see the timings printed).
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
# helm renders and lints charts/cccp in deploy/deploytest.
helm_version=v3.22.0
# (helm built by go install reports only "v3.22"; the module version is exact.)
if ! go version -m "$bin/helm" 2>/dev/null | grep -q "mod[[:space:]]*helm.sh/helm/v3[[:space:]]*${helm_version}[[:space:]]"; then
  echo "installing helm ${helm_version} into bin/tools" >&2
  start=$(date +%s)
  GOBIN="$bin" go install "helm.sh/helm/v3/cmd/helm@${helm_version}"
  # Measured: 1301 s on a 2-core machine under heavy load (cold module and build caches).
  echo "helm installed in $(( $(date +%s) - start ))s" >&2
fi
