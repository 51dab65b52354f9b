#!/usr/bin/env bash
# `make demo`: starts a local MinIO and a CNCF distribution registry, stages a
# small model (2 x 32 MiB bf16 shards + config/tokenizer files) in both, and
# downloads it three ways — s3:// with KServe's env, oci:// from a modelcar
# image, and a local folder copied like a PVC — then checks each copy is
# byte-identical to the source and stops the servers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin="$root/bin/storage-initializer"
[[ -x "$bin" ]] || make build >/dev/null

hack/tools.sh minio registry crane
seed="$root/.cache/bin/seed"
go build -o "$seed" ./hack/seed

work=$(mktemp -d "${TMPDIR:-/tmp}/si-demo.XXXXXX")
cleanup() {
  hack/minio.sh stop "$work/minio" >/dev/null 2>&1 || true
  hack/registry.sh stop "$work/registry" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
hack/minio.sh start "$work/minio" 2>/dev/null
hack/registry.sh start "$work/registry" >/dev/null 2>&1
# shellcheck disable=SC1091
source "$work/minio/minio.env"
# shellcheck disable=SC1091
source "$work/registry/registry.env"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "staging a small model"
"$seed" gen -shards 2 -shard-size 32MiB "$work/stage/models"
"$seed" put -endpoint "$SI_MINIO_ENDPOINT" -bucket models -prefix demo-llm -checksum crc64nvme -part-size 16MiB "$work/stage/models"
tar -C "$work/stage" -czf "$work/layer.tar.gz" models
image="$SI_REGISTRY/demo/llm-modelcar:v1"
"$root/.cache/bin/crane" append --insecure -f "$work/layer.tar.gz" -t "$image" >/dev/null
echo "model: $(du -sh "$work/stage/models" | cut -f1) in s3://models/demo-llm and in the modelcar $image"

run() { # label, shown command, then the command
  step "$1"
  echo "\$ $2"
  shift 2
  "$@"
}
base=(env -i "PATH=$PATH" "HOME=$work" "TERM=${TERM:-dumb}")
s3cmd="S3_ENDPOINT=${SI_MINIO_ENDPOINT#http://} S3_USE_HTTPS=0 AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… storage-initializer s3://models/demo-llm out/s3"
run "1/3  s3:// with KServe's S3 env" "$s3cmd" \
  "${base[@]}" "S3_ENDPOINT=${SI_MINIO_ENDPOINT#http://}" S3_USE_HTTPS=0 \
  "AWS_ACCESS_KEY_ID=$SI_MINIO_ACCESS_KEY" "AWS_SECRET_ACCESS_KEY=$SI_MINIO_SECRET_KEY" \
  "$bin" --log-format console s3://models/demo-llm "$work/out/s3"
run "2/3  oci:// modelcar image (only /models is kept)" "storage-initializer oci://$image out/oci" \
  "${base[@]}" "$bin" --log-format console "oci://$image" "$work/out/oci"
run "3/3  a local folder, copied like a PVC" "storage-initializer --pvc-mode copy stage/models out/local" \
  "${base[@]}" "$bin" --log-format console --pvc-mode copy "$work/stage/models" "$work/out/local"
run "again: a rerun finds every file present and fetches nothing" "$s3cmd" \
  "${base[@]}" "S3_ENDPOINT=${SI_MINIO_ENDPOINT#http://}" S3_USE_HTTPS=0 \
  "AWS_ACCESS_KEY_ID=$SI_MINIO_ACCESS_KEY" "AWS_SECRET_ACCESS_KEY=$SI_MINIO_SECRET_KEY" \
  "$bin" --log-format console s3://models/demo-llm "$work/out/s3"

step "checking the three copies against the source"
for d in s3 oci local; do
  diff -r "$work/stage/models" "$work/out/$d" >/dev/null && echo "$d: identical" || { echo "$d: DIFFERS"; exit 1; }
done
echo
echo "demo OK"
