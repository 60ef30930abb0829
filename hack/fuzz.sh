#!/usr/bin/env bash
# Runs every fuzz target of cccp for a while each (default 30s).
# (`go test` alone runs only their seed corpora.) Usage: hack/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
d=${1:-30s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r f; do
  pkg=./$(dirname "${f#./}")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "== $pkg $target ($d)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$d" -fuzzminimizetime 5s "$pkg"
  done
done
