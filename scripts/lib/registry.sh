# Shell helpers for the benchmark and screenshot scripts: a throw-away Debian docker-registry
# on 127.0.0.1.
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

# push_image HOST:PORT REPOSITORY TAG → pushes a small image (an OCI manifest, a config and a
# random 1 KiB layer) to the registry and prints its digest.
push_image() {
  local registry=$1 repo=$2 tag=$3 dir config layer manifest
  dir=$(mktemp -d "${work:?}/push.XXXXXX")
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$dir/config.json"
  head -c 1024 /dev/urandom >"$dir/layer.bin"
  config=$(push_blob "$registry" "$repo" "$dir/config.json")
  layer=$(push_blob "$registry" "$repo" "$dir/layer.bin")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":1024}]}' \
    "$config" "$(stat -c %s "$dir/config.json")" "$layer" >"$dir/manifest.json"
  curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary @"$dir/manifest.json" "http://$registry/v2/$repo/manifests/$tag" -o /dev/null
  echo "sha256:$(sha256sum "$dir/manifest.json" | cut -d' ' -f1)"
  rm -rf "$dir"
}

# push_blob REGISTRY REPOSITORY FILE → uploads FILE as a blob (monolithic POST then PUT) and
# prints its digest.
push_blob() {
  local registry=$1 repository=$2 file=$3
  local digest="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  local location
  location=$(curl -fsS -X POST -D - -o /dev/null "http://$registry/v2/$repository/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
  case "$location" in http*) ;; *) location="http://$registry$location" ;; esac
  local sep='?'; [[ "$location" == *\?* ]] && sep='&'
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$file" "$location${sep}digest=$digest" -o /dev/null
  echo "$digest"
}
