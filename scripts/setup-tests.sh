#!/usr/bin/env bash
# Installs the real components that the end-to-end suite (tests/e2e) runs against.
#
# Idempotent: a package that is already installed is left alone, and when everything is there
# the script does nothing (no apt-get update, no network). Run it once per machine or CI image:
#
#     bash scripts/setup-tests.sh
#     cargo test -p signet-cli --test e2e
#
# When another apt process holds the package locks (common on a fresh machine), it waits for
# them, up to SIGNET_APT_LOCK_TIMEOUT seconds (default 600), saying so while it waits.
#
# To add a component, append "<debian-package>:<absolute path of a file it installs>" to
# PACKAGES (the file need only exist: a font is not executable).
set -euo pipefail

# debian package : absolute path of a file it installs (used to tell whether it is installed)
PACKAGES=(
	# CNCF distribution 2.8, the real registry the harness starts (tests/e2e/harness.rs).
	"docker-registry:/usr/bin/docker-registry"
	# An independent reader of OCI archives: `signet export` must write what skopeo reads
	# (tests/e2e/mirror.rs), and the baseline of scripts/bench-mirror.sh.
	"skopeo:/usr/bin/skopeo"
	# promtool checks the alerting rules in deploy/monitoring/ (tests/e2e/serve.rs).
	"prometheus:/usr/bin/promtool"
	# Binary Authorization interop (tests/e2e/binauthz.rs, crates/signet-core/src/pgp.rs): gpg
	# makes PGP keys and signed messages as Google's guide does, openssl PKIX signatures.
	"gnupg:/usr/bin/gpg"
	"openssl:/usr/bin/openssl"
	# Keys in hardware (tests/e2e/pkcs11.rs): SoftHSM is the PKCS#11 token the tests initialise
	# (module /usr/lib/softhsm/libsofthsm2.so), OpenSC's pkcs11-tool generates keys inside it
	# and reads their attributes back.
	"softhsm2:/usr/bin/softhsm2-util"
	"opensc:/usr/bin/pkcs11-tool"
	# The decision explorer (signet serve --ui-listen) is loaded by headless Chromium, with no
	# network, in tests/e2e/explorer.rs and scripts/screenshots.sh; a font so that the
	# screenshots show text.
	"chromium:/usr/bin/chromium"
	"fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
)

log() { printf 'setup-tests: %s\n' "$*" >&2; }

# The Python side of the independent format checks (PyNaCl, cryptography) in .venv; idempotent.
python_env() {
	log "python environment: $(bash "$(dirname "${BASH_SOURCE[0]}")/python-env.sh")"
}

missing=()
for entry in "${PACKAGES[@]}"; do
	pkg=${entry%%:*}
	probe=${entry#*:}
	if [[ -e "$probe" ]]; then
		log "$pkg already installed ($probe)"
	else
		missing+=("$pkg")
	fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
	log "no Debian package to install"
	python_env
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	log "missing: ${missing[*]}; apt-get not found, install them by hand"
	exit 1
fi

# Root for apt-get: run directly as root, otherwise through sudo if there is one.
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		log "missing: ${missing[*]}; need root (or sudo) to install them"
		exit 1
	fi
fi

# Packages such as docker-registry ship an init script and start it from postinst via
# invoke-rc.d, which on a machine without systemd means a registry daemon on :5000 left
# running. A policy-rc.d that exits 101 ("action forbidden") stops that; see
# /usr/share/doc/init-system-helpers/README.policy-rc.d. Docker images usually have one
# already; if not, put one in place for the duration of the install only.
POLICY=/usr/sbin/policy-rc.d
if [[ ! -e "$POLICY" ]]; then
	log "installing a temporary $POLICY so that no service is started"
	remove_policy() { "${SUDO[@]}" rm -f "$POLICY"; }
	trap remove_policy EXIT
	printf '#!/bin/sh\n# temporary, from signet scripts/setup-tests.sh\nexit 101\n' |
		"${SUDO[@]}" tee "$POLICY" >/dev/null
	"${SUDO[@]}" chmod 0755 "$POLICY"
fi

# On a fresh machine another apt process (cloud-init, unattended-upgrades) often holds the
# package locks for a few minutes; wait for it, up to LOCK_TIMEOUT seconds, instead of failing
# at once (issue 12, finding 9). apt-get install waits by itself given DPkg::Lock::Timeout (it
# prints "Waiting for cache lock" while it does). apt-get update does not: it takes
# /var/lib/apt/lists/lock without waiting whatever that option says (apt 2.6), so it is retried
# while it fails on a lock. apt's locks are fcntl locks: `flock` on those files does not hold
# them off, another apt process (or anything using fcntl/lockf) does.
LOCK_TIMEOUT=${SIGNET_APT_LOCK_TIMEOUT:-600}

apt_get_update() {
	local deadline=$((SECONDS + LOCK_TIMEOUT)) next_log=0 errors status locked
	errors=$(mktemp)
	while true; do
		# LC_ALL=C: the lock message is matched below, so it must not be translated.
		status=0 locked=0
		"${SUDO[@]}" env LC_ALL=C apt-get update 2>"$errors" || status=$?
		if ((status != 0)) && grep -q 'Could not get lock' "$errors"; then
			locked=1
		fi
		if ((locked)) && ((SECONDS < deadline)); then
			# Say so at once, then every 30 s, not at every 5 s retry.
			if ((SECONDS >= next_log)); then
				log "apt-get update: $(grep -m1 -o 'Could not get lock.*' "$errors");" \
					"waiting (up to $((deadline - SECONDS))s more)"
				next_log=$((SECONDS + 30))
			fi
			sleep 5
			continue
		fi
		cat "$errors" >&2
		rm -f "$errors"
		if ((locked)); then
			log "apt-get update: the package lists are still locked after ${LOCK_TIMEOUT}s; giving up"
		fi
		return "$status"
	done
}

log "installing: ${missing[*]}"
apt_get_update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get -o DPkg::Lock::Timeout="$LOCK_TIMEOUT" install -y --no-install-recommends "${missing[@]}"

for entry in "${PACKAGES[@]}"; do
	pkg=${entry%%:*}
	probe=${entry#*:}
	if [[ ! -e "$probe" ]]; then
		log "$pkg was installed but $probe is still missing"
		exit 1
	fi
done
python_env
log "done"
