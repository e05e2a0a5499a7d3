#!/usr/bin/env bash
# Regenerates fixtures/ from fixed seeds (see fixtures/README.md). Re-running writes identical
# files; commit the result.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$("$root/scripts/python-env.sh")"
"$python" "$root/scripts/gen_fixtures.py"
