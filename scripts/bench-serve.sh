#!/usr/bin/env bash
# Load benchmark of `signet serve` with wrk: real AdmissionReview bodies posted to
# /admission/validate, warm cache and cold, against the real registry (Debian's
# docker-registry) on loopback. Prints requests per second and latency percentiles, and the
# machine they ran on.
#
#     bash scripts/bench-serve.sh   # env: DURATION=10s THREADS=2 CONNECTIONS=16
#                                          #      COLD_CONNECTIONS=1 SIGNET_BIN=… VERBOSE=1
#     EXPLORER=1 bash scripts/bench-serve.sh   # env: ROUNDS=2 UI_RATE=10
#
# Warm: one signed, digest-pinned image in three containers of a pod; the first request
# verifies it (one referrers lookup), every other is answered from the decision cache.
# Cold: every request names a digest never seen before, so each one is verified against the
# registry (and denied: nothing signed it), the whole path a new image takes; one connection
# by default, so that the latency is that of one new image, not of a queue.
#
# The daemon runs as shipped, with the decision explorer on (its own loopback listener, every
# decision kept in its ring buffer). EXPLORER=1 checks that the explorer does not slow
# admission (issue 17: at most 5%): the warm benchmark runs alone, then while one client loads
# explorer pages at UI_RATE requests/s (the decisions page, full with the last 500 decisions,
# and the explain view of the warm image, cached), ROUNDS rounds of both, in turns alone-first
# and pages-first; it prints every run, both means and medians, and the median of the rounds'
# changes. The cold benchmark is skipped then.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
COLD_CONNECTIONS=${COLD_CONNECTIONS:-1}
THREADS=${THREADS:-2}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
bash scripts/setup-tests.sh >/dev/null 2>&1 || true
need docker-registry || { echo "docker-registry (Debian package) is needed" >&2; exit 2; }

signet=${SIGNET_BIN:-$root/target/release/signet}
if [[ -z "${SIGNET_BIN:-}" ]]; then
  cargo build --quiet --release -p signet-cli --bin signet
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_all_registries
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

. "$root/scripts/lib/registry.sh"

# --- the registry, with one image signed by fixtures/keys/p256.key ---------------------------
registry=$(start_registry registry)

printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config.json"
head -c 1024 /dev/urandom >"$work/layer.bin"
config=$(push_blob "$registry" bench/app "$work/config.json")
layer=$(push_blob "$registry" bench/app "$work/layer.bin")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":1024}]}' \
  "$config" "$(stat -c %s "$work/config.json")" "$layer" >"$work/manifest.json"
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
  --data-binary @"$work/manifest.json" "http://$registry/v2/bench/app/manifests/1.0" -o /dev/null
image_digest="sha256:$(sha256sum "$work/manifest.json" | cut -d' ' -f1)"
SIGNET_PASSWORD=$(cat fixtures/keys/password.txt) "$signet" sign "$registry/bench/app:1.0" \
  --key fixtures/keys/p256.key >/dev/null 2>&1

# --- the daemon -------------------------------------------------------------------------------
cp fixtures/keys/p256.pub "$work/ci.pub"
cat >"$work/policy.yaml" <<YAML
registryAllowlist: ["$registry/**"]
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built-by-ci]
attestors:
  - name: built-by-ci
    publicKeys: [{file: ci.pub}]
YAML
port=$(free_port)
ui_port=$(free_port)
"$signet" serve --policy "$work/policy.yaml" --insecure-http --listen "127.0.0.1:$port" \
  --ui-listen "127.0.0.1:$ui_port" --audit-log "$work/audit.log" 2>"$work/serve.log" &
pids+=($!)
wait_http "http://127.0.0.1:$port/readyz"
url="http://127.0.0.1:$port/admission/validate"

# --- bodies -----------------------------------------------------------------------------------
python3 - "$root/fixtures/admission/pod.json" "$registry/bench/app@$image_digest" "$work" <<'PY'
import json, sys
src, image, work = sys.argv[1:]
review = json.load(open(src))
spec = review["request"]["object"]["spec"]
for c in spec["initContainers"] + spec["containers"]:
    c["image"] = image
json.dump(review, open(f"{work}/warm.json", "w"))
for c in spec["initContainers"] + spec["containers"]:
    c["image"] = image.split("@")[0] + "@sha256:DIGESTHEX"
json.dump(review, open(f"{work}/cold.json", "w"))
PY
cat >"$work/warm.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/warm.json"); wrk.body = f:read("*a"); f:close()
LUA
cat >"$work/cold.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/cold.json"); local template = f:read("*a"); f:close()
local hex = "0123456789abcdef"
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local t = {}
  for i = 1, 64 do local n = math.random(1, 16); t[i] = hex:sub(n, n) end
  return wrk.format(nil, nil, nil, (template:gsub("DIGESTHEX", table.concat(t))))
end
LUA

# Sanity: the warm body is admitted, the cold one denied.
curl -fsS -H 'Content-Type: application/json' --data-binary @"$work/warm.json" "$url" | grep -q '"allowed":true' \
  || { echo "the signed image is not admitted; serve.log:" >&2; cat "$work/serve.log" >&2; exit 1; }

report() { # name, wrk output[, note]
  local rps p50 p99
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$2")
  p50=$(awk '$1=="50%"{print $2}' <<<"$2")
  p99=$(awk '$1=="99%"{print $2}' <<<"$2")
  printf '%-14s %12s %10s %10s  %s\n' "$1" "$rps" "$p50" "$p99" "${3:-}"
}
machine() {
  echo "machine: $(nproc) CPU(s), $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), $(uname -sr)"
}

if [[ -n "${EXPLORER:-}" ]]; then
  ROUNDS=${ROUNDS:-2}
  UI_RATE=${UI_RATE:-10}
  warm_image="$registry/bench/app@$image_digest"
  # One client, one kept-alive connection, UI_RATE pages a second, alternating the decisions
  # page and the explain view; counts the pages that came back whole and right.
  cat >"$work/ui_load.py" <<'PY'
import http.client, sys, time, urllib.parse
port, image, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
pages = [("/", b"Recent decisions"),
         ("/explain?image=" + urllib.parse.quote(image, safe=""), b'class="verdict allowed"')]
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
sent = good = 0
start = time.monotonic()
slowest = 0.0
while time.monotonic() - start < seconds:
    path, expect = pages[sent % len(pages)]
    t = time.monotonic()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        good += response.status == 200 and expect in body
    except Exception:
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    slowest = max(slowest, time.monotonic() - t)
    sent += 1
    time.sleep(max(0.0, start + sent / rate - time.monotonic()))
print(f"{sent} {good} {slowest * 1000:.1f} {time.process_time() * 1000:.0f}")
PY
  # Fill the ring buffer and the caches first, so that both runs see the same daemon.
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$work/warm.lua" "$url" >/dev/null
  curl -fsS "http://127.0.0.1:$ui_port/explain?image=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$warm_image")" \
    | grep -q 'class="verdict allowed"' || { echo "the explorer does not explain the warm image" >&2; exit 1; }
  seconds=$(( ${DURATION%s} ))
  # What the pages cost, whatever else runs on the machine: the daemon's CPU time while only
  # the page client talks to it, against the same time idle.
  daemon_pid=${pids[-1]}
  cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$daemon_pid/stat"; }
  before=$(cpu_ms); sleep 5; idle=$(awk -v a="$before" -v b="$(cpu_ms)" 'BEGIN{print b - a}')
  before=$(cpu_ms)
  python3 "$work/ui_load.py" "$ui_port" "$warm_image" "$UI_RATE" 5 >"$work/ui_load.out"
  busy=$(awk -v a="$before" -v b="$(cpu_ms)" 'BEGIN{print b - a}')
  read -r sent good slowest client_ms <"$work/ui_load.out"
  machine
  echo "daemon, wrk, registry and the page client share the machine; wrk -t$THREADS -c$CONNECTIONS, $DURATION each; explorer pages at $UI_RATE/s"
  awk -v idle="$idle" -v busy="$busy" -v n="$sent" -v good="$good" -v client="$client_ms" -v slowest="$slowest" 'BEGIN {
    printf "explorer pages alone, 5 s: %d pages (%d right, slowest %s ms); daemon CPU %.0f ms (idle: %.0f ms), %.1f ms a page; page client CPU %.0f ms\n",
      n, good, slowest, busy, idle, (busy - idle) / n, client }'
  printf '%-14s %12s %10s %10s  %s\n' run "requests/s" p50 p99 "explorer pages"
  alone=() loaded=()
  run_alone() {
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/warm.lua" "$url")
    report "warm alone" "$out"
    alone+=("$(awk '/Requests\/sec/{print $2}' <<<"$out")")
  }
  run_loaded() {
    python3 "$work/ui_load.py" "$ui_port" "$warm_image" "$UI_RATE" "$seconds" >"$work/ui_load.out" &
    loader=$!
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/warm.lua" "$url")
    wait "$loader"
    read -r sent good slowest _ <"$work/ui_load.out"
    report "warm + pages" "$out" "$good/$sent pages right, slowest ${slowest} ms"
    loaded+=("$(awk '/Requests\/sec/{print $2}' <<<"$out")")
    [[ "$good" == "$sent" && "$sent" -gt 0 ]] || { echo "explorer pages failed: $good/$sent right" >&2; exit 1; }
  }
  # Each round runs both, in turns alone-first and pages-first, so that a machine slowing down
  # (or speeding up) over the benchmark weighs on both columns alike rather than on the second.
  for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 )); then run_alone; run_loaded; else run_loaded; run_alone; fi
  done
  python3 - "${alone[*]}" "${loaded[*]}" <<'PY'
import statistics, sys
alone = [float(x) for x in sys.argv[1].split()]
loaded = [float(x) for x in sys.argv[2].split()]
a, l = sum(alone) / len(alone), sum(loaded) / len(loaded)
print(f"mean warm alone: {a:.0f} requests/s; with explorer pages: {l:.0f} requests/s; change {100 * (l - a) / a:+.1f}%")
# Medians too: on a shared machine one disturbed run moves a mean more than a median.
ma, ml = statistics.median(alone), statistics.median(loaded)
print(f"median warm alone: {ma:.0f} requests/s; with explorer pages: {ml:.0f} requests/s; change {100 * (ml - ma) / ma:+.1f}%")
# And round by round: each round's two runs are back to back, so their ratio is the least
# affected by the machine's drift.
paired = sorted(100 * (x - y) / y for x, y in zip(loaded, alone))
print("change by round (sorted): " + " ".join(f"{c:+.1f}%" for c in paired))
print(f"median change by round: {statistics.median(paired):+.1f}%")
PY
  exit 0
fi

warm=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/warm.lua" "$url")
cold=$(wrk -t"$(( COLD_CONNECTIONS < THREADS ? COLD_CONNECTIONS : THREADS ))" -c"$COLD_CONNECTIONS" -d"$DURATION" --latency -s "$work/cold.lua" "$url")

machine
echo "daemon, wrk and registry share the machine; wrk -t$THREADS, warm -c$CONNECTIONS, cold -c$COLD_CONNECTIONS, $DURATION each"
printf '%-14s %12s %10s %10s\n' cache "requests/s" p50 p99
report warm "$warm"
report cold "$cold"
if [[ -n "${VERBOSE:-}" ]]; then echo "$warm"; echo "$cold"; fi
