#!/usr/bin/env bash
# Builds a modelcar image with buildah, as users do, and pushes it.
#
#   hack/modelcar/build.sh IMAGE [MODEL_DIR]
#
# IMAGE      where to push, e.g. 127.0.0.1:5000/si/modelcar:v1 (plain http is fine)
# MODEL_DIR  the model copied to /models (default testdata/oci/model)
#
# Environment:
#   AUTHFILE     docker config.json with credentials for the push (optional)
#   COMPRESSION  gzip (default) or zstd
#   DIGESTFILE   write the pushed manifest digest there (optional)
#   SI_BUILDAH_DIR  buildah storage (default .cache/buildah; vfs driver, reused)
#
# The base image is built first from Debian's busybox-static (FROM scratch,
# /bin/busybox and its applet links); no image is pulled from anywhere.
# buildah runs with the vfs storage driver and chroot isolation, which work
# as root inside an unprivileged container (no overlay mounts, no user
# namespaces needed).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/hack/modelcar"
[[ $# -ge 1 && $# -le 2 ]] || { sed -n '2,20p' "$0" >&2; exit 2; }
image=$1
model=${2:-$root/testdata/oci/model}
store=${SI_BUILDAH_DIR:-$root/.cache/buildah}
compression=${COMPRESSION:-gzip}

command -v buildah >/dev/null || "$root/hack/tools.sh" image-apt
busybox=$(command -v busybox || true)
[[ -f /bin/busybox ]] && busybox=/bin/busybox
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  "$root/hack/tools.sh" image-apt
  busybox=/bin/busybox
fi

bah() { buildah --root "$store/storage" --runroot "$store/run" --storage-driver vfs "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The base, once per storage (rebuilt when busybox changes).
base_id=$(sha256sum "$busybox" | cut -c1-12)
base=localhost/si-busybox:$base_id
if ! bah inspect --type image "$base" >/dev/null 2>&1; then
  mkdir -p "$work/base"
  cp "$busybox" "$work/base/busybox"
  bah bud --isolation chroot --layers=false -q -f "$here/Containerfile.busybox" -t "$base" "$work/base" >/dev/null
fi

mkdir -p "$work/ctx"
cp -a "$model" "$work/ctx/models"
bah bud --isolation chroot -q --build-arg "BASE=$base" -f "$here/Containerfile" -t "$image" "$work/ctx" >/dev/null

push=(push --tls-verify=false --format oci --compression-format "$compression" --digestfile "$work/digest")
[[ -n "${AUTHFILE:-}" ]] && push+=(--authfile "$AUTHFILE")
bah "${push[@]}" "$image" "docker://$image" >"$work/push.log" 2>&1 || { cat "$work/push.log" >&2; exit 1; }
bah rmi -f "$image" >/dev/null 2>&1 || true
[[ -n "${DIGESTFILE:-}" ]] && cp "$work/digest" "$DIGESTFILE"
echo "modelcar: pushed $image@$(cat "$work/digest")" >&2
