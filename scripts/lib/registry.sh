# Shell helpers for the benchmark scripts: a throw-away Debian docker-registry on 127.0.0.1.
# Source it after setting `work` (a scratch directory); needs python3 and curl.

# free_port → a TCP port free on 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http URL → waits up to 10 s for URL to answer.
wait_http() { for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

# start_registry NAME → starts a registry with its storage under $work/NAME, its pid in
# $work/NAME/pid, and prints its host:port. With ACCESS_LOG=1 the registry writes one line per
# request it answers to $work/NAME/log (to count requests).
start_registry() {
  local name=$1 port access_log_disabled=true
  [[ "${ACCESS_LOG:-}" == 1 ]] && access_log_disabled=false
  port=$(free_port)
  rm -rf "${work:?}/$name"
  mkdir -p "$work/$name"
  cat >"$work/$name/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: $access_log_disabled
storage:
  filesystem:
    rootdirectory: '$work/$name/storage'
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$work/$name/config.yml" >"$work/$name/log" 2>&1 &
  echo "$!" >"$work/$name/pid"
  wait_http "http://127.0.0.1:$port/v2/" >&2
  echo "127.0.0.1:$port"
}

# stop_registry NAME → stops it and removes its storage.
stop_registry() {
  local pid
  pid=$(cat "$work/$1/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -rf "${work:?}/$1"
}

# stop_all_registries → stops every registry started under $work (for an EXIT trap).
stop_all_registries() {
  local f
  for f in "$work"/*/pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
}
