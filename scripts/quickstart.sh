#!/usr/bin/env bash
# The main job on local files, with nothing to set up: build signet, make a key pair, sign a
# file, verify it, and watch verification fail for an edited file and for someone else's key.
# (Registry and policy steps join this script as those features land.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "Building signet (cargo build --release -p signet-cli)"
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p signet-cli
signet="$root/target/release/signet"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export SIGNET_PASSWORD="quickstart-password"   # never prompt in a demo; cosign's COSIGN_PASSWORD works too

say "signet keygen --output-prefix ci            # an attestor key pair, cosign's format"
"$signet" keygen --output-prefix ci
say "signet keygen --output-prefix someone-else"
"$signet" keygen --output-prefix someone-else

printf 'release notes for build 42\n' > release.txt
say "signet sign-blob release.txt --key ci.key   # DSSE + in-toto statement in a Sigstore bundle"
"$signet" sign-blob release.txt --key ci.key

say "signet verify-blob release.txt --key ci.pub  (expect: verified, exit 0)"
"$signet" verify-blob release.txt --key ci.pub

say "signet verify-blob release.txt --key someone-else.pub  (expect: FAILED, exit 1)"
set +e
"$signet" verify-blob release.txt --key someone-else.pub; rc_other=$?
printf 'tampered\n' >> release.txt
say "edit release.txt, then verify again  (expect: FAILED, exit 1)"
"$signet" verify-blob release.txt --key ci.pub --output json; rc_edit=$?
set -e

if [ "$rc_other" -eq 1 ] && [ "$rc_edit" -eq 1 ]; then
  say "quickstart OK: the right key verifies; another key and an edited file are refused"
else
  echo "quickstart FAILED: expected exit 1 for both refusals, got $rc_other and $rc_edit" >&2
  exit 1
fi
