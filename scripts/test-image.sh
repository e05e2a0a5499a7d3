#!/usr/bin/env bash
# Runs signet's own image for real, on a machine with no Docker engine running and nothing to
# pull from: builds it (scripts/build-image.sh), pushes it with its signature and provenance to
# Debian's docker-registry on 127.0.0.1, pulls it into a Docker engine confined to a directory
# under /tmp (scripts/lib/docker-engine.sh: no bridge, no iptables rules, no forwarding), runs
# `signet serve` from inside the image (host network, non-root, read-only root, HTTPS with a
# certificate made by openssl), and sends it AdmissionReviews over HTTPS with curl: a pod whose
# image is signed (allowed), one whose image is not (denied), and signet's own pod in its
# namespace (allowed: signed with the release key). Then `signet verify` of the image itself,
# from the registry, against a policy requiring its signing key and its provenance: allowed.
#
#     bash scripts/test-image.sh                 # build the image (target/signet-image), then test it
#     bash scripts/test-image.sh --image-dir DIR # test what `build-image.sh --output DIR` built
#
# Needs root (dockerd does); installs Debian's docker.io, docker-registry, skopeo, openssl and
# curl when missing. `ip link` and `iptables -S` are printed before and after, with their diff.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'test-image: %s\n' "$*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}
say() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

image_dir=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--image-dir) image_dir="$2" && shift 2 ;;
	*) die "unknown argument $1" ;;
	esac
done

[[ $(id -u) -eq 0 ]] || die "needs root: dockerd manages mounts, cgroups and namespaces"

# shellcheck source=scripts/lib/docker-engine.sh
source "$root/scripts/lib/docker-engine.sh"
# shellcheck source=scripts/lib/registry.sh
source "$root/scripts/lib/registry.sh"

engine_prerequisites docker-registry=docker-registry skopeo=skopeo openssl=openssl curl=curl \
	python3=python3

# --- the image ---------------------------------------------------------------------------------

if [[ -z $image_dir ]]; then
	say "bash scripts/build-image.sh"
	bash scripts/build-image.sh
	image_dir="${CARGO_TARGET_DIR:-$root/target}/signet-image"
fi
layout="$image_dir/layout"
pub="$image_dir/signing-key.pub"
[[ -f $layout/index.json && -f $pub ]] || die "no built image in $image_dir (run scripts/build-image.sh)"
# The host's signet: the copy build-image.sh left next to the layout (the same bytes as in
# the image).
signet="$image_dir/signet"
[[ -x $signet ]] || die "no $signet (run scripts/build-image.sh)"
# The image: the index.json entry with a ref name (referrers have none).
read -r digest version < <(python3 - "$layout/index.json" <<'EOF'
import json, sys
for m in json.load(open(sys.argv[1]))["manifests"]:
    name = m.get("annotations", {}).get("org.opencontainers.image.ref.name")
    if name:
        print(m["digest"], name)
        break
EOF
)
[[ -n ${digest:-} ]] || die "no tagged image in $layout/index.json"
log "image $digest ($version) from oci:$layout; signing key $pub"

# --- clean-up ----------------------------------------------------------------------------------

work="$(mktemp -d /tmp/signet-test-image.XXXXXX)"
stop_test() {
	stop_all_registries
	if [[ -n "$engine_pid" ]] && docker inspect signet >/dev/null 2>&1; then
		log "the daemon's log (docker logs signet):"
		docker logs signet 2>&1 | tail -20 >&2
	fi
	rm -rf "$work"
}
ENGINE_BEFORE_STOP=stop_test
trap engine_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- registry, evidence, test images -----------------------------------------------------------

say "Debian's docker-registry on 127.0.0.1"
registry="$(start_registry registry)"
log "registry at $registry"

say "signet mirror oci:$layout@$digest $registry/signet/signet:$version"
"$signet" mirror --quiet "oci:$layout@$digest" "$registry/signet/signet:$version"
"$signet" tree "$registry/signet/signet@$digest"

say "test images: shop/cart (signed by the CI key) and shop/miner (unsigned)"
export SIGNET_PASSWORD=test-image-password
"$signet" keygen --output-prefix "$work/ci" >/dev/null
cart="$registry/shop/cart@$(push_image "$registry" shop/cart 1.0)"
miner="$registry/shop/miner@$(push_image "$registry" shop/miner 1.0)"
"$signet" sign "$cart" --key "$work/ci.key" >&2
log "cart:  $cart (signed)"
log "miner: $miner (unsigned)"

# The daemon's files, readable by the image's user (65532): policy, keys, certificate.
conf="$work/conf"
mkdir -p "$conf"
cp "$work/ci.pub" "$conf/ci.pub"
cp "$pub" "$conf/signet-release.pub"
revision="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["Labels"]["org.opencontainers.image.revision"])' \
	"$layout/blobs/sha256/$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["digest"].split(":")[1])' "$layout/blobs/sha256/${digest#sha256:}")")"
cat >"$conf/policy.yaml" <<EOF
# Only the loopback registry of this test (named outright: the daemon never reaches loopback
# through a wildcard).
registryAllowlist:
  - $registry/**
defaultAdmissionRule:
  evaluationMode: REQUIRE_ATTESTATION
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  requireAttestationsBy: [built-by-ci]
kubernetesNamespaceAdmissionRules:
  # signet itself: signed with its release key, with the provenance of this revision.
  signet:
    evaluationMode: REQUIRE_ATTESTATION
    enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
    requireAttestationsBy: [signet-release, signet-provenance]
attestors:
  - name: built-by-ci
    publicKeys: [{file: ci.pub}]
  - name: signet-release
    publicKeys: [{file: signet-release.pub}]
  - name: signet-provenance
    publicKeys: [{file: signet-release.pub}]
    predicateType: https://slsa.dev/provenance/v1
    conditions:
      - statement.predicate.buildDefinition.externalParameters.revision == "$revision"
EOF
"$signet" policy check "$conf/policy.yaml" >&2

say "TLS certificate for 127.0.0.1 (openssl)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
	-keyout "$conf/tls.key" -out "$conf/tls.crt" -subj "/CN=signet test" \
	-addext "subjectAltName=IP:127.0.0.1" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
# A throwaway key in a throwaway directory, made readable for the container's user.
chmod 0755 "$work" "$conf"
chmod 0644 "$conf"/*

# --- the engine --------------------------------------------------------------------------------

say "a Docker engine confined to /tmp (no bridge, no iptables, no forwarding)"
engine_start

say "docker pull $registry/signet/signet@$digest"
docker pull "$registry/signet/signet@$digest" >&2
docker image ls --digests >&2
docker image inspect --format 'user {{.Config.User}}, entrypoint {{.Config.Entrypoint}}, {{.Size}} bytes, revision {{index .Config.Labels "org.opencontainers.image.revision"}}' \
	"$registry/signet/signet@$digest" >&2

say "signet --version, from inside the image"
docker run --rm --network host "$registry/signet/signet@$digest" --version >&2

port="$(free_port)"
say "signet serve from inside the image on https://127.0.0.1:$port (host network, user 65532, read-only root)"
docker run -d --name signet --network host --read-only --cap-drop ALL \
	--security-opt no-new-privileges -v "$conf:/etc/signet:ro" \
	"$registry/signet/signet@$digest" \
	serve --policy=/etc/signet/policy.yaml --tls-cert=/etc/signet/tls.crt \
	--tls-key=/etc/signet/tls.key --listen="127.0.0.1:$port" --cluster=test --ui-listen=off \
	--deadline=8 >/dev/null
for _ in $(seq 1 100); do
	curl -fsS --cacert "$conf/tls.crt" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	[[ $(docker inspect --format '{{.State.Running}}' signet) == true ]] || die "the daemon exited"
	sleep 0.1
done
curl -fsS --cacert "$conf/tls.crt" "https://127.0.0.1:$port/readyz" >/dev/null || die "the daemon is not ready"
log "ready; running as $(docker exec signet /usr/local/bin/signet --version 2>/dev/null | head -1 || true), user $(docker inspect --format '{{.Config.User}}' signet)"

# review NAMESPACE IMAGE → an AdmissionReview for a pod running IMAGE, as the API server sends it.
review() {
	printf '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"%s","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"%s","operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"pod-%s","namespace":"%s"},"spec":{"containers":[{"name":"main","image":"%s"}]}}}}' \
		"$(cat /proc/sys/kernel/random/uuid)" "$1" "$1" "$1" "$2"
}
# admit NAMESPACE IMAGE EXPECTED → POSTs the review over HTTPS, prints the answer, checks "allowed".
admit() {
	local answer
	say "POST https://127.0.0.1:$port/admission/validate: namespace $1, image $2 (expect allowed: $3)"
	answer="$(curl -fsS --cacert "$conf/tls.crt" -H 'Content-Type: application/json' \
		--data-binary "$(review "$1" "$2")" "https://127.0.0.1:$port/admission/validate")"
	echo "$answer"
	[[ $answer == *"\"allowed\":$3"* ]] || die "expected allowed: $3"
}
admit shop "$cart" true
admit shop "$miner" false
admit signet "$registry/signet/signet@$digest" true
# The release key is not enough for anything else in the signet namespace.
admit signet "$cart" false

say "signet verify $registry/signet/signet@$digest --policy policy.yaml --namespace signet (expect: allowed)"
"$signet" verify "$registry/signet/signet@$digest" --policy "$conf/policy.yaml" --namespace signet ||
	die "signet's own image was not allowed"
say "the same, with signet from inside the image"
docker run --rm --network host -v "$conf:/etc/signet:ro" "$registry/signet/signet@$digest" \
	verify "$registry/signet/signet@$digest" --policy /etc/signet/policy.yaml --namespace signet ||
	die "signet's own image was not allowed (from inside the image)"
say "signet verify $registry/signet/signet@$digest --key signing-key.pub (expect: allowed)"
"$signet" verify "$registry/signet/signet@$digest" --key "$pub" || die "not allowed with the key"

say "test-image OK: signet's image serves admission reviews from the confined engine (signed: allowed, unsigned: denied) and verifies against its own signing key and provenance"
