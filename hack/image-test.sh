#!/usr/bin/env bash
# CI check of the image as shipped, not only the binary:
#   1. builds it (hack/image.sh) and pushes it to a local distribution registry;
#   2. reads its config back with crane: User 1000:0, Entrypoint the binary, no Cmd;
#   3. exports its filesystem (crane export) and checks it holds only the binary
#      and the CA bundle, and that the compressed image is under 30 MB;
#   4. runs the entrypoint from that filesystem as UID 1000, group 0, no other
#      groups (setpriv), against MinIO with KServe's S3 env, and checks the model
#      arrives byte-identical and owned by UID 1000;
#   5. runs it again chrooted into the exported filesystem (only what the image
#      holds: no /tmp, no /etc/passwd, its own CA bundle), DEST /mnt/models.
# Uses the servers named by SI_MINIO_* / SI_REGISTRY when set (hack/test.sh),
# else starts throwaway ones. Needs root (setpriv, chroot).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
max_bytes=$((30 * 1000 * 1000))

"$root/hack/tools.sh" minio registry crane
crane="$root/.cache/bin/crane"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/si-image-test.XXXXXX")
cleanup() {
  [[ -f "$tmp/minio/minio.pid" ]] && hack/minio.sh stop "$tmp/minio" >/dev/null 2>&1
  [[ -f "$tmp/registry/registry.env" ]] && hack/registry.sh stop "$tmp/registry" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "image-test: FAIL: $*" >&2; exit 1; }
ok() { echo "image-test: ok: $*" >&2; }

if [[ -z "${SI_MINIO_ENDPOINT:-}" ]]; then
  hack/minio.sh start "$tmp/minio" 2>/dev/null
  # shellcheck disable=SC1091
  source "$tmp/minio/minio.env"
fi
if [[ -z "${SI_REGISTRY:-}" ]]; then
  hack/registry.sh start "$tmp/registry" >/dev/null 2>&1
  # shellcheck disable=SC1091
  source "$tmp/registry/registry.env"
fi

# 1. build and push
make build >/dev/null
ref="$SI_REGISTRY/si/storage-initializer:image-test"
hack/image.sh -t localhost/storage-initializer:image-test --push "$ref"

# 2. the config as a registry (and so the kubelet) sees it
"$crane" config --insecure "$ref" >"$tmp/config.json"
user=$(jq -r '.config.User' "$tmp/config.json")
entrypoint=$(jq -c '.config.Entrypoint' "$tmp/config.json")
cmd=$(jq -c '.config.Cmd' "$tmp/config.json")
[[ "$user" == "1000:0" ]] || fail "config User is '$user', want 1000:0"
[[ "$entrypoint" == '["/storage-initializer"]' ]] || fail "config Entrypoint is $entrypoint, want [\"/storage-initializer\"]"
[[ "$cmd" == "null" || "$cmd" == "[]" ]] || fail "config Cmd is $cmd; KServe passes only args, so there must be none"
ok "config: User $user, Entrypoint $entrypoint"

# 3. the filesystem and the size
"$crane" manifest --insecure "$ref" >"$tmp/manifest.json"
compressed=$(jq '[.layers[].size] | add' "$tmp/manifest.json")
(( compressed < max_bytes )) || fail "image is $compressed bytes compressed, goal < $max_bytes"
rootfs="$tmp/rootfs"
mkdir -p "$rootfs"
"$crane" export --insecure "$ref" - | tar -x -C "$rootfs"
files=$(cd "$rootfs" && find . -type f | sort | tr '\n' ' ')
[[ "$files" == "./etc/ssl/certs/ca-certificates.crt ./storage-initializer " ]] ||
  fail "image holds unexpected files: $files"
uncompressed=$(du -sb "$rootfs" | cut -f1)
ok "filesystem: $files($(awk -v c="$compressed" -v u="$uncompressed" 'BEGIN { printf "%.1f MB compressed, %.1f MB on disk", c/1e6, u/1e6 }'))"
want_version=$(bin/storage-initializer --version)
got_version=$(env -i "$rootfs/storage-initializer" --version)
[[ "$got_version" == "$want_version" ]] || fail "image binary says '$got_version', bin/ says '$want_version'"

# 4. the entrypoint from the exported filesystem as UID 1000 against MinIO
go run ./hack/seed gen -shards 2 -shard-size 3MiB -small-files 5 -small-size 10KiB "$tmp/model" >/dev/null
: >"$tmp/model/empty-marker" # zero-byte objects must arrive too
go run ./hack/seed put -endpoint "$SI_MINIO_ENDPOINT" -bucket image-test -prefix model -part-size 5MiB "$tmp/model" >/dev/null
s3env=(env -i "S3_ENDPOINT=${SI_MINIO_ENDPOINT#http://}" S3_USE_HTTPS=0
  "AWS_ACCESS_KEY_ID=$SI_MINIO_ACCESS_KEY" "AWS_SECRET_ACCESS_KEY=$SI_MINIO_SECRET_KEY")
# The pod's emptyDir: writable by the group 0 the image runs in.
mkdir -p "$tmp/pod"
chown 1000:0 "$tmp/pod"
chmod 0770 "$tmp/pod"
chmod go+x "$tmp" # let UID 1000 (group 0: the group class applies) reach the rootfs and pod folder
"${s3env[@]}" "$(command -v setpriv)" --reuid 1000 --regid 0 --clear-groups \
  "$rootfs/storage-initializer" --termination-log "$tmp/pod/termination-log" \
  s3://image-test/model "$tmp/pod/models" 2>"$tmp/run.log" ||
  { tail -n 20 "$tmp/run.log" >&2; fail "the image's entrypoint failed as UID 1000"; }
diff -r "$tmp/model" "$tmp/pod/models" >/dev/null || fail "downloaded model differs from the source"
owners=$(find "$tmp/pod/models" -type f -printf '%U\n' | sort -u | tr '\n' ' ')
[[ "$owners" == "1000 " ]] || fail "files owned by '$owners', want UID 1000"
ok "setpriv --reuid 1000 --regid 0 --clear-groups: s3://image-test/model byte-identical ($(find "$tmp/model" -type f | wc -l) files)"

# 5. inside the image's filesystem only, as a pod would run it
mkdir -p "$rootfs/mnt/models"
chown 1000:0 "$rootfs/mnt/models"
"${s3env[@]}" "$(command -v chroot)" --userspec=1000:0 "$rootfs" /storage-initializer \
  s3://image-test/model /mnt/models 2>"$tmp/run-chroot.log" ||
  { tail -n 20 "$tmp/run-chroot.log" >&2; fail "the entrypoint failed chrooted into the image"; }
diff -r "$tmp/model" "$rootfs/mnt/models" >/dev/null || fail "model downloaded inside the image differs from the source"
ok "chroot into the image as 1000:0: byte-identical"
echo "image-test: PASS ($ref, $(awk -v c="$compressed" 'BEGIN { printf "%.1f MB", c/1e6 }') compressed)"
