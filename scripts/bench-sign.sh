#!/usr/bin/env bash
# Benchmark of signing time per signature: keys in a SoftHSM token (ECDSA P-256, P-384,
# RSA 2048, generated inside it) against a cosign key file. Makes a throw-away token in a
# temporary directory, then runs crates/signet-pkcs11/examples/bench_sign.rs, which prints
# the numbers.
#
#     bash scripts/bench-sign.sh [SIGNATURES]      (default 200 per key)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-tests.sh >/dev/null
n=${1:-200}
module=/usr/lib/softhsm/libsofthsm2.so
pin=123456
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$work/tokens" >"$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
softhsm2-util --init-token --free --label bench --so-pin 87654321 --pin "$pin" >/dev/null
for spec in EC:prime256v1:ec:01 EC:secp384r1:ec384:03 rsa:2048:rsa:02; do
	IFS=: read -r kind size label id <<<"$spec"
	pkcs11-tool --module "$module" --token-label bench --login --pin "$pin" --keypairgen \
		--key-type "$kind:$size" --label "$label" --id "$id" --usage-sign --sensitive >/dev/null
done
cargo build --quiet --release -p signet-pkcs11 --example bench_sign
"$root/target/release/examples/bench_sign" "$n" "$module" "$pin"
