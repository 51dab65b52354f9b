#!/usr/bin/env bash
# Load tests of the binary against a throwaway MinIO (README: guarantees):
# 10,000 × 4 KiB files and one 8 GiB file, reporting peak RSS and the most
# open file descriptors. Needs about 17 GiB free in TMPDIR and a few minutes.
#
#   hack/load.sh            both
#   hack/load.sh Small      only the many-small-files test (a -run regexp)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/hack/tools.sh" minio
tmp=$(mktemp -d "${TMPDIR:-/tmp}/si-load.XXXXXX")
cleanup() {
  "$root/hack/minio.sh" stop "$tmp/minio" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
"$root/hack/minio.sh" start "$tmp/minio"
# shellcheck disable=SC1091
source "$tmp/minio/minio.env"
export SI_LOAD=1 SI_REQUIRE_SERVERS=1
go test -count=1 -timeout 60m -v -run "TestLoad${1:-}" ./cmd/storage-initializer | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|LOAD|uploaded|Error|expected|actual' 
