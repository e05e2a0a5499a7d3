#!/usr/bin/env bash
# Benchmark of `signet audit` (issue 15): 1,000 pods across 20 namespaces and 5 service accounts,
# sharing 50 signed images (each pod runs one by tag and another by digest), against the real
# registry (Debian's docker-registry) on loopback. Prints the wall time of the whole `signet
# audit` process (hyperfine when installed, else /usr/bin/time), the registry requests one run
# sends (counted twice: by the registry's access log and by signet itself) and how many digests
# it verified: each of the 50 once, however many pods run it.
#
#     bash scripts/bench-audit.sh   # env: PODS=1000 IMAGES=50 RUNS=10 SIGNET_BIN=…
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

PODS=${PODS:-1000}
IMAGES=${IMAGES:-50}
RUNS=${RUNS:-10}

need() { command -v "$1" >/dev/null 2>&1; }
if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null
fi
bash scripts/setup-tests.sh >/dev/null 2>&1 || true
need docker-registry || { echo "docker-registry (Debian package) is needed" >&2; exit 2; }

signet=${SIGNET_BIN:-$root/target/release/signet}
if [[ -z "${SIGNET_BIN:-}" ]]; then
  cargo build --quiet --release -p signet-cli --bin signet
fi

work=$(mktemp -d)
cleanup() {
  stop_all_registries
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

. "$root/scripts/lib/registry.sh"

# --- the registry, with its access log on: one line per request it answers -------------------
ACCESS_LOG=1 registry=$(start_registry registry)
log="$work/registry/log"


# --- IMAGES images, each in its own repository, each signed by the fixture key ---------------
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config.json"
password=$(cat fixtures/keys/password.txt)
: >"$work/images.txt"
for i in $(seq 1 "$IMAGES"); do
  repo="bench/app-$i"
  printf 'layer of image %d\n' "$i" >"$work/layer.bin"
  config=$(push_blob "$registry" "$repo" "$work/config.json")
  layer=$(push_blob "$registry" "$repo" "$work/layer.bin")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
    "$config" "$(stat -c %s "$work/config.json")" "$layer" "$(stat -c %s "$work/layer.bin")" >"$work/manifest.json"
  curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$work/manifest.json" "http://$registry/v2/$repo/manifests/1.0" -o /dev/null
  digest="sha256:$(sha256sum "$work/manifest.json" | cut -d' ' -f1)"
  SIGNET_PASSWORD=$password "$signet" sign "$registry/$repo:1.0" --key fixtures/keys/p256.key >/dev/null 2>&1
  echo "$registry/$repo 1.0 $digest" >>"$work/images.txt"
done

# --- PODS pods sharing them, and the policy -------------------------------------------------
python3 - "$work/images.txt" "$PODS" >"$work/pods.json" <<'PY'
import json, sys
images = [line.split() for line in open(sys.argv[1])]
pods = []
for i in range(int(sys.argv[2])):
    name, tag, digest = images[i % len(images)]
    side_name, _, side_digest = images[(i * 7 + 3) % len(images)]
    pods.append({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"pod-{i}", "namespace": f"ns-{i % 20}"},
        "spec": {"serviceAccountName": f"sa-{i % 5}",
                 "containers": [{"name": "app", "image": f"{name}:{tag}"},
                                {"name": "sidecar", "image": f"{side_name}@{side_digest}"}]},
        "status": {"phase": "Running"},
    })
json.dump({"apiVersion": "v1", "kind": "List", "items": pods}, sys.stdout)
PY
cp fixtures/keys/p256.pub "$work/ci.pub"
cat >"$work/policy.yaml" <<YAML
registryAllowlist: ["$registry/**"]
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built-by-ci]
kubernetesNamespaceAdmissionRules:
  ns-1: {evaluationMode: REQUIRE_ATTESTATION, enforcementMode: DRYRUN_AUDIT_LOG_ONLY, requireAttestationsBy: [built-by-ci]}
attestors:
  - name: built-by-ci
    publicKeys: [{file: ci.pub}]
YAML

audit=("$signet" audit --policy "$work/policy.yaml" --pods "$work/pods.json")

# --- one run, counted --------------------------------------------------------------------------
# Access log lines only (`127.0.0.1 - - [date] "GET …" status …`); the registry also logs an error
# line for each 404 (absent legacy tags), which is not a request of its own.
requests_logged() { grep -cE '^[0-9.]+ - - \[' "$log" || true; }
before=$(requests_logged)
"${audit[@]}" --output json >"$work/report.json" || { echo "signet audit exited $? (expected 0):" >&2; head -c 2000 "$work/report.json" >&2; exit 1; }
sleep 0.2 # the registry writes its access log line after the answer
after=$(requests_logged)
if [[ -n "${VERBOSE:-}" ]]; then grep -E '^[0-9.]+ - - \[' "$log" | tail -n "+$((before + 1))" >&2; fi
read -r compliant violating errors containers digests requests < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
# digestsVerified and registryRequests are missing from the output of signet before issue 15.
print(r["compliant"], r["violating"], r["error"], len(r["images"]), r.get("digestsVerified", "?"), r.get("registryRequests", "?"))
' "$work/report.json")

echo "machine: $(nproc) CPU(s), $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), $(uname -sr)"
echo "signet audit of $PODS pods ($containers containers, 20 namespaces, 5 service accounts) sharing $IMAGES signed images; registry: docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}') on $registry"
echo "outcome: $compliant compliant, $violating violating, $errors error(s)"
echo "digests verified: $digests (of $IMAGES images)"
echo "registry requests, one run: $((after - before)) (registry access log), $requests (signet's count); $(python3 -c "print(f'{($after - $before) / $IMAGES:.1f}')") per image"

# --- wall time ------------------------------------------------------------------------------------
/usr/bin/time -f '%M' -o "$work/memory.txt" "${audit[@]}" >/dev/null
echo "peak memory of one run: $(( $(cat "$work/memory.txt") / 1024 )) MiB"
if need hyperfine; then
  hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$work/hyperfine.json" \
    "$(printf '%q ' "${audit[@]}") >/dev/null" >/dev/null
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
ms = {k: r[k] * 1000 for k in ("mean", "stddev", "min", "max")}
print("wall time (hyperfine, %d runs): mean %.0f ms ± %.0f ms, min %.0f ms, max %.0f ms"
      % (len(r["times"]), ms["mean"], ms["stddev"], ms["min"], ms["max"]))
' "$work/hyperfine.json"
else
  times=()
  for _ in $(seq 1 "$RUNS"); do
    /usr/bin/time -f '%e' -o "$work/time.txt" "${audit[@]}" >/dev/null
    times+=("$(cat "$work/time.txt")")
  done
  printf '%s\n' "${times[@]}" | python3 -c '
import sys
rows = [float(l) for l in sys.stdin if l.strip()]
wall = sorted(rows)
print(f"wall time (/usr/bin/time, {len(rows)} runs): median {wall[len(wall)//2]*1000:.0f} ms, min {wall[0]*1000:.0f} ms, max {wall[-1]*1000:.0f} ms")
'
fi
