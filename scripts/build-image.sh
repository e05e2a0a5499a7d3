#!/usr/bin/env bash
# Builds signet's own container image from this checkout, with no Docker: the `signet` binary
# (Cargo profile `image`), the shared libraries it links and Debian's CA bundle, as a
# reproducible OCI image layout; then signs it and attests its provenance with signet itself,
# into the layout, and optionally pushes it with its evidence to a registry.
#
#     bash scripts/build-image.sh [--output DIR] [--push REGISTRY/REPO] [--set-deploy-digest]
#                                 [--check-reproducible] [--clean] [--binary FILE]
#
#   --output DIR            where to work (default: target/signet-image, or under
#                           $CARGO_TARGET_DIR); the image goes to DIR/layout, rewritten on
#                           every run
#   --push REGISTRY/REPO    `signet mirror` the signed image, signature and attestation to
#                           REGISTRY/REPO:VERSION (credentials: ~/.docker/config.json, or
#                           SIGNET_REGISTRY_USERNAME/PASSWORD, as for every signet command)
#   --set-deploy-digest     pin deploy/ to this digest (kustomization.yaml `images:`, and
#                           deployment.yaml's image), to REGISTRY/REPO if --push gave one, and
#                           put the signing key's public key in the policy as `signet-release`
#   --check-reproducible    also write the layout twice more, into two temporary directories,
#                           and fail unless every byte is the same
#   --clean                 remove DIR first (a generated throwaway key with it)
#   --binary FILE           package this signet binary instead of building one
#
# Signing key: SIGNET_IMAGE_KEY (a cosign-format key file, or a pkcs11: URI) with its password
# in SIGNET_PASSWORD. Without SIGNET_IMAGE_KEY, a throwaway key is generated once in
# DIR/throwaway.key (its password in DIR/throwaway.password) and the script says so: fine for
# trying it out, not for a release.
#
# Reproducible: the same commit, toolchain and Debian packages give the same digest. Timestamps
# are the commit's time (SOURCE_DATE_EPOCH), tar entries are sorted and owned by 0:0, gzip
# headers carry no time or name, and rustc and the C compiler see the source, registry and
# target directories under fixed names (--remap-path-prefix, -ffile-prefix-map).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

log() { printf 'build-image: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

out=""
push=""
set_deploy=false
check=false
clean=false
binary=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--output) out="$2" && shift 2 ;;
	--push) push="$2" && shift 2 ;;
	--set-deploy-digest) set_deploy=true && shift ;;
	--check-reproducible) check=true && shift ;;
	--clean) clean=true && shift ;;
	--binary) binary="$2" && shift 2 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

target="${CARGO_TARGET_DIR:-$root/target}"
out="${out:-$target/signet-image}"
if $clean && [[ -e "$out" ]]; then
	log "removing $out"
	rm -rf "$out"
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
layout="$out/layout"

# --- prerequisites -----------------------------------------------------------------------------

ca_bundle=/etc/ssl/certs/ca-certificates.crt
missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v ldd >/dev/null 2>&1 || missing+=(libc-bin)
[[ -s $ca_bundle ]] || missing+=(ca-certificates)
if [[ ${#missing[@]} -gt 0 ]]; then
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		die "missing ${missing[*]}: install them (Debian: apt-get install ${missing[*]})"
	fi
	log "installing Debian's ${missing[*]}"
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

# --- what is built -----------------------------------------------------------------------------

revision="$(git rev-parse HEAD)"
if [[ -n "$(git status --porcelain --untracked-files=no)" ]]; then
	log "warning: the working tree has uncommitted changes; the image is not exactly $revision"
	revision="$revision-dirty"
fi
# SOURCE_DATE_EPOCH (reproducible-builds.org): the commit's time, unless given. For the image
# only: cargo does not get it unless it was given, because the build scripts of ring and psm (cc)
# rerun when it changes, and with them everything above them, on every commit; the binary has no
# time in it either way (the same bytes were built with and without it).
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}"
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
[[ -n $version ]] || die "no version in Cargo.toml [workspace.package]"
source_url="$(sed -n '/^\[workspace.package\]/,/^\[/s/^repository = "\(.*\)"/\1/p' Cargo.toml)"

if [[ -z $binary ]]; then
	cargo_home="${CARGO_HOME:-$HOME/.cargo}"
	# Later remappings win (rustc applies the last matching one), so the target directory,
	# usually inside the checkout, comes after the checkout.
	remap=("$root=/signet" "$cargo_home=/cargo" "$target=/target")
	rustflags="" cflags=""
	for m in "${remap[@]}"; do
		rustflags+="${rustflags:+ }--remap-path-prefix=$m"
		cflags+="${cflags:+ }-ffile-prefix-map=$m"
	done
	log "cargo build --locked --profile image -p signet-cli (RUSTFLAGS=$rustflags)"
	CARGO_TARGET_DIR="$target" RUSTFLAGS="$rustflags" CFLAGS="$cflags" \
		cargo build --locked --profile image -p signet-cli --bin signet
	binary="$target/image/signet"
fi
[[ -x $binary ]] || die "$binary is not an executable"
# A copy next to the layout: the same bytes as in the image, for scripts/test-image.sh.
[[ $binary -ef $out/signet ]] || cp "$binary" "$out/signet"
signet="$out/signet"

# --- the layout --------------------------------------------------------------------------------

build_layout() { # DIR [PREDICATE] → prints the digest
	python3 "$root/scripts/build_image.py" --binary "$binary" --output "$1" \
		--epoch "$epoch" --revision "$revision" --version "$version" \
		--source "$source_url" --ref-name "$version" ${2:+--provenance "$2"} \
		--rustc-version "$(rustc --version)" --cargo-version "$(cargo --version)"
}

rm -rf "$layout"
digest="$(build_layout "$layout" "$out/provenance.json")"
log "image $digest in oci:$layout (created $(date -u -d "@$epoch" +%FT%TZ))"

if $check; then
	scratch="$(mktemp -d)"
	trap 'rm -rf "$scratch"' EXIT
	first="$(build_layout "$scratch/a")"
	second="$(build_layout "$scratch/b")"
	log "reproducible? $digest, $first, $second"
	[[ $first == "$digest" && $second == "$digest" ]] || die "NOT REPRODUCIBLE: digests differ"
	diff -r "$scratch/a" "$scratch/b" >&2 || die "NOT REPRODUCIBLE: the layouts differ"
	diff -r "$scratch/a" "$layout" >&2 || die "NOT REPRODUCIBLE: the layouts differ"
	log "reproducible: three builds of the layout, byte for byte the same"
fi

# Image size: the manifest, its config and its layers (what a registry stores for it).
size="$(python3 - "$layout" "$digest" <<'EOF'
import json, os, sys
layout, digest = sys.argv[1], sys.argv[2]
blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
m = json.load(open(blob(digest)))
total = os.path.getsize(blob(digest)) + m["config"]["size"] + sum(l["size"] for l in m["layers"])
print(total)
EOF
)"

# --- signature and provenance ------------------------------------------------------------------

key="${SIGNET_IMAGE_KEY:-}"
if [[ -z $key ]]; then
	key="$out/throwaway.key"
	if [[ ! -e $key ]]; then
		head -c 24 /dev/urandom | base64 >"$out/throwaway.password"
		chmod 0600 "$out/throwaway.password"
		SIGNET_PASSWORD="$(cat "$out/throwaway.password")" \
			"$signet" keygen --output-prefix "$out/throwaway" >&2
	fi
	log "SIGNET_IMAGE_KEY not set: signing with the THROWAWAY key $key (password in" \
		"$out/throwaway.password); set SIGNET_IMAGE_KEY and SIGNET_PASSWORD for a release"
	SIGNET_PASSWORD="$(cat "$out/throwaway.password")"
	export SIGNET_PASSWORD
fi
[[ -n ${SIGNET_PASSWORD:-}${COSIGN_PASSWORD:-} || $key == pkcs11:* ]] ||
	die "SIGNET_IMAGE_KEY is set but SIGNET_PASSWORD is not"
"$signet" public-key --key "$key" >"$out/signing-key.pub"

image="oci:$layout@$digest"
log "signet sign $image"
"$signet" sign "$image" --key "$key" >&2
log "signet attest $image --type slsaprovenance1 --predicate $out/provenance.json"
"$signet" attest "$image" --key "$key" --type slsaprovenance1 --predicate "$out/provenance.json" >&2
"$signet" tree "$image" >&2
"$signet" verify "$image" --key "$out/signing-key.pub" >&2

# --- push --------------------------------------------------------------------------------------

if [[ -n $push ]]; then
	log "signet mirror $image $push:$version"
	"$signet" mirror "$image" "$push:$version" >&2
fi

# --- deploy/ -----------------------------------------------------------------------------------

if $set_deploy; then
	python3 - "$root/deploy" "$digest" "$push" "$out/signing-key.pub" <<'EOF'
import re, sys
deploy, digest, push, pub = sys.argv[1:]
pub = open(pub).read()

def rewrite(path, pattern, replacement, count=1):
    text = open(path).read()
    new, n = re.subn(pattern, replacement, text, flags=re.M)
    if n != count:
        sys.exit(f"--set-deploy-digest: {path}: expected {count} match(es) of {pattern!r}, found {n}")
    open(path, "w").write(new)

# kustomization.yaml: the `images:` entry's digest, and when pushed elsewhere its name (the
# name deployment.yaml gets below, so that the entry still applies) and newName.
rewrite(f"{deploy}/kustomization.yaml", r"^(\s+digest: )sha256:[0-9a-f]{64}", rf"\g<1>{digest}")
if push:
    rewrite(f"{deploy}/kustomization.yaml", r"^(  - name: ).*$", rf"\g<1>{push}")
    rewrite(f"{deploy}/kustomization.yaml", r"^(\s+newName: ).*$", rf"\g<1>{push}")
# deployment.yaml: the same pin, for `kubectl apply -f` without kustomize.
name = push or None
rewrite(
    f"{deploy}/deployment.yaml",
    r"^(\s+image: )([^@\s]+)@sha256:[0-9a-f]{64}",
    (lambda m: f"{m.group(1)}{name or m.group(2)}@{digest}"),
)
# policy-configmap.yaml: the repository trusted (exactly it, when pushed elsewhere: a denial
# for an untrusted registry is not a failure, the namespace's fail-open webhook would deny)...
if push:
    policy = f"{deploy}/policy-configmap.yaml"
    if f"\n      - {push}\n" not in open(policy).read():
        rewrite(policy, r"^(    registryAllowlist:\n)", rf"\g<1>      - {push}\n")
# ...and the public key of the key that signed the image, as signet-release.pub.
indented = "".join("    " + line + "\n" for line in pub.strip().splitlines())
rewrite(
    f"{deploy}/policy-configmap.yaml",
    r"^(  signet-release\.pub: \|\n)(    .*\n)+",
    lambda m: m.group(1) + indented,
)
EOF
	log "deploy/ now pins $digest${push:+ at $push} and trusts $out/signing-key.pub as signet-release:"
	git --no-pager diff --stat -- deploy/ >&2
fi

# --- summary -----------------------------------------------------------------------------------

cat <<EOF
image:      $image
digest:     $digest
size:       $size bytes (manifest, config and layers, compressed)
signed by:  $out/signing-key.pub
provenance: $out/provenance.json
EOF
[[ -z $push ]] || echo "pushed:     $push:$version ($push@$digest)"
