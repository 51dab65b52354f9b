#!/usr/bin/env bash
# Installs the real servers and tools the tests and benchmarks use into .cache/bin
# (ignored by git), so later runs on the same machine are fast. Idempotent.
# Usage: hack/tools.sh [minio] [registry] [crane] [oras] [fake-gcs-server] [azurite] [staticcheck] [kubeconform] [bench-apt] [image-apt] [proxy-apt]   (no args: minio registry crane)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The binaries live in a per-user cache shared by every clone on the machine
# (CI runs on fresh clones), reached through the ignored .cache/bin link.
shared="${SI_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/storage-initializer/bin}"
mkdir -p "$shared" "$root/.cache"
if [[ ! -e "$root/.cache/bin" ]]; then
  ln -s "$shared" "$root/.cache/bin"
fi
bin="$root/.cache/bin"
export GOBIN="$bin" GOFLAGS=-mod=mod

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
REGISTRY_VERSION=v3.1.2
CRANE_VERSION=v0.22.1
ORAS_VERSION=v1.3.6
# 2026.x releases: the first that understand go1.26 sources.
STATICCHECK_VERSION=v0.8.2
KUBECONFORM_VERSION=v0.8.0
FAKE_GCS_VERSION=v1.56.1
# 3.35.0: the last Azurite that runs on Node 20 (later ones want Node >= 22).
AZURITE_VERSION=3.35.0

install_go() { # name module@version
  local name=$1 mod=$2 stamp="$bin/.$1.version"
  if [[ -x "$bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$mod" ]]; then return; fi
  echo "tools: installing $mod (once; cached in .cache/bin)" >&2
  (cd "$root/.cache" && CGO_ENABLED=0 go install "$mod")
  echo "$mod" >"$stamp"
}

# install_npm puts an npm package's command into .cache/bin through a small
# prefix of its own under the shared cache (npm's own cache stays in ~/.npm).
install_npm() { # name package@version command
  local name=$1 pkg=$2 cmd=$3 stamp="$bin/.$1.version" prefix="$bin/.npm-$1"
  if [[ -x "$bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$pkg" ]]; then return; fi
  command -v npm >/dev/null || install_apt nodejs npm
  echo "tools: installing $pkg with npm (once; cached in .cache/bin)" >&2
  # Into a private folder first, renamed into place: two installs running at
  # once (parallel test runs sharing the tool cache) never mix their trees.
  local tmp="$prefix.tmp.$$"
  rm -rf "$tmp"
  npm install --silent --no-audit --no-fund --prefix "$tmp" "$pkg" >/dev/null
  rm -rf "$prefix"
  mv "$tmp" "$prefix"
  # Relative, so the link works from every clone sharing the tool cache.
  ln -sfn ".npm-$1/node_modules/.bin/$cmd" "$bin/$name"
  "$bin/$name" --version >/dev/null || { echo "tools: $pkg installed but does not run" >&2; exit 1; }
  echo "$pkg" >"$stamp"
}

install_apt() { # packages...
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return
  echo "tools: apt-get install ${missing[*]}" >&2
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

want=("$@"); [[ ${#want[@]} -eq 0 ]] && want=(minio registry crane)
for w in "${want[@]}"; do
  case "$w" in
    minio)    install_go minio "github.com/minio/minio@$MINIO_VERSION" ;;
    registry) install_go registry "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION" ;;
    crane)    install_go crane "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" ;;
    oras)     install_go oras "oras.land/oras/cmd/oras@$ORAS_VERSION" ;;
    fake-gcs-server) install_go fake-gcs-server "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION" ;;
    azurite)  install_npm azurite "azurite@$AZURITE_VERSION" azurite-blob ;;
    staticcheck) install_go staticcheck "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ;;
    kubeconform) install_go kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" ;;
    bench-apt) install_apt awscli rclone skopeo ;;
    image-apt) install_apt buildah busybox-static ;;
    proxy-apt) install_apt tinyproxy ;; # a real HTTP proxy for the proxy tests
    *) echo "tools: unknown tool $w" >&2; exit 2 ;;
  esac
done
