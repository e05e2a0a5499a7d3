#!/usr/bin/env bash
# Benchmark of `signet verify` with 1, 10, 100 and 1,000 attestations, and a hostile image (60
# referrers naming one 16 MiB blob), on the local registry: requests,
# sequential round trips, wall time and peak memory. Prints a table; see
# cli/examples/bench_verify.rs for how each number is measured.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-tests.sh >/dev/null
if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null
fi
cargo build --quiet --release -p signet-cli --bin signet --example bench_verify
"$root/target/release/examples/bench_verify" "$root/target/release/signet"
