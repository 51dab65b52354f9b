#!/usr/bin/env bash
# The test command (README: `make test`). Installs the real servers the tests
# use (cached in .cache/bin), starts MinIO and a CNCF distribution registry on
# loopback, runs vet (or only `go test ARGS` when given arguments), the unit/integration/e2e tests, the race detector on the
# engine and short fuzz runs, then stops the servers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Debian packages first (buildah + busybox-static for the modelcar fixture,
# tinyproxy for the proxy tests): a no-op when they are installed.
"$root/hack/tools.sh" image-apt proxy-apt minio registry crane oras fake-gcs-server azurite
tmp=$(mktemp -d "${TMPDIR:-/tmp}/si-test.XXXXXX")
cleanup() {
  "$root/hack/minio.sh" stop "$tmp/minio" >/dev/null 2>&1 || true
  [[ -x "$root/hack/registry.sh" ]] && "$root/hack/registry.sh" stop "$tmp/registry" >/dev/null 2>&1 || true
  "$root/hack/fakegcs.sh" stop "$tmp/fakegcs" >/dev/null 2>&1 || true
  "$root/hack/azurite.sh" stop "$tmp/azurite" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$root/hack/minio.sh" start "$tmp/minio"
# shellcheck disable=SC1091
source "$tmp/minio/minio.env"
if [[ -x "$root/hack/registry.sh" ]]; then
  "$root/hack/registry.sh" start "$tmp/registry"
  # shellcheck disable=SC1091
  source "$tmp/registry/registry.env"
fi
# The GCS and Azure emulators (gs:// and Azure Blob tests).
"$root/hack/fakegcs.sh" start "$tmp/fakegcs"
# shellcheck disable=SC1091
source "$tmp/fakegcs/fakegcs.env"
"$root/hack/azurite.sh" start "$tmp/azurite"
# shellcheck disable=SC1091
source "$tmp/azurite/azurite.env"
export SI_REQUIRE_SERVERS=1 PATH="$root/.cache/bin:$PATH"

if [[ $# -gt 0 ]]; then # a subset: hack/test.sh ./cmd/... -run E2E
  go test -count=1 -timeout 20m "$@"
  exit
fi
echo "== manifests"
"$root/hack/validate-manifests.sh"
echo "== go vet"
go vet ./...
echo "== go test"
go test -count=1 -timeout 20m ./...
echo "== go test -race (engine)"
go test -count=1 -race -timeout 10m ./pkg/engine/...
if [[ -x "$root/hack/fuzz.sh" ]]; then
  echo "== fuzz (short)"
  "$root/hack/fuzz.sh" 10s
fi
echo "== all tests passed"
