#!/usr/bin/env bash
# Webhook ingest and routing on the real `cccp serve` (issue 10's bar), by
# the method of ../shared/bench/README.md: wrk -t2 -c64 -d15s --latency with
# the signed 25 KB GitHub push, a fresh X-GitHub-Delivery per request. The
# index has one entry of another repository, so every push is parsed and
# routed (to no run) and finished; the dispatcher works during the load.
# Reported: accepts/s and p99 from wrk, and deliveries routed per second
# during the load (cccp_deliveries_processed_total read from /metrics just
# before and just after wrk), plus the backlog left and how long it took to
# drain.
#
# Usage: hack/bench-serve.sh [path/to/cccp]   (BENCH_DIR, BENCH_SECONDS, PORT)
# PROFILE=FILE also writes a CPU profile of the server during the load
# (through serve --debug-listen); read it with `go tool pprof BINARY FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_DIR=${BENCH_DIR:-/work/shared/bench}
SECONDS_=${BENCH_SECONDS:-15}
PORT=${PORT:-18097}
BODY_FILE=$BENCH_DIR/push25k.json
LUA=$BENCH_DIR/webhook-load.lua
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
SIG="sha256=$(openssl dgst -sha256 -hmac s3cret -hex <"$BODY_FILE" | awk '{print $NF}')"

work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
bin=${1:-}
if [ -z "$bin" ]; then bin=$work/cccp; go build -o "$bin" ./cmd/cccp; fi
mkdir -p "$work/index/index.d"
cat >"$work/index/index.d/other.yaml" <<YAML
Projects:
  - id: 1
    app-id: other
    job-id: app
    git-url: https://github.com/example/other
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: ops@example.com
    depends-on: null
YAML
cat >"$work/config.yaml" <<YAML
listen: 127.0.0.1:$PORT
data: $work/data
index:
  path: $work/index
registry:
  address: 127.0.0.1:$((PORT + 1))
github:
  token: bench-token-unused
YAML
debug=()
[ -n "${PROFILE:-}" ] && debug=(--debug-listen "127.0.0.1:$((PORT + 2))")
CCCP_GITHUB_WEBHOOK_SECRET=s3cret "$bin" serve --config "$work/config.yaml" "${debug[@]}" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 200); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
routed() { curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '/^cccp_deliveries_processed_total/ {s+=$NF} END {printf "%d", s}'; }
accepted() { curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '/^cccp_webhook_deliveries_total.*result="accepted"/ {s+=$NF} END {printf "%d", s}'; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # user+system clock ticks
r0=$(routed)
c0=$(cpu)
t0=$(date +%s.%N)
if [ -n "${PROFILE:-}" ]; then
  curl -fsS -o "$PROFILE" "http://127.0.0.1:$((PORT + 2))/debug/pprof/profile?seconds=$((SECONDS_ - 2))" &
  prof=$!
fi
BODY_FILE=$BODY_FILE SIG=$SIG /usr/bin/time -f '%U %S' -o "$work/wrk.time" wrk -t2 -c64 -d"${SECONDS_}s" --latency -s "$LUA" \
  "http://127.0.0.1:$PORT/webhooks/github" >"$work/wrk.txt" 2>&1 || true
t1=$(date +%s.%N)
[ -n "${prof:-}" ] && wait "$prof"
r1=$(routed); acc=$(accepted); c1=$(cpu)
# drain
while [ "$(routed)" -lt "$acc" ]; do sleep 0.2; [ "$(echo "$(date +%s.%N) - $t1 > 120" | bc)" = 1 ] && break; done
t2=$(date +%s.%N)
rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.txt")
p99=$(awk '$1=="99%" {print $2}' "$work/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
dbsize=$(du -k "$work/data/cccp.db" | awk '{print $1}')
echo "wrk -t2 -c64 -d${SECONDS_}s --latency, $(wc -c <"$BODY_FILE") byte signed push, $(nproc) cores, real cccp serve"
printf 'accepted %s req/s   p99 %s   non-2xx %s\n' "$rps" "$p99" "${non2xx:-0}"
awk -v r0="$r0" -v r1="$r1" -v a="$acc" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
  printf "routed during the load: %d in %.1f s = %.0f/s; backlog at the end %d, drained in %.1f s\n", r1-r0, t1-t0, (r1-r0)/(t1-t0), a-r1, t2-t1 }'
echo "db size after the run: ${dbsize} KiB"
awk -v c0="$c0" -v c1="$c1" -v hz="$(getconf CLK_TCK)" -v r0="$r0" -v r1="$r1" -v t0="$t0" -v t1="$t1" \
  -v w="$(cat "$work/wrk.time")" 'BEGIN { split(w, x, " ");
  printf "CPU during the load: cccp %.2f cores, %.0f us per routed delivery; wrk %.2f cores\n",
    (c1-c0)/hz/(t1-t0), (c1-c0)/hz/(r1-r0)*1e6, (x[1]+x[2])/(t1-t0) }'
[ -n "${VERBOSE:-}" ] && { cat "$work/wrk.txt"; tail -5 "$work/serve.log";
  echo "server side, request start to stored answer (cccp_webhook_ingest_seconds, cumulative):";
  curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '/^cccp_webhook_ingest_seconds_bucket/ {print "  " $0}'; }
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
