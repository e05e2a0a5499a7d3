#!/usr/bin/env bash
# Runs the end-to-end suite (tests/e2e) against a containerised registry through testcontainers,
# on a machine with no Docker engine running and nothing to pull from: it starts a Docker engine
# confined to a directory under /tmp, builds a registry image from Debian's `docker-registry`
# binary (no download), runs the suite with `--features testcontainers`, and stops everything.
#
#     bash scripts/test-containers.sh            # the whole e2e suite
#     bash scripts/test-containers.sh smoke::     # extra arguments go to the test binary
#
# The engine never touches the host's network: no bridge, no iptables or ip6tables rules, no IP
# forwarding or masquerading; containers use host networking and talk to 127.0.0.1 only. `ip
# link` and `iptables -S` are printed before and after, with their diff. Whatever happens (also
# Ctrl-C), the trap removes the containers, stops the engine and its containerd, unmounts and
# deletes its directory. Needs root (dockerd does); installs Debian's docker.io if dockerd is
# missing. CI does not run this: the default suite is scripts/test.sh.
#
# Against another registry on an engine of your own, see "Against other registries" in README.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

IMAGE=signet-test/registry:local
REGISTRY_BIN=/usr/bin/docker-registry

log() { printf 'test-containers: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root: dockerd manages mounts, cgroups and namespaces"

# shellcheck source=scripts/lib/docker-engine.sh
source "$root/scripts/lib/docker-engine.sh"

# --- prerequisites -----------------------------------------------------------------------------

# Debian's docker-registry (the binary the image is built from) and the rest of the suite's needs.
bash scripts/setup-tests.sh

# Debian packages for the engine and for the network snapshots, when missing.
engine_prerequisites
[[ -x $REGISTRY_BIN ]] || die "$REGISTRY_BIN missing after scripts/setup-tests.sh"

# --- the engine --------------------------------------------------------------------------------

# Whatever happens (also Ctrl-C), the clean-up removes the containers, stops the engine, deletes
# its directory and shows the network before and after (scripts/lib/docker-engine.sh).
trap engine_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
engine_start
work="$engine_work"

# --- the image ---------------------------------------------------------------------------------

# A root filesystem with the registry binary, what `ldd` says it links against, and the
# directory of its default config; `docker import` turns it into an image with no download.
rootfs="$work/rootfs"
mkdir -p "$rootfs/etc/docker/registry" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
cp --parents "$REGISTRY_BIN" "$rootfs"
# Lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
# "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
ldd "$REGISTRY_BIN" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' |
	while read -r lib; do
		cp --parents -L "$lib" "$rootfs"
	done
log "image root filesystem: $(cd "$rootfs" && find . -type f | sort | tr '\n' ' ')"
tar -C "$rootfs" -c . | docker import \
	--change 'ENTRYPOINT ["/usr/bin/docker-registry"]' \
	--change 'CMD ["serve", "/etc/docker/registry/config.yml"]' \
	- "$IMAGE" >/dev/null
docker image ls "$IMAGE" >&2

# --- the suite ---------------------------------------------------------------------------------

log "running the e2e suite against $IMAGE (DOCKER_HOST=$DOCKER_HOST)"
status=0
SIGNET_TEST_REGISTRY_IMAGE="$IMAGE" SIGNET_TEST_REGISTRY_KIND=distribution \
	cargo test -p signet-cli --locked --features testcontainers --test e2e -- "$@" || status=$?
leftover="$(docker ps -aq | wc -l)"
log "containers left by the suite: $leftover"
[[ $leftover -eq 0 ]] || [[ $status -ne 0 ]] || status=4
exit "$status"
