#!/usr/bin/env bash
# The main job on the on-disk store, with nothing to set up (no registry, no root, no network):
# build signet, make an image in an OCI layout, sign and attest it, decide under a policy (the
# signed image is allowed, an unsigned one denied), and have the daemon answer Kubernetes
# AdmissionReviews. Every step prints the command it runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "quickstart FAILED: $*" >&2; exit 1; }

say "Building signet (cargo build --release -p signet-cli)"
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p signet-cli
signet="$root/target/release/signet"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
export SIGNET_PASSWORD="quickstart-password"   # never prompt in a demo; cosign's COSIGN_PASSWORD works too

cart="registry.example.com/shop/cart:1.0"
miner="registry.example.com/shop/miner:1.0"
say "scripts/make-layout.sh images $cart $miner"
echo "    two small two-platform images in an OCI image layout directory (./images)"
bash "$root/scripts/make-layout.sh" images "$cart" "$miner"

say "signet keygen --output-prefix ci    # the build system's key (cosign's format)"
"$signet" keygen --output-prefix ci
say "signet keygen --output-prefix qa    # the QA team's key"
"$signet" keygen --output-prefix qa

say "signet sign oci:images:$cart --key ci.key"
"$signet" sign "oci:images:$cart" --key ci.key

printf '{"approved": true, "ticket": "QA-1234", "by": "qa-team"}\n' > qa.json
say "signet attest oci:images:$cart --key qa.key --predicate qa.json --type https://example.com/qa/v1"
"$signet" attest "oci:images:$cart" --key qa.key --predicate qa.json --type https://example.com/qa/v1

say "signet tree oci:images:$cart    # referrers are found through their subject fields"
"$signet" tree "oci:images:$cart"

cat > policy.yaml <<'EOF'
# Only images from our registry, built by CI and approved by QA, may run.
registryAllowlist:
  - registry.example.com/**
admissionAllowlistPatterns:            # exempt: admitted without evidence
  - namePattern: registry.example.com/base/*
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built-by-ci, qa-approved]
attestors:
  - name: built-by-ci
    publicKeys: [{file: ci.pub}]
  - name: qa-approved
    publicKeys: [{file: qa.pub}]
    predicateType: https://example.com/qa/v1
    conditions: ["statement.predicate.approved == true"]
EOF
say "policy.yaml:"
cat policy.yaml
say "signet policy check policy.yaml"
"$signet" policy check policy.yaml

say "signet verify oci:images:$cart --policy policy.yaml    (expect: ALLOWED, exit 0)"
"$signet" verify "oci:images:$cart" --policy policy.yaml || fail "the signed, QA-approved image was not allowed"

say "signet verify oci:images:$miner --policy policy.yaml    (expect: DENIED, exit 1)"
set +e
"$signet" verify "oci:images:$miner" --policy policy.yaml
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "the unsigned image gave exit $rc, not 1 (denied)"

say "signet serve --policy policy.yaml --insecure-http --listen 127.0.0.1:0    (the admission webhook)"
"$signet" serve --policy policy.yaml --insecure-http --listen 127.0.0.1:0 > audit.log 2> serve.log &
server_pid=$!
addr=""
for _ in $(seq 1 100); do
  addr="$(grep -o 'addr=127\.0\.0\.1:[0-9]*' serve.log | head -n1 | cut -d= -f2 || true)"
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat serve.log >&2; fail "signet serve exited"; }
  sleep 0.1
done
[ -n "$addr" ] || { cat serve.log >&2; fail "signet serve did not start listening"; }
echo "    listening on $addr"

# review NAME IMAGE: an AdmissionReview for a pod running IMAGE, as the API server sends it.
review() {
  printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"%s","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"shop","operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"shop"},"spec":{"containers":[{"name":"main","image":"%s"}]}}}}' \
    "$1" "$1" "$2"
}
# post BODY: POST /admission/validate over plain HTTP with bash alone (no curl needed).
post() {
  local host="${addr%:*}" port="${addr##*:}"
  exec 3<>"/dev/tcp/$host/$port"
  printf 'POST /admission/validate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "$addr" "${#1}" "$1" >&3
  sed -n '/^\r$/,$p' <&3 | tail -n +2
  exec 3<&-
}

say "POST /admission/validate: a pod running docker.io/library/nginx:latest    (expect: allowed false)"
answer="$(post "$(review nginx-pod docker.io/library/nginx:latest)")"
echo "$answer"
case "$answer" in *'"allowed":false'*) ;; *) fail "the daemon did not deny an image from an untrusted registry" ;; esac

say "POST /admission/validate: a pod running registry.example.com/base/busybox:1.36    (expect: allowed true, exempt)"
answer="$(post "$(review busybox-pod registry.example.com/base/busybox:1.36)")"
echo "$answer"
case "$answer" in *'"allowed":true'*) ;; *) fail "the daemon did not admit an exempt image" ;; esac

say "the daemon's audit log (one JSON line per decision; --audit-log FILE to keep it)"
cat audit.log

say "quickstart OK: the signed and approved image is allowed, the unsigned one denied, and the daemon answers admission reviews"
