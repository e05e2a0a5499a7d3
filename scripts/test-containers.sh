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

# --- prerequisites -----------------------------------------------------------------------------

# Debian's docker-registry (the binary the image is built from) and the rest of the suite's needs.
bash scripts/setup-tests.sh

# Debian packages for the engine and for the network snapshots, when missing.
missing=()
{ command -v dockerd && command -v containerd && command -v runc; } >/dev/null 2>&1 ||
	missing+=(docker.io)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
if [[ ${#missing[@]} -gt 0 ]]; then
	command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
	# docker.io starts its daemon from postinst through invoke-rc.d; a policy-rc.d that exits 101
	# forbids it (see scripts/setup-tests.sh), so that no engine with default flags ever runs.
	POLICY=/usr/sbin/policy-rc.d
	own_policy=false
	if [[ ! -e "$POLICY" ]]; then
		printf '#!/bin/sh\n# temporary, from signet scripts/test-containers.sh\nexit 101\n' >"$POLICY"
		chmod 0755 "$POLICY"
		own_policy=true
	fi
	log "installing Debian's ${missing[*]}"
	installed=0
	{ apt-get update && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"; } || installed=$?
	! $own_policy || rm -f "$POLICY"
	[[ $installed -eq 0 ]] || die "installing ${missing[*]} failed"
fi
# The docker CLI: Debian's comes with docker.io; any recent one will do (it negotiates the API).
command -v docker >/dev/null 2>&1 || die "docker CLI not found"
[[ -x $REGISTRY_BIN ]] || die "$REGISTRY_BIN missing after scripts/setup-tests.sh"

# --- network snapshots -------------------------------------------------------------------------

# What the engine could change on the host: links (a docker0 bridge, veths), packet filter rules
# and forwarding. `ip link` without statistics, so that only real changes show in the diff.
snapshot() {
	echo '$ ip link'
	ip link
	if command -v iptables >/dev/null 2>&1; then
		echo '$ iptables -S'
		iptables -S 2>&1
		echo '$ iptables -t nat -S'
		iptables -t nat -S 2>&1
	else
		echo '(iptables not installed)'
	fi
	if command -v ip6tables >/dev/null 2>&1; then
		echo '$ ip6tables -S'
		ip6tables -S 2>&1
	fi
	echo '$ sysctl net.ipv4.ip_forward'
	sysctl net.ipv4.ip_forward 2>&1 || true
}

before="$(snapshot)"
log "network before:"
echo "$before" >&2
work="$(mktemp -d /tmp/signet-docker.XXXXXX)"
sock="$work/docker.sock"
export DOCKER_HOST="unix://$sock"

# --- clean-up ----------------------------------------------------------------------------------

dockerd_pid=""
cleanup() {
	local status=$?
	set +e
	trap - EXIT INT TERM
	if [[ -n "$dockerd_pid" ]] && kill -0 "$dockerd_pid" 2>/dev/null; then
		# Containers first (tests that were killed cannot remove their own), then the engine,
		# which stops the containerd it started.
		ids="$(docker ps -aq 2>/dev/null)"
		if [[ -n "$ids" ]]; then
			log "removing leftover containers: $(echo "$ids" | tr '\n' ' ')"
			# shellcheck disable=SC2086 # one id per word
			docker rm -f $ids >/dev/null
		fi
		log "stopping dockerd (pid $dockerd_pid)"
		kill -TERM "$dockerd_pid"
		for _ in $(seq 1 150); do
			kill -0 "$dockerd_pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$dockerd_pid" 2>/dev/null; then
			log "dockerd still running after 30 s; killing it"
			kill -KILL "$dockerd_pid"
		fi
		wait "$dockerd_pid" 2>/dev/null
	fi
	# Anything the engine started that outlived it (containerd, shims) runs with our directory in
	# its command line; end those processes by their ids.
	for pid in $(pgrep -f -- "$work" 2>/dev/null); do
		[[ $pid -ne $$ ]] || continue
		log "ending leftover process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
		kill -KILL "$pid" 2>/dev/null
	done
	# Mounts the engine left under its directory, deepest first.
	awk -v w="$work" '$2 == w || index($2, w "/") == 1 { print $2 }' /proc/self/mounts |
		sort -r | while read -r m; do
		log "unmounting what the engine left: $m"
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	rm -rf "$work"

	after="$(snapshot)"
	log "network after:"
	echo "$after" >&2
	log "diff before after:"
	if diff -u <(echo "$before") <(echo "$after") >&2; then
		log "network unchanged (ip link, iptables, ip6tables, ip_forward identical)"
	else
		log "NETWORK CHANGED: see the diff above"
		[[ $status -ne 0 ]] || status=3
	fi
	left="$(awk -v w="$work" 'index($2, w) == 1' /proc/self/mounts)"
	[[ -z "$left" ]] || log "mounts left behind: $left"
	pgrep -f -- "$work" >/dev/null 2>&1 && log "processes left behind: $(pgrep -f -- "$work" | tr '\n' ' ')"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the engine --------------------------------------------------------------------------------

# Everything under $work: images, containers and the containerd dockerd starts (data-root),
# runtime state (exec-root), socket, pid file, log. An empty config file, so that no
# /etc/docker/daemon.json on the machine changes these flags. The network flags switch off every
# change dockerd would make to the host: no docker0 bridge, no iptables/ip6tables rules, no
# ip_forward sysctl, no masquerading (see `dockerd --help`; never run it with the defaults here).
mkdir -p "$work/data" "$work/exec"
echo '{}' >"$work/daemon.json"
log "starting dockerd in $work"
# In a session of its own, so that a Ctrl-C reaches the tests and this script, not the engine:
# the trap below stops it after removing the containers. (setsid does not fork here, since a
# background job of a script leads no process group, so $! is dockerd's pid.)
setsid dockerd \
	--config-file "$work/daemon.json" \
	--data-root "$work/data" \
	--exec-root "$work/exec" \
	--pidfile "$work/docker.pid" \
	-H "unix://$sock" \
	--bridge=none \
	--iptables=false \
	--ip6tables=false \
	--ip-forward=false \
	--ip-masq=false \
	>"$work/dockerd.log" 2>&1 &
dockerd_pid=$!

for _ in $(seq 1 150); do
	docker version >/dev/null 2>&1 && break
	kill -0 "$dockerd_pid" 2>/dev/null || {
		cat "$work/dockerd.log" >&2
		die "dockerd exited"
	}
	sleep 0.2
done
docker version >/dev/null 2>&1 || {
	tail -50 "$work/dockerd.log" >&2
	die "dockerd did not answer on $sock within 30 s"
}
# The engine's own pid file is authoritative.
dockerd_pid="$(cat "$work/docker.pid")"
log "engine up (pid $dockerd_pid): $(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}')"

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
