#!/usr/bin/env bash
# Installs the test prerequisites (idempotent) and runs the whole suite. CI runs exactly this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-tests.sh
cargo test --workspace --locked
