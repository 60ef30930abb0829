#!/usr/bin/env bash
# Pipeline overhead: `cccp run` of one small image against the same steps
# run directly with git, buildah, podman and skopeo, both against the same
# registry (cccp's embedded one, served by `cccp registry serve`), with a
# warm layer cache. Prints the median wall time of each and their ratio.
# Usage: hack/bench-pipeline.sh BIN [ROUNDS]
set -euo pipefail
bin=$(realpath "${1:-bin/cccp}")
rounds=${2:-5}
work=$(mktemp -d /tmp/cccp-bench-pipeline.XXXXXX)
trap 'kill $regpid 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
addr=127.0.0.1:5199
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

# The application: FROM scratch with busybox, a smoke run that keeps running.
app=$work/app
mkdir -p "$app"
cp /bin/busybox "$app/busybox"
cat > "$app/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /www && echo bench > /www/index.html
CMD ["sleep", "3600"]
DF
git -C "$app" init -q -b master && git -C "$app" add -A &&
  git -C "$app" -c user.name=b -c user.email=b@b commit -qm app
mkdir -p "$work/index/index.d"
cat > "$work/index/index.d/bench.yaml" <<YAML
Projects:
  - id: 1
    app-id: bench
    job-id: app
    git-url: file://$app
    git-branch: master
    git-path: /
    target-file: Dockerfile
    desired-tag: latest
    notify-email: bench@example.com
    depends-on: null
YAML

"$bin" registry serve --data "$work/reg" --registry-addr $addr 2>"$work/registry.log" &
regpid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://$addr/v2/" && break; sleep 0.1; done
user=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["user"])' "$work/reg/registry/credentials")
pass=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["password"])' "$work/reg/registry/credentials")
auth=$work/auth.json
printf '{"auths":{"%s":{"auth":"%s"}}}' $addr "$(printf '%s:%s' "$user" "$pass" | base64 -w0)" > "$auth"
chmod 600 "$auth"

direct() {
  local d=$work/direct src ref img digest
  rm -rf "$d" && mkdir -p "$d"
  src=$d/src ref=$addr/bench/app img=localhost/cccp/bench/app:direct
  git clone -q --depth 1 -b master "file://$app" "$src"
  git -C "$src" rev-parse HEAD >/dev/null
  buildah bud -q --isolation oci --runtime runc --layers=true -f "$src/Dockerfile" -t $img "$src" >/dev/null
  buildah push -q --tls-verify=false --authfile "$auth" --digestfile "$d/digest" $img docker://$ref:test
  digest=$(cat "$d/digest")
  podman pull -q --tls-verify=false "$ref@$digest" >/dev/null
  podman image inspect --format '{{json .Labels}}' "$ref@$digest" >/dev/null
  for scan in dnf rpm pip; do
    podman --runtime runc run --rm "${ulimits[@]}" --entrypoint /bin/sh "$ref@$digest" -c "command -v $scan || true" >/dev/null || true
  done
  podman --runtime runc run -d --name bench-smoke --network none "${ulimits[@]}" "$ref@$digest" >/dev/null
  sleep 5
  podman inspect --format '{{.State.Status}}' bench-smoke >/dev/null
  podman logs --tail 20 bench-smoke >/dev/null
  podman rm --force --ignore --time 0 bench-smoke >/dev/null
  for tag in rc latest; do
    skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --authfile "$auth" --preserve-digests \
      "docker://$ref@$digest" "docker://$ref:$tag"
  done
}

# --force: every round builds (an unchanged entry would otherwise be up to
# date and build nothing, which is not what this measures).
viacccp() {
  REGISTRY_AUTH_FILE=$auth "$bin" run --index "$work/index" --data "$work/cccp" --allow-file-urls \
    --registry $addr --force >/dev/null 2>&1
}

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Warm the layer cache and both paths once.
direct; viacccp
: > "$work/t.direct"; : > "$work/t.cccp"
for i in $(seq "$rounds"); do
  t0=$(now); direct; t1=$(now); viacccp; t2=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >> "$work/t.direct"
  awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f\n", b - a }' >> "$work/t.cccp"
done
d=$(median < "$work/t.direct"); c=$(median < "$work/t.cccp")
echo "direct steps: median ${d}s over $rounds rounds ($(tr '\n' ' ' < "$work/t.direct"))"
echo "cccp run:     median ${c}s over $rounds rounds ($(tr '\n' ' ' < "$work/t.cccp"))"
echo "ratio cccp/direct: $(awk -v c="$c" -v d="$d" 'BEGIN { printf "%.3f", c / d }')"
# Layer cache: the last cccp build reused every layer.
run=$("$bin" runs --data "$work/cccp" --limit 1 | awk 'NR==2{print $1}')
echo "layer cache hits in the last cccp build: $("$bin" logs "$run" build --data "$work/cccp" | grep -c 'Using cache' || true)"
