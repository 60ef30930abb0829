#!/usr/bin/env bash
# make bench: runs every benchmark of cccp's bars and writes BENCHMARKS.md
# with the machine and the date. Methods: ../shared/bench/README.md for
# webhook ingest; Go benchmarks (-count 5, the median reported) elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-BENCHMARKS.md}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count=${BENCH_COUNT:-5}

gobench() { # package, regexp, extra flags... -> raw output in $work/<name>
  local pkg=$1 re=$2; shift 2
  go test -run '^$' -bench "$re" -count "$count" "$@" "$pkg" | tee -a "$work/go.txt" | grep -E '^Benchmark' || true
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "?"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
nsop() { # benchmark name -> median ns/op
  grep -E "^$1(-[0-9]+)? " "$work/go.txt" | awk '{for(i=1;i<=NF;i++) if ($(i+1)=="ns/op") print $i}' | median
}
metric() { # benchmark name, unit -> median of that metric
  grep -E "^$1(-[0-9]+)? " "$work/go.txt" | awk -v u="$2" '{for(i=1;i<=NF;i++) if ($(i+1)==u) print $i}' | median
}

echo "== index lint, 10,000 entries"; gobench ./internal/index 'BenchmarkLint10k$'
echo "== registry retag, 10 MB vs 500 MB"; gobench ./internal/registry 'BenchmarkTag' -benchtime 100x
echo "== dashboard, 300 entries x 30 runs"; gobench ./internal/web 'BenchmarkDashboard$'
echo "== store: deliveries, latest runs"; gobench ./internal/store 'Benchmark(AcceptDelivery|LatestRuns)$'
echo "== up-to-date decision"; gobench ./internal/pipeline 'BenchmarkUpToDateDecision$' -benchtime 100x
echo "== queue: pick among 10,000 runs of 300 projects; enqueue beside them"; gobench ./internal/queue 'BenchmarkPick10kAcross300Projects$'
gobench ./internal/pipeline 'BenchmarkEnqueueWith10kQueued$' -benchtime 50x -count 1
echo "== test stage, demo apps"; gobench ./internal/checks 'BenchmarkTestStage$' -benchtime 1x
echo "== rescan, 300 delivered images"; gobench ./internal/rescan 'BenchmarkRescan300(Overhead)?$' -benchtime 2x
echo "== pipeline overhead"; make -s build >/dev/null
./hack/bench-pipeline.sh bin/cccp "${BENCH_ROUNDS:-5}" | tee "$work/pipeline.txt"
echo "== webhook ingest (wrk)"; BENCH_DISPATCH=1 ./hack/bench-ingest.sh | tee "$work/ingest.txt"

lint=$(nsop BenchmarkLint10k)
tag10=$(nsop 'BenchmarkTag/10MB'); tag500=$(nsop 'BenchmarkTag/500MB')
dash=$(nsop BenchmarkDashboard)
latest=$(nsop BenchmarkLatestRuns)
pick=$(nsop BenchmarkPick10kAcross300Projects); enq=$(nsop BenchmarkEnqueueWith10kQueued)
ms() { awk -v n="$1" 'BEGIN { if (n=="?") print "?"; else printf "%.1f ms", n/1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a=="?"||b=="?"||b==0) print "?"; else printf "%.2f", a/b }'; }

cat > "$out" <<MD
# Benchmarks

Measured by \`make bench\` (hack/bench.sh) on $(date -u +%Y-%m-%d), on $(nproc) cores,
$(free -g | awk '/^Mem/ {print $2}') GiB, $(uname -sr), $(go version | awk '{print $3}'),
$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //').
Go benchmarks ran $count times; the median is reported. The raw output follows each table.

| bar | target | measured |
| --- | --- | --- |
| lint a 10,000-entry index with a dependency graph (issue 2) | < 1 s | $(ms "$lint") |
| retag time, 500 MB image / 10 MB image (issue 3) | < 1.5 | $(ratio "$tag500" "$tag10") ($(ms "$tag10") vs $(ms "$tag500")) |
| pipeline overhead, \`cccp run\` / the same steps run directly (issue 3) | < 1.15 | $(awk '/^ratio/ {print $NF}' "$work/pipeline.txt") |
| second run of an unchanged entry reuses the layer cache (issue 3) | yes | $(awk -F': ' '/layer cache hits/ {print $2}' "$work/pipeline.txt") layers from cache |
| test stage wall time on the demo apps / its longest check run alone (issue 8) | <= 1.25 | base $(metric BenchmarkTestStage/base stage/longest), hello $(metric BenchmarkTestStage/hello stage/longest) |
| dashboard render, 300 entries x 30 runs (issue 5) | < 50 ms | $(ms "$dash") |
| "up to date" decision for an unchanged entry, end to end from the trigger (issue 11) | < 50 ms | $(ms "$(nsop 'BenchmarkUpToDateDecision/branch_resolved')") (commit given by the trigger: $(ms "$(nsop 'BenchmarkUpToDateDecision/commit_given')")) |
| rescan of 300 delivered images, no-op backend: the rescan's own scheduling overhead (issue 11) | < 1 s | $(ms "$(nsop BenchmarkRescan300Overhead)") |
| the same rescan through the real pipeline (300 rescan runs' durable records in bbolt) | | $(ms "$(nsop BenchmarkRescan300)") |
| latest run of 300 projects from bbolt | | $(ms "$latest") |
| pick the next run among 10,000 queued runs of 300 projects (issue 11) | | $(ms "$pick") |
| enqueue a push beside 10,000 queued runs, real store, fsync (issue 11) | | $(ms "$enq") |
| store alone: durable deliveries, 64 writers, 25 KB, fsync before return | | $(metric BenchmarkAcceptDelivery deliveries/s)/s, p99 $(metric BenchmarkAcceptDelivery p99-ms) ms |

## Webhook ingest (issue 4)

Method of ../shared/bench/README.md: wrk -t2 -c64 -d15s --latency, signed 25 KB push payloads,
each stored in bbolt and fsynced before its 2xx; beside it the same server with storage off,
and storage on while the dispatcher parses and finishes the deliveries at the same time.
Target: at least 4,500 requests/s with p99 under 50 ms (reference: Atlantis, storing nothing,
about 4,100/s with p99 264 ms on this kind of machine).

\`\`\`
$(cat "$work/ingest.txt")
\`\`\`

## Test stage (issue 8)

BenchmarkTestStage (internal/checks): the demo apps of testdata/demo, built locally with buildah;
\`RunStage\` (every check at once, the three scans in one probe container) against each check
run alone, one after another (how the stage ran before). Medians of $count rounds, in seconds:

| app | stage | longest check alone | checks one by one | stage / longest |
| --- | --- | --- | --- | --- |
| base | $(metric BenchmarkTestStage/base stage-s) | $(metric BenchmarkTestStage/base longest-check-s) | $(metric BenchmarkTestStage/base one-by-one-s) | $(metric BenchmarkTestStage/base stage/longest) |
| hello | $(metric BenchmarkTestStage/hello stage-s) | $(metric BenchmarkTestStage/hello longest-check-s) | $(metric BenchmarkTestStage/hello one-by-one-s) | $(metric BenchmarkTestStage/hello stage/longest) |

## Pipeline overhead (issue 3)

hack/bench-pipeline.sh: one small image (FROM scratch + busybox), warm layer cache, the same
registry; cccp's full pipeline (clone, build, push, pull by digest, lint, capability labels,
three scans, 5 s smoke run, retags) against the same steps run with git, buildah, podman and skopeo.

\`\`\`
$(cat "$work/pipeline.txt")
\`\`\`

## Go benchmarks

\`\`\`
$(grep -E '^(Benchmark|goos|goarch|cpu|pkg)' "$work/go.txt")
\`\`\`
MD
echo "wrote $out"
