#!/usr/bin/env bash
# Builds the container image from the prebuilt static binary (`make image`).
#
#   hack/image.sh [-t IMAGE] [--push REF]
#
# -t IMAGE    local name (default localhost/storage-initializer:VERSION)
# --push REF  also push it, e.g. 127.0.0.1:5000/si/storage-initializer:ci
#             (plain http only for a loopback registry, as the build machines
#             have; any other registry is pushed to over verified TLS)
#
# Uses docker when a daemon answers, else buildah (Debian package) with the
# vfs storage driver and chroot isolation, which work as root inside an
# unprivileged container. Nothing is pulled: the Dockerfile is FROM scratch
# and COPYs the binary from bin/ (`make build`) and this machine's CA bundle.
#
# Environment: SI_BUILDAH_DIR  buildah storage (default .cache/buildah)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
image="" push=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -t) image=$2; shift 2 ;;
    --push) push=$2; shift 2 ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
done

bin=bin/storage-initializer
[[ -x "$bin" ]] || make build >/dev/null
# The image has no libc: a dynamically linked binary would not even start.
if ! file -L "$bin" | grep -q 'statically linked'; then
  echo "image: $bin is not statically linked; rebuild it with 'make build' (CGO_ENABLED=0)" >&2
  exit 1
fi
version=$("$bin" --version | awk '{print $2}')
image=${image:-localhost/storage-initializer:$version}

cabundle=/etc/ssl/certs/ca-certificates.crt
if [[ ! -s "$cabundle" ]]; then
  "$root/hack/tools.sh" image-apt # pulls in ca-certificates
fi
[[ -s "$cabundle" ]] || { echo "image: no CA bundle at $cabundle; apt-get install ca-certificates" >&2; exit 1; }

ctx=$(mktemp -d "${TMPDIR:-/tmp}/si-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/storage-initializer"
cp "$cabundle" "$ctx/ca-certificates.crt"
# Files in the image are owned by root and not writable by UID 1000.
chmod 0555 "$ctx/storage-initializer"
chmod 0444 "$ctx/ca-certificates.crt"

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker build -q --build-arg "VERSION=$version" -f Dockerfile -t "$image" "$ctx" >/dev/null
  size=$(docker image inspect --format '{{.Size}}' "$image")
  if [[ -n "$push" ]]; then
    docker tag "$image" "$push"
    docker push -q "$push" >/dev/null
  fi
else
  command -v buildah >/dev/null || "$root/hack/tools.sh" image-apt
  store=${SI_BUILDAH_DIR:-$root/.cache/buildah}
  bah() { buildah --root "$store/storage" --runroot "$store/run" --storage-driver vfs "$@"; }
  # A rebuild under the same tag leaves the old image untagged; vfs keeps a
  # full copy of each, so drop it rather than let CI runs fill the disk.
  old=$(bah images -q --no-trunc "$image" 2>/dev/null || true)
  bah bud --isolation chroot --layers=false -q --build-arg "VERSION=$version" \
    -f Dockerfile -t "$image" "$ctx" >/dev/null
  if [[ -n "$old" && "$old" != "$(bah images -q --no-trunc "$image")" ]]; then
    bah rmi "$old" >/dev/null 2>&1 || true
  fi
  size=$(bah images --format '{{.Size}}' "$image" 2>/dev/null | head -1)
  if [[ -n "$push" ]]; then
    tls=true
    [[ "$push" =~ ^(localhost|127\.[0-9.]+)(:[0-9]+)?/ ]] && tls=false
    bah push -q --tls-verify=$tls --format oci "$image" "docker://$push" >"$ctx/push.log" 2>&1 ||
      { cat "$ctx/push.log" >&2; exit 1; }
  fi
fi

if [[ "$size" =~ ^[0-9]+$ ]]; then
  size=$(awk -v b="$size" 'BEGIN { printf "%.1f MB", b / 1e6 }')
fi
echo "image: built $image ($version, $size uncompressed)${push:+, pushed to $push}" >&2
