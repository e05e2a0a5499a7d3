#!/usr/bin/env bash
# Screenshots of the decision explorer (`signet serve --ui-listen`) for the README: makes a
# few decisions against a throw-away registry, then has headless Chromium (no network; see
# scripts/lib/headless-chromium.sh) take 1200×900 pictures of the three pages:
#
#     bash scripts/screenshots.sh        # writes docs/explorer-{decisions,policy,explain}.png
#                                        # env: SIGNET_BIN=… OUT=docs
#
# The images: shop/web:1.0 signed by both attestors (admitted), shop/web:2.0 signed by
# built-by-ci only (denied: qa-approved missing; the explain page shows it), shop/web:3.0
# unsigned (denied), and a pod whose image "name" is markup (shown as text).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
OUT=${OUT:-$root/docs}

command -v docker-registry >/dev/null || { echo "docker-registry (Debian package) is needed: bash scripts/setup-tests.sh" >&2; exit 2; }
signet=${SIGNET_BIN:-$root/target/debug/signet}
if [[ -z "${SIGNET_BIN:-}" ]]; then
  cargo build --quiet -p signet-cli --bin signet
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

registry=$(start_registry registry)
export SIGNET_PASSWORD
SIGNET_PASSWORD=$(cat fixtures/keys/password.txt)
both=$(push_image "$registry" shop/web 1.0)
ci_only=$(push_image "$registry" shop/web 2.0)
unsigned=$(push_image "$registry" shop/web 3.0)
"$signet" sign "$registry/shop/web@$both" --key fixtures/keys/p256.key >/dev/null 2>&1
"$signet" sign "$registry/shop/web@$both" --key fixtures/keys/other.key >/dev/null 2>&1
"$signet" sign "$registry/shop/web@$ci_only" --key fixtures/keys/p256.key >/dev/null 2>&1

cp fixtures/keys/p256.pub "$work/ci.pub"
cp fixtures/keys/other.pub "$work/qa.pub"
cat >"$work/policy.yaml" <<YAML
registryAllowlist: ["$registry/**", "registry.k8s.io/**"]
admissionWhitelistPatterns:
  - namePattern: registry.k8s.io/pause
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built-by-ci, qa-approved]
kubernetesNamespaceAdmissionRules:
  sandbox: {evaluationMode: REQUIRE_ATTESTATION, enforcementMode: DRYRUN_AUDIT_LOG_ONLY, requireAttestationsBy: [built-by-ci, qa-approved]}
  kube-system: {evaluationMode: ALWAYS_ALLOW, enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG}
attestors:
  - name: built-by-ci
    publicKeys: [{file: ci.pub}]
  - name: qa-approved
    publicKeys: [{file: qa.pub}]
YAML
port=$(free_port)
ui_port=$(free_port)
"$signet" serve --policy "$work/policy.yaml" --insecure-http --listen "127.0.0.1:$port" \
  --ui-listen "127.0.0.1:$ui_port" --audit-log "$work/audit.log" 2>"$work/serve.log" &
pids+=($!)
wait_http "http://127.0.0.1:$port/readyz"
ui="http://127.0.0.1:$ui_port"

# A pod per image, in a few namespaces (the fixture pod, its images and metadata replaced).
admit() { # name namespace image
  python3 - "$root/fixtures/admission/pod.json" "$1" "$2" "$3" >"$work/review.json" <<'PY'
import json, sys, uuid
src, name, ns, image = sys.argv[1:]
review = json.load(open(src))
review["request"]["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
review["request"]["namespace"] = ns
meta = review["request"]["object"]["metadata"]
meta["name"], meta["namespace"] = name, ns
spec = review["request"]["object"]["spec"]
spec["initContainers"] = []
for c in spec["containers"]:
    c["image"] = image
json.dump(review, sys.stdout)
PY
  curl -fsS -H 'Content-Type: application/json' --data-binary @"$work/review.json" \
    "http://127.0.0.1:$port/admission/validate" -o /dev/null
}
admit web-7d9f8-k2x4z shop "$registry/shop/web@$both"
admit web-5c6b7-q9r2t shop "$registry/shop/web@$ci_only"
admit cart-6f8d9-m3n4p shop "$registry/shop/web@$unsigned"
admit pause-0 kube-system "registry.k8s.io/pause:3.10"
admit try-1 sandbox "$registry/shop/web@$ci_only"
admit xss-0 sandbox "<script>alert(1)</script>"
admit batch-8h2j3-w5v6b payments "docker.io/library/busybox:latest"

mkdir -p "$OUT"
shot() { bash "$root/scripts/lib/headless-chromium.sh" screenshot "$OUT/$1" "$2" 2>>"$work/chromium.log"; echo "wrote $OUT/$1"; }
shot explorer-decisions.png "$ui/"
shot explorer-policy.png "$ui/policy"
image=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$registry/shop/web@$ci_only")
shot explorer-explain.png "$ui/explain?image=$image&namespace=shop"
