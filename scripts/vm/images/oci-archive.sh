#!/usr/bin/env bash
# Writes a single-layer OCI image archive (the image layout of the OCI image spec, as a tar) that
# `ctr images import` takes: no registry and no image builder are needed for the VM ground's images.
#   usage: oci-archive.sh NAME ROOTFS_DIR OUT.tar ENTRYPOINT [ARG]...
# NAME is the full reference containerd stores the image as (io.containerd.image.name), e.g.
# localhost/node-health/pause:1. The layer is an uncompressed, reproducible tar of ROOTFS_DIR.
set -euo pipefail
[[ $# -ge 4 ]] || { echo "usage: oci-archive.sh NAME ROOTFS_DIR OUT.tar ENTRYPOINT [ARG]..." >&2; exit 2; }
name=$1 rootfs=$2 out=$3
shift 3
[[ -d $rootfs ]] || { echo "oci-archive: $rootfs is not a directory" >&2; exit 2; }
command -v jq >/dev/null || { echo "oci-archive: jq not found: run scripts/setup.sh (apt-get install jq)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"

# blob FILE: moves FILE into the blob store; prints "DIGEST SIZE".
blob() {
  local sum size
  sum=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$work/blobs/sha256/$sum"
  echo "sha256:$sum $size"
}

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$rootfs" -cf "$work/layer" .
read -r layer layer_size <<<"$(blob "$work/layer")"

jq -n --arg diff "$layer" --args '{
  architecture: "amd64", os: "linux",
  config: {Entrypoint: $ARGS.positional, Env: ["PATH=/bin"], WorkingDir: "/"},
  rootfs: {type: "layers", diff_ids: [$diff]},
  history: [{created_by: "scripts/vm/images/oci-archive.sh"}]
}' "$@" >"$work/config"
read -r config config_size <<<"$(blob "$work/config")"

jq -n --arg config "$config" --argjson config_size "$config_size" --arg layer "$layer" --argjson layer_size "$layer_size" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $config, size: $config_size},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $layer, size: $layer_size}]
}' >"$work/manifest"
read -r manifest manifest_size <<<"$(blob "$work/manifest")"

jq -n --arg manifest "$manifest" --argjson size "$manifest_size" --arg name "$name" '{
  schemaVersion: 2,
  manifests: [{
    mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $manifest, size: $size,
    platform: {architecture: "amd64", os: "linux"},
    annotations: {"io.containerd.image.name": $name, "org.opencontainers.image.ref.name": ($name | sub(".*:"; ""))}
  }]
}' >"$work/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work" -cf "$out" oci-layout index.json blobs
