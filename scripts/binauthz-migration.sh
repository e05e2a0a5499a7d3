#!/usr/bin/env bash
# A Binary Authorization migration, end to end on this machine: attestations made the way
# Google's guide makes them (gpg for a PGP attestor, openssl for a PKIX one), listed as
# `gcloud container binauthz attestations list --format=json` prints them, are imported into the
# image's registry with `signet binauthz import`, and a policy exported from GCP (attestors in
# the Attestor resource's shape) decides: the attested image is allowed, another one denied.
#
#   bash scripts/setup-tests.sh            # once: docker-registry, gpg, openssl
#   bash scripts/binauthz-migration.sh
#
# Starts a throw-away registry on 127.0.0.1 and stops it at the end. Every step prints the
# command it runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "binauthz-migration FAILED: $*" >&2; exit 1; }
for tool in docker-registry gpg openssl python3 curl; do
  command -v "$tool" >/dev/null || fail "$tool is missing; run bash scripts/setup-tests.sh"
done

say "Building signet (cargo build --release -p signet-cli)"
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p signet-cli
signet="$root/target/release/signet"

work="$(mktemp -d)"
cleanup() {
  if [ -f "$work/registry/pid" ]; then kill "$(cat "$work/registry/pid")" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
. "$root/scripts/lib/registry.sh"
host="$(start_registry registry)"
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"

say "Two images in the registry: $host/shop/cart:v1 (attested in GCP) and :v2 (not)"
bash "$root/scripts/make-layout.sh" images "shop/cart:v1" "shop/cart:v2" >/dev/null
"$signet" mirror --quiet "oci:images:shop/cart:v1" "$host/shop/cart:v1"
"$signet" mirror --quiet "oci:images:shop/cart:v2" "$host/shop/cart:v2"
digest="$(curl -fsS -o /dev/null -D - -H 'Accept: application/vnd.oci.image.index.v1+json' \
  "http://$host/v2/shop/cart/manifests/v1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')"
[ -n "$digest" ] || fail "no digest for shop/cart:v1"
echo "    shop/cart:v1 is $digest"

say "gcloud container binauthz create-signature-payload --artifact-url=$host/shop/cart@$digest"
cat > payload.json <<EOF
{
  "critical": {
    "identity": {
      "docker-reference": "$host/shop/cart"
    },
    "image": {
      "docker-manifest-digest": "$digest"
    },
    "type": "Google cloud binauthz container signature"
  }
}
EOF
cat payload.json

say "PGP attestor qa: gpg --quick-gen-key, then gpg --local-user qa@shop.example --armor --sign payload.json"
gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'QA <qa@shop.example>' ed25519 sign 0 2>/dev/null
fingerprint="$(gpg --with-colons --list-keys qa@shop.example | awk -F: '$1=="fpr"{print $10; exit}')"
gpg --armor --export qa@shop.example > qa.asc
gpg --batch --yes --local-user qa@shop.example --armor --output qa.pgp --sign payload.json

say "PKIX attestor built-by-ci: openssl genpkey (P-256), openssl dgst -sha256 -sign ci.pem payload.json"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ci.pem 2>/dev/null
openssl pkey -in ci.pem -pubout -out ci.pub
openssl dgst -sha256 -sign ci.pem payload.json > ci.sig
ci_id="//cloudkms.googleapis.com/v1/projects/shop-prod/locations/global/keyRings/binauthz/cryptoKeys/ci/cryptoKeyVersions/1"

say "occurrences.json: what gcloud container binauthz attestations list --format=json prints"
python3 - "$host" "$digest" "$fingerprint" "$ci_id" <<'PY'
import base64, json, sys
host, digest, fingerprint, ci_id = sys.argv[1:]
payload = base64.b64encode(open("payload.json", "rb").read()).decode()
def occurrence(n, note, key_id, signature_file):
    return {
        "attestation": {"serializedPayload": payload, "signatures": [
            {"publicKeyId": key_id,
             "signature": base64.b64encode(open(signature_file, "rb").read()).decode()}]},
        "createTime": "2026-11-30T10:00:00Z", "kind": "ATTESTATION",
        "name": f"projects/shop-prod/occurrences/{n}",
        "noteName": f"projects/shop-prod/notes/{note}",
        "resourceUri": f"https://{host}/shop/cart@{digest}",
    }
json.dump([occurrence("1", "qa", fingerprint, "qa.pgp"),
           occurrence("2", "built-by-ci", ci_id, "ci.sig")], open("occurrences.json", "w"), indent=2)
PY
head -c 400 occurrences.json; echo " ..."

say "policy.yaml: gcloud container binauthz policy export, with the two Attestor resources"
indent() { sed "s/^/$1/"; }
{
  cat <<EOF
name: projects/shop-prod/policy
globalPolicyEvaluationMode: ENABLE
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy:
    - projects/shop-prod/attestors/qa
    - projects/shop-prod/attestors/built-by-ci
attestors:
  - name: projects/shop-prod/attestors/qa
    userOwnedGrafeasNote:
      noteReference: projects/shop-prod/notes/qa
      publicKeys:
        - id: $fingerprint
          asciiArmoredPgpPublicKey: |
EOF
  indent '            ' < qa.asc
  cat <<EOF
  - name: projects/shop-prod/attestors/built-by-ci
    userOwnedGrafeasNote:
      noteReference: projects/shop-prod/notes/built-by-ci
      publicKeys:
        - id: $ci_id
          pkixPublicKey:
            signatureAlgorithm: ECDSA_P256_SHA256
            publicKeyPem: |
EOF
  indent '              ' < ci.pub
} > policy.yaml
"$signet" policy check policy.yaml

say "signet binauthz import occurrences.json --policy policy.yaml"
"$signet" binauthz import occurrences.json --policy policy.yaml

say "signet tree $host/shop/cart:v1"
"$signet" tree "$host/shop/cart:v1"

say "signet verify $host/shop/cart:v1 --policy policy.yaml    # attested in GCP: allowed"
"$signet" verify "$host/shop/cart:v1" --policy policy.yaml || fail "the attested image was denied"

say "signet verify $host/shop/cart:v2 --policy policy.yaml    # never attested: denied"
if "$signet" verify "$host/shop/cart:v2" --policy policy.yaml; then
  fail "the unattested image was allowed"
fi

say "signet binauthz export $host/shop/cart:v1 --output back-to-gcp.json    # and back again"
"$signet" binauthz export "$host/shop/cart:v1" --output back-to-gcp.json
echo
echo "binauthz-migration OK: occurrences -> registry -> policy verdict"
