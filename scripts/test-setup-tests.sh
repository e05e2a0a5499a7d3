#!/usr/bin/env bash
# Regression test for issue 12, finding 9: setup_tests_waits_for_the_package_lock.
#
# scripts/setup-tests.sh used to fail at once when another apt process held the package locks
# (seen on a fresh machine, where cloud-init or unattended-upgrades runs apt). This runs a copy
# of it whose package list names one package that is installed (bash) with a probe path that
# does not exist, so that it takes the apt path, while other processes hold the locks it needs:
# the package lists lock for 10 s (what `apt-get update` takes) and the dpkg frontend lock for
# 20 s (what `apt-get install` takes). It must wait for both, saying so, and then get through
# both apt commands; and, with SIGNET_APT_LOCK_TIMEOUT=3, give up with a message.
#
# Nothing of the machine's apt state is touched: APT_CONFIG points every apt directory (lists,
# cache, dpkg status, extended states, logs) into a temporary directory, and no source is
# configured, so there is no network either. The locks are held with fcntl (python3's lockf),
# as apt takes them; flock(1) would not hold apt off. Needs root (apt-get install refuses
# otherwise, and sudo would drop APT_CONFIG); elsewhere it says it is skipped.
#
#     sudo bash scripts/test-setup-tests.sh
set -euo pipefail

log() { printf 'test-setup-tests: %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
	log "skipped: needs root (run it with sudo)"
	exit 0
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
holders=()
cleanup() {
	for pid in "${holders[@]}"; do kill "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/state/lists/partial" "$tmp/cache/archives/partial" "$tmp/dpkg" "$tmp/empty" \
	"$tmp/log" "$tmp/scripts"
cp /var/lib/dpkg/status "$tmp/dpkg/status"
cat >"$tmp/apt.conf" <<EOF
Dir::State "$tmp/state/";
Dir::State::status "$tmp/dpkg/status";
Dir::Cache "$tmp/cache/";
Dir::Log "$tmp/log/";
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$tmp/empty/";
EOF

# The script under test, with its package list replaced by one installed package whose probe
# is missing.
sed -e '/^PACKAGES=(/,/^)/c\PACKAGES=("bash:'"$tmp"'/absent-probe")' \
	"$here/setup-tests.sh" >"$tmp/scripts/setup-tests.sh"
grep -q "bash:$tmp/absent-probe" "$tmp/scripts/setup-tests.sh" ||
	{ log "FAIL: could not rewrite PACKAGES of setup-tests.sh"; exit 1; }

# Holds an fcntl write lock on $1 for $2 seconds.
hold() {
	python3 -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
' "$1" "$2" >"$tmp/hold.out" &
	holders+=($!)
	# Wait until it holds the lock, so the script cannot start before it.
	for _ in $(seq 50); do
		grep -q locked "$tmp/hold.out" 2>/dev/null && { rm -f "$tmp/hold.out"; return; }
		sleep 0.1
	done
	log "FAIL: could not lock $1"
	exit 1
}

run() {
	local status=0
	APT_CONFIG="$tmp/apt.conf" bash "$tmp/scripts/setup-tests.sh" >"$tmp/out" 2>&1 || status=$?
	echo "$status"
}

expect() {
	if ! grep -qF -- "$1" "$tmp/out"; then
		log "FAIL: expected in the output: $1"
		cat "$tmp/out" >&2
		exit 1
	fi
}

failed_with() {
	if [[ $1 -ne $2 ]]; then
		log "FAIL: exit status $1, expected $2"
		cat "$tmp/out" >&2
		exit 1
	fi
}

log "locks held: package lists 10 s, dpkg frontend 20 s"
hold "$tmp/state/lists/lock" 10
hold "$tmp/dpkg/lock-frontend" 20
status=$(run)
expect "setup-tests: apt-get update: Could not get lock $tmp/state/lists/lock"
expect "waiting (up to "
expect "Waiting for cache lock: Could not get lock $tmp/dpkg/lock-frontend"
expect "bash is already the newest version"
# Past both apt commands: what stops it now is only the probe that was made to be missing.
expect "setup-tests: bash was installed but $tmp/absent-probe is still missing"
failed_with "$status" 1
log "ok: waited for both locks, then installed"

log "package lists lock held 15 s, SIGNET_APT_LOCK_TIMEOUT=3"
hold "$tmp/state/lists/lock" 15
status=$(SIGNET_APT_LOCK_TIMEOUT=3 run)
expect "the package lists are still locked after 3s; giving up"
failed_with "$status" 100
log "ok: gave up after the timeout"
