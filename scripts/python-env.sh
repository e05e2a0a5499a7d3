#!/usr/bin/env bash
# Creates (once) the Python environment the test suite's independent checks use: PyNaCl and
# cryptography, the same libraries cosign's key format is built from in Go. Prints its python.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SIGNET_VENV:-$root/.venv}"
if ! "$venv/bin/python" -c 'import nacl.secret, cryptography' >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'pynacl>=1.5' 'cryptography>=44' >&2
fi
echo "$venv/bin/python"
