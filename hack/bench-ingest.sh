#!/usr/bin/env bash
# Durable webhook ingest benchmark, by the method of ../shared/bench/README.md:
# wrk -t2 -c64 -d15s --latency with signed 25 KB GitHub push payloads, each
# with a fresh X-GitHub-Delivery. The server is the bot package's own
# hack/ingestserver: the real bot handler, the real GitHub signature check
# and a real bbolt file (secret "s3cret").
# It runs twice: with storage on (each delivery fsynced before its 202) and
# with storage switched off (the limit the first is compared to).
# Optional third run with BENCH_DISPATCH=1: storage on and the dispatcher
# parsing and finishing deliveries at the same time.
#
# Usage: hack/bench-ingest.sh            (BENCH_DIR, BENCH_SECONDS, PORT to override)
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_DIR=${BENCH_DIR:-$(pwd)/../shared/bench}
SECONDS_=${BENCH_SECONDS:-15}
PORT=${PORT:-18087}
BODY_FILE=$BENCH_DIR/push25k.json
LUA=$BENCH_DIR/webhook-load.lua
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -f "$BODY_FILE" ] && [ -f "$LUA" ] || { echo "missing $BODY_FILE or $LUA" >&2; exit 1; }
SIG="sha256=$(openssl dgst -sha256 -hmac s3cret -hex <"$BODY_FILE" | awk '{print $NF}')"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/ingestserver" ./hack/ingestserver

run() { # name, server flags...
  local name=$1; shift
  local data=$work/$name; mkdir -p "$data"
  "$work/ingestserver" -addr 127.0.0.1:$PORT -dir "$data" "$@" >"$work/$name.server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  BODY_FILE=$BODY_FILE SIG=$SIG wrk -t2 -c64 -d"${SECONDS_}s" --latency -s "$LUA" \
    "http://127.0.0.1:$PORT/webhooks/github" >"$work/$name.wrk" 2>&1 || true
  local metrics; metrics=$(curl -fsS "http://127.0.0.1:$PORT/metrics" | grep -E '^cccp_(webhook_deliveries|deliveries_processed)_total' | grep -v ' 0$' || true)
  kill -TERM "$pid"; wait "$pid" || true
  local rps p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/$name.wrk")
  p99=$(awk '$1=="99%" {print $2}' "$work/$name.wrk")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/$name.wrk")
  printf '%-22s %10s req/s   p99 %-9s non-2xx %s\n' "$name" "$rps" "$p99" "${non2xx:-0}"
  [ -n "${VERBOSE:-}" ] && { cat "$work/$name.wrk"; echo "$metrics"; tail -3 "$work/$name.server.log"; }
  if [ "$name" != storage-off ]; then
    echo "  server metrics: $(echo "$metrics" | tr '\n' ' ')"
  fi
}

echo "wrk -t2 -c64 -d${SECONDS_}s --latency, $(wc -c <"$BODY_FILE") byte signed push, $(nproc) cores"
run storage-on
run storage-off -discard
if [ -n "${BENCH_DISPATCH:-}" ]; then run storage+dispatcher -dispatch; fi
