#!/usr/bin/env bash
# Benchmark of cold admission of a 10-image pod over a slow link (issue 12, finding 7): each
# image in its own repository, signed by two attestors, behind a proxy that delays every
# registry request (LATENCY_MS, default 50), on the real registry (no referrers API) and on the
# test registry with the referrers API. Prints requests, busy periods and wall time for a cold
# daemon, a warm one, and fresh images on a daemon that already knows the registry; see
# cli/examples/bench_pod.rs. Env: BENCH_RUNS (default 5), LATENCY_MS, VERBOSE=1 (request
# timeline on stderr), SIGNET_BIN (a signet binary to measure instead of this tree's).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-tests.sh >/dev/null
cargo build --quiet --release -p signet-cli --bin signet --example bench_pod
"$root/target/release/examples/bench_pod" "${SIGNET_BIN:-$root/target/release/signet}"
