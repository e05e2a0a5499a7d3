#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60), one after another, and
# prints per target the executions, the crashes and the time taken. Exits non-zero if any
# target crashed; the crashing input and the log are in fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz if it is
# missing. Builds with CARGO_BUILD_JOBS=1 unless set. Corpora start from fuzz/seeds/<target>/
# and from fixtures/ (copied into a temporary directory each run) and grow in fuzz/corpus/,
# which git ignores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
case "$seconds" in '' | *[!0-9]*)
  echo "usage: $0 [SECONDS] [TARGET...]" >&2
  exit 2
  ;;
esac
shift $(($# > 0 ? 1 : 0))
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "the nightly toolchain is missing: rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install --locked cargo-fuzz
fi

cd "$root/fuzz"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# No sanitizer: signet forbids unsafe code, and what the targets look for (panics, overflows
# under debug assertions, failed round trips, runaway time or memory) needs none.
echo "building ${#targets[@]} fuzz targets" >&2
if ! cargo +nightly fuzz build -s none >"$tmp/build.log" 2>&1; then
  cat "$tmp/build.log" >&2
  exit 1
fi

# Seeds from fixtures/, by target; nothing is committed twice.
seeds() {
  mkdir -p "$tmp/seeds/$1"
  echo "$tmp/seeds/$1"
}
cp "$root"/fixtures/keys/* "$(seeds keys)/"
cp "$root"/fixtures/policies/*.yaml "$root"/fixtures/policies/broken/*.yaml "$(seeds policy)/"
cp "$root"/fixtures/admission/*.json "$(seeds admission)/"
cp "$root"/fixtures/timestamp/token.der "$(seeds timestamp)/"
cp "$root"/fixtures/sigstore/*.json "$root"/crates/signet-core/trust/public-good-trusted-root.json "$(seeds keyless)/"
# A real two-image layout (scripts/make-layout.sh): its index and manifests seed the manifest
# target, its tarball (with plain and with "./" names) the layout target.
bash "$root/scripts/make-layout.sh" "$tmp/layout" registry.example/app:1.0 registry.example/db:2 >/dev/null
cp "$tmp/layout/index.json" "$(seeds manifest)/index.json"
for blob in "$tmp"/layout/blobs/sha256/*; do
  if grep -q '"schemaVersion"' "$blob" 2>/dev/null; then
    cp "$blob" "$tmp/seeds/manifest/"
  fi
done
tar_layout() {
  tar --sort=name --mtime='2026-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
    -C "$tmp/layout" -cf "$@"
}
tar_layout "$(seeds layout_tar)/layout.tar" oci-layout index.json blobs
tar_layout "$tmp/seeds/layout_tar/dot.tar" .

printf '%-18s %12s %8s %8s\n' target executions crashes seconds
failed=0
for target in "${targets[@]}"; do
  corpus="$root/fuzz/corpus/$target"
  artifacts="$root/fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  dirs=("$corpus")
  for d in "$root/fuzz/seeds/$target" "$tmp/seeds/$target"; do
    if [ -d "$d" ]; then dirs+=("$d"); fi
  done
  before="$(find "$artifacts" -type f -name '*-*' ! -name '*.log' | wc -l)"
  log="$tmp/$target.log"
  start="$(date +%s)"
  status=0
  # stdin from /dev/null: a fuzzed policy may name /dev/stdin as a key file.
  cargo +nightly fuzz run -s none "$target" "${dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" </dev/null >"$log" 2>&1 || status=$?
  took=$(($(date +%s) - start))
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  if [ -z "$runs" ]; then
    runs="$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)"
  fi
  crashes=$(($(find "$artifacts" -type f -name '*-*' ! -name '*.log' | wc -l) - before))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1
  fi
  printf '%-18s %12s %8s %8s\n' "$target" "${runs:-?}" "$crashes" "$took"
  if [ "$crashes" -ne 0 ]; then
    failed=1
    cp "$log" "$artifacts/last-run.log"
    grep -m 5 -E 'panicked at|ERROR|SUMMARY' "$log" | sed 's/^/    /' >&2 || true
    echo "    input and log: $artifacts/" >&2
  fi
done
exit "$failed"
