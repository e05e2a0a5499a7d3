#!/usr/bin/env bash
# Writes a small two-platform image (linux/amd64 and linux/arm64) into an OCI image layout for
# each reference given, with nothing but coreutils, tar and gzip: no registry, no daemon, no root.
#
#   bash scripts/make-layout.sh DIR REF...
#
# Each REF (for example registry.example.com/shop/cart:1.0) becomes the image's tag in DIR's
# index.json (org.opencontainers.image.ref.name), so `oci:DIR:REF` names it. Output is
# byte-for-byte reproducible: the same REFs give the same digests.
set -euo pipefail
if [ "$#" -lt 2 ]; then
  echo "usage: $0 DIR REF..." >&2
  exit 2
fi
dir="$1"
shift
if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  echo "$dir exists and is not empty; refusing to overwrite it" >&2
  exit 2
fi
mkdir -p "$dir/blobs/sha256"
printf '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# blob FILE → stores FILE under blobs/sha256 and prints "digest size".
blob() {
  local hex size
  hex="$(sha256sum "$1" | cut -d' ' -f1)"
  size="$(stat -c %s "$1")"
  cp "$1" "$dir/blobs/sha256/$hex"
  printf 'sha256:%s %s' "$hex" "$size"
}

entries=()
for ref in "$@"; do
  manifests=()
  for arch in amd64 arm64; do
    rm -rf "$tmp/root" && mkdir -p "$tmp/root/app"
    printf 'image %s for linux/%s\n' "$ref" "$arch" > "$tmp/root/app/hello.txt"
    tar --sort=name --mtime='2026-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
      -C "$tmp/root" -cf "$tmp/layer.tar" app
    gzip -n -9 -c "$tmp/layer.tar" > "$tmp/layer.tar.gz"
    diff_id="sha256:$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)"
    read -r layer_digest layer_size <<< "$(blob "$tmp/layer.tar.gz")"
    printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/app/hello.txt"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
      "$arch" "$diff_id" > "$tmp/config.json"
    read -r config_digest config_size <<< "$(blob "$tmp/config.json")"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
      "$config_digest" "$config_size" "$layer_digest" "$layer_size" > "$tmp/manifest.json"
    read -r m_digest m_size <<< "$(blob "$tmp/manifest.json")"
    manifests+=("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$m_digest\",\"size\":$m_size,\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"}}")
  done
  (IFS=,; printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' \
    "${manifests[*]}") > "$tmp/index.json"
  read -r i_digest i_size <<< "$(blob "$tmp/index.json")"
  entries+=("{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"$i_digest\",\"size\":$i_size,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$ref\"}}")
  printf '%s %s\n' "$ref" "$i_digest"
done
(IFS=,; printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' \
  "${entries[*]}") > "$dir/index.json"
