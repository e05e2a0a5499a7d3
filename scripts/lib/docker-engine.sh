# shellcheck shell=bash
# Shell helpers: a Docker engine confined to a directory under /tmp, for scripts/test-containers.sh
# and scripts/test-image.sh. Source it after defining `log MESSAGE` and `die MESSAGE`; needs root.
#
#   engine_prerequisites [PACKAGE=COMMAND]...
#       installs, with apt-get, Debian's docker.io, iproute2 and iptables, and each PACKAGE whose
#       COMMAND is missing; no engine with default flags ever starts (see below)
#   trap engine_cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
#       the clean-up: calls the function named in $ENGINE_BEFORE_STOP (if set), removes the
#       containers, stops the engine and its containerd, unmounts and deletes its directory,
#       prints the network after and its diff with before; exits with the script's status, or
#       3 if the network changed
#   engine_start
#       snapshots the network, starts dockerd in $engine_work (a new directory under /tmp) and
#       exports DOCKER_HOST
#
# The engine never touches the host's network: no bridge, no iptables or ip6tables rules, no IP
# forwarding or masquerading; containers use host networking and talk to 127.0.0.1 only. `ip
# link` and `iptables -S` are printed before and after, with their diff.

engine_work=""
engine_pid=""
engine_before=""

# engine_prerequisites [PACKAGE=COMMAND]... → installs what is missing.
# shellcheck disable=SC2120 # the extra packages are optional
engine_prerequisites() {
	local missing=() spec
	{ command -v dockerd && command -v containerd && command -v runc; } >/dev/null 2>&1 ||
		missing+=(docker.io)
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v iptables >/dev/null 2>&1 || missing+=(iptables)
	for spec in "$@"; do
		command -v "${spec#*=}" >/dev/null 2>&1 || missing+=("${spec%%=*}")
	done
	if [[ ${#missing[@]} -gt 0 ]]; then
		command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
		# docker.io starts its daemon from postinst through invoke-rc.d; a policy-rc.d that exits
		# 101 forbids it (see scripts/setup-tests.sh), so that no engine with default flags ever
		# runs.
		local policy=/usr/sbin/policy-rc.d own_policy=false installed=0
		if [[ ! -e "$policy" ]]; then
			printf '#!/bin/sh\n# temporary, from signet scripts/lib/docker-engine.sh\nexit 101\n' >"$policy"
			chmod 0755 "$policy"
			own_policy=true
		fi
		log "installing Debian's ${missing[*]}"
		{ apt-get update && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends "${missing[@]}"; } >&2 || installed=$?
		! $own_policy || rm -f "$policy"
		[[ $installed -eq 0 ]] || die "installing ${missing[*]} failed"
	fi
	# The docker CLI: Debian's comes with docker.io; any recent one will do (it negotiates the API).
	command -v docker >/dev/null 2>&1 || die "docker CLI not found"
}

# What the engine could change on the host: links (a docker0 bridge, veths), packet filter rules
# and forwarding. `ip link` without statistics, so that only real changes show in the diff.
engine_network_snapshot() {
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

engine_cleanup() {
	local status=$? ids pid after left
	set +e
	trap - EXIT INT TERM
	if [[ -n "${ENGINE_BEFORE_STOP:-}" ]]; then
		"$ENGINE_BEFORE_STOP"
	fi
	if [[ -n "$engine_pid" ]] && kill -0 "$engine_pid" 2>/dev/null; then
		# Containers first (tests that were killed cannot remove their own), then the engine,
		# which stops the containerd it started.
		ids="$(docker ps -aq 2>/dev/null)"
		if [[ -n "$ids" ]]; then
			log "removing leftover containers: $(echo "$ids" | tr '\n' ' ')"
			# shellcheck disable=SC2086 # one id per word
			docker rm -f $ids >/dev/null
		fi
		log "stopping dockerd (pid $engine_pid)"
		kill -TERM "$engine_pid"
		for _ in $(seq 1 150); do
			kill -0 "$engine_pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$engine_pid" 2>/dev/null; then
			log "dockerd still running after 30 s; killing it"
			kill -KILL "$engine_pid"
		fi
		wait "$engine_pid" 2>/dev/null
	fi
	if [[ -n "$engine_work" ]]; then
		# Anything the engine started that outlived it (containerd, shims) runs with our
		# directory in its command line; end those processes by their ids.
		for pid in $(pgrep -f -- "$engine_work" 2>/dev/null); do
			[[ $pid -ne $$ ]] || continue
			log "ending leftover process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
			kill -KILL "$pid" 2>/dev/null
		done
		# Mounts the engine left under its directory, deepest first.
		awk -v w="$engine_work" '$2 == w || index($2, w "/") == 1 { print $2 }' /proc/self/mounts |
			sort -r | while read -r m; do
			log "unmounting what the engine left: $m"
			umount "$m" 2>/dev/null || umount -l "$m"
		done
		rm -rf "$engine_work"
	fi

	if [[ -n "$engine_before" ]]; then
		after="$(engine_network_snapshot)"
		log "network after:"
		echo "$after" >&2
		log "diff before after:"
		if diff -u <(echo "$engine_before") <(echo "$after") >&2; then
			log "network unchanged (ip link, iptables, ip6tables, ip_forward identical)"
		else
			log "NETWORK CHANGED: see the diff above"
			[[ $status -ne 0 ]] || status=3
		fi
	fi
	if [[ -n "$engine_work" ]]; then
		left="$(awk -v w="$engine_work" 'index($2, w) == 1' /proc/self/mounts)"
		[[ -z "$left" ]] || log "mounts left behind: $left"
		pgrep -f -- "$engine_work" >/dev/null 2>&1 &&
			log "processes left behind: $(pgrep -f -- "$engine_work" | tr '\n' ' ')"
	fi
	exit "$status"
}

engine_start() {
	engine_before="$(engine_network_snapshot)"
	log "network before:"
	echo "$engine_before" >&2
	engine_work="$(mktemp -d /tmp/signet-docker.XXXXXX)"
	local sock="$engine_work/docker.sock"
	export DOCKER_HOST="unix://$sock"

	# Everything under $engine_work: images, containers and the containerd dockerd starts
	# (data-root), runtime state (exec-root), socket, pid file, log. An empty config file, so that
	# no /etc/docker/daemon.json on the machine changes these flags. The network flags switch off
	# every change dockerd would make to the host: no docker0 bridge, no iptables/ip6tables rules,
	# no ip_forward sysctl, no masquerading (see `dockerd --help`; never run it with the defaults
	# here).
	mkdir -p "$engine_work/data" "$engine_work/exec"
	echo '{}' >"$engine_work/daemon.json"
	log "starting dockerd in $engine_work"
	# In a session of its own, so that a Ctrl-C reaches the tests and the script, not the engine:
	# the trap stops it after removing the containers. (setsid does not fork here, since a
	# background job of a script leads no process group, so $! is dockerd's pid.)
	setsid dockerd \
		--config-file "$engine_work/daemon.json" \
		--data-root "$engine_work/data" \
		--exec-root "$engine_work/exec" \
		--pidfile "$engine_work/docker.pid" \
		-H "unix://$sock" \
		--bridge=none \
		--iptables=false \
		--ip6tables=false \
		--ip-forward=false \
		--ip-masq=false \
		>"$engine_work/dockerd.log" 2>&1 &
	engine_pid=$!

	for _ in $(seq 1 150); do
		docker version >/dev/null 2>&1 && break
		kill -0 "$engine_pid" 2>/dev/null || {
			cat "$engine_work/dockerd.log" >&2
			die "dockerd exited"
		}
		sleep 0.2
	done
	docker version >/dev/null 2>&1 || {
		tail -50 "$engine_work/dockerd.log" >&2
		die "dockerd did not answer on $sock within 30 s"
	}
	# The engine's own pid file is authoritative.
	engine_pid="$(cat "$engine_work/docker.pid")"
	log "engine up (pid $engine_pid): $(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}')"
}
