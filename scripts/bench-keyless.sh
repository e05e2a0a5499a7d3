#!/usr/bin/env bash
# Benchmark: cold `signet verify` of a keyless-signed image (the real cosign v3 public-good
# bundle in fixtures/sigstore/, attached as a referrer of its subject digest, checked offline
# against the shipped trusted root: Rekor SET and inclusion proof, RFC 3161 timestamp, Fulcio
# chain, SCT, identity) against cold `signet verify --key` of an image signed with a key, on a
# real registry (Debian's docker-registry) on loopback. Each run is a whole new process. Prints
# the wall times and the registry requests of one run of each (from the registry's access log).
#
#     bash scripts/bench-keyless.sh            # 30 runs of each
#     RUNS=100 bash scripts/bench-keyless.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
RUNS=${RUNS:-30}

need() { command -v "$1" >/dev/null 2>&1; }
bash scripts/setup-tests.sh >/dev/null 2>&1 || true
need docker-registry || { echo "docker-registry (Debian package) is needed" >&2; exit 2; }

signet=${SIGNET_BIN:-$root/target/release/signet}
if [[ -z "${SIGNET_BIN:-}" ]]; then
  cargo build --quiet --release -p signet-cli --bin signet
fi

work=$(mktemp -d)
. "$root/scripts/lib/registry.sh"
cleanup() {
  stop_all_registries
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ACCESS_LOG=1 registry=$(start_registry registry)
log="$work/registry/log"

put_manifest() { # repository reference media-type file
  curl -fsS -X PUT -H "Content-Type: $3" --data-binary @"$4" "http://$registry/v2/$1/manifests/$2" -o /dev/null
}

# --- keyless: the public-good bundle as a referrer of its image, cosign v3's layout ---------
# Only the signature is public material, not the image manifest; a digest-pinned verify never
# fetches the manifest, so the subject need not be in the registry.
subject=sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172
printf '{}' >"$work/empty.json"
empty=$(push_blob "$registry" kubewarden/controller "$work/empty.json")
bundle=$(push_blob "$registry" kubewarden/controller fixtures/sigstore/bundle_v03.json)
bundle_type=application/vnd.dev.sigstore.bundle.v0.3+json
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"%s","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"%s","digest":"%s","size":%d}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":1024},"annotations":{"dev.sigstore.bundle.content":"dsse-envelope","dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1"}}' \
  "$bundle_type" "$empty" "$bundle_type" "$bundle" "$(stat -c %s fixtures/sigstore/bundle_v03.json)" "$subject" >"$work/referrer.json"
referrer="sha256:$(sha256sum "$work/referrer.json" | cut -d' ' -f1)"
put_manifest kubewarden/controller "$referrer" application/vnd.oci.image.manifest.v1+json "$work/referrer.json"
# The referrers tag schema's fallback index (distribution 2.8 has no referrers API).
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"artifactType":"%s"}]}' \
  "$referrer" "$(stat -c %s "$work/referrer.json")" "$bundle_type" >"$work/fallback.json"
put_manifest kubewarden/controller "sha256-${subject#sha256:}" application/vnd.oci.image.index.v1+json "$work/fallback.json"
keyless=("$signet" verify "$registry/kubewarden/controller@$subject"
  --certificate-identity https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0
  --certificate-oidc-issuer https://token.actions.githubusercontent.com)

# --- key: an image signed with the fixture key, one bundle referrer as well ------------------
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$work/config.json"
printf 'layer\n' >"$work/layer.bin"
config=$(push_blob "$registry" shop/app "$work/config.json")
layer=$(push_blob "$registry" shop/app "$work/layer.bin")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
  "$config" "$(stat -c %s "$work/config.json")" "$layer" "$(stat -c %s "$work/layer.bin")" >"$work/manifest.json"
put_manifest shop/app 1.0 application/vnd.oci.image.manifest.v1+json "$work/manifest.json"
image_digest="sha256:$(sha256sum "$work/manifest.json" | cut -d' ' -f1)"
SIGNET_PASSWORD=$(cat fixtures/keys/password.txt) "$signet" sign "$registry/shop/app@$image_digest" --key fixtures/keys/p256.key >/dev/null 2>&1
keyed=("$signet" verify "$registry/shop/app@$image_digest" --key fixtures/keys/p256.pub)

requests_logged() { grep -cE '^[0-9.]+ - - \[' "$log" || true; }
requests_of() { # command... -> requests of one run
  local before after
  before=$(requests_logged)
  "$@" >/dev/null || { echo "verification failed: $*" >&2; exit 1; }
  sleep 0.2
  after=$(requests_logged)
  echo $((after - before))
}
times_of() { # command... -> one wall time in ms per line, RUNS runs
  for _ in $(seq 1 "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000))
  done
}
summary() { # label requests < microseconds
  python3 -c '
import statistics, sys
label, requests = sys.argv[1], sys.argv[2]
us = sorted(int(l) for l in sys.stdin if l.strip())
ms = [u / 1000 for u in us]
p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
print(f"{label:<44} runs {len(ms):>4}   median {statistics.median(ms):6.1f} ms   mean {statistics.mean(ms):6.1f} ms   min {ms[0]:6.1f} ms   p95 {p95:6.1f} ms   registry requests per run {requests}")
' "$1" "$2"
}

echo "machine: $(nproc) CPU(s), $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), $(uname -sr)"
echo "registry: docker-registry $(docker-registry --version 2>/dev/null | awk '{print $NF}') on $registry (plain HTTP, loopback)"
"${keyless[@]}" | head -3
keyed_requests=$(requests_of "${keyed[@]}")
keyless_requests=$(requests_of "${keyless[@]}")
times_of "${keyed[@]}" | summary "verify --key (key-signed bundle)" "$keyed_requests"
times_of "${keyless[@]}" | summary "verify --certificate-identity (keyless bundle)" "$keyless_requests"
