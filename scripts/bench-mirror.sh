#!/usr/bin/env bash
# Benchmark of `signet mirror` against `skopeo copy` between two local registries (Debian's
# docker-registry, plain HTTP on loopback): wall time, throughput and peak memory (RSS, from
# GNU time) for the same image copied into a fresh destination registry each run. Prints a
# table and the machine it ran on.
#
#     bash scripts/bench-mirror.sh    # env: RUNS=3 JOBS=4 SIGNET_BIN=… KEEP=1 (keep the work dir)
#
# Images: 4 × 50 MiB random layers (200 MiB), 4 × 5 MiB (20 MiB) and 1 × 200 MiB. The peak
# memory of signet for 20 MiB, 200 MiB and one 200 MiB layer shows that blobs are streamed,
# not buffered: it does not grow with layer size. Timings are the median of RUNS runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

RUNS=${RUNS:-3}
JOBS=${JOBS:-4}

need() { command -v "$1" >/dev/null 2>&1; }
bash scripts/setup-tests.sh >/dev/null 2>&1 || true
need docker-registry || { echo "docker-registry (Debian package) is needed: scripts/setup-tests.sh" >&2; exit 2; }
need skopeo || { echo "skopeo (Debian package) is needed: scripts/setup-tests.sh" >&2; exit 2; }
missing=()
[ -x /usr/bin/time ] || missing+=(time)
need curl || missing+=(curl)
need python3 || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

signet=${SIGNET_BIN:-$root/target/release/signet}
if [[ -z "${SIGNET_BIN:-}" ]]; then
  cargo build --quiet --release -p signet-cli --bin signet
fi

work=$(mktemp -d)
cleanup() {
  # Registries are started in command substitutions (subshells): found by their pid files.
  stop_all_registries
  if [[ -z "${KEEP:-}" ]]; then rm -rf "$work"; else echo "work dir kept: $work" >&2; fi
}
trap cleanup EXIT

. "$root/scripts/lib/registry.sh"

# make_layout DIR COUNT MIB: an OCI layout with one image (tag v1) of COUNT random layers.
make_layout() {
  local dir=$1 count=$2 mib=$3 i hex size layers=""
  mkdir -p "$dir/blobs/sha256"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  for i in $(seq 1 "$count"); do
    head -c "$((mib * 1024 * 1024))" /dev/urandom >"$dir/layer"
    hex=$(sha256sum "$dir/layer" | cut -d' ' -f1)
    mv "$dir/layer" "$dir/blobs/sha256/$hex"
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$hex\",\"size\":$((mib * 1024 * 1024))}"
  done
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"$dir/config"
  local chex csize
  chex=$(sha256sum "$dir/config" | cut -d' ' -f1); csize=$(stat -c %s "$dir/config")
  mv "$dir/config" "$dir/blobs/sha256/$chex"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$chex" "$csize" "$layers" >"$dir/manifest"
  hex=$(sha256sum "$dir/manifest" | cut -d' ' -f1); size=$(stat -c %s "$dir/manifest")
  mv "$dir/manifest" "$dir/blobs/sha256/$hex"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
    "$hex" "$size" >"$dir/index.json"
}

# timed OUT CMD...: runs CMD under GNU time; OUT gets "seconds kib".
timed() {
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$out" "$@" >/dev/null 2>"$out.stderr" || {
    echo "failed: $*" >&2; cat "$out.stderr" >&2; return 1; }
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

src=$(start_registry src)
declare -A total_mib=([big]=200 [small]=20 [one]=200)
make_layout "$work/layout-big" 4 50
make_layout "$work/layout-small" 4 5
make_layout "$work/layout-one" 1 200
for image in big small one; do
  skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout-$image:v1" "docker://$src/bench/$image:v1" >/dev/null
done

results=()
# run TOOL IMAGE → appends "TOOL IMAGE seconds MiB/s peak-MiB" (medians)
run() {
  local tool=$1 image=$2 i dst secs=() rss=()
  for i in $(seq 1 "$RUNS"); do
    dst=$(start_registry dst)
    case $tool in
      signet) timed "$work/t" "$signet" mirror --quiet --jobs "$JOBS" "$src/bench/$image:v1" "$dst/bench/$image:v1" ;;
      skopeo) timed "$work/t" skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false \
                "docker://$src/bench/$image:v1" "docker://$dst/bench/$image:v1" ;;
    esac
    read -r s k <"$work/t"
    secs+=("$s"); rss+=("$k")
    stop_registry dst
  done
  local s k
  s=$(printf '%s\n' "${secs[@]}" | median)
  k=$(printf '%s\n' "${rss[@]}" | median)
  results+=("$(awk -v t="$tool" -v i="$image" -v s="$s" -v k="$k" -v m="${total_mib[$image]}" \
    'BEGIN { printf "%-7s %-22s %8.2f %9.1f %9.1f", t, i, s, m / s, k / 1024 }')")
}

for image in big small one; do
  run signet "$image"
  run skopeo "$image"
done

label() { case $1 in big) echo "4 x 50 MiB (200 MiB)";; small) echo "4 x 5 MiB (20 MiB)";; one) echo "1 x 200 MiB";; esac; }
echo
echo "signet mirror vs skopeo copy, registry to registry on loopback (median of $RUNS, --jobs $JOBS)"
echo "machine: $(nproc) cores, $(awk '/model name/ {sub(/.*: /, ""); print; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM; $(uname -sr)"
echo "versions: $("$signet" --version), skopeo $(skopeo --version | awk '{print $3}'), docker-registry $(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')"
printf '%-7s %-22s %8s %9s %9s\n' tool image seconds "MiB/s" "peak MiB"
for r in "${results[@]}"; do
  set -- $r
  printf '%-7s %-22s %8s %9s %9s\n' "$1" "$(label "$2")" "$3" "$4" "$5"
done
