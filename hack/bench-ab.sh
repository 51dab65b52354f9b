#!/usr/bin/env bash
# Before/after benchmark of this binary: builds BASE (a git revision,
# default HEAD~1) and the working tree, then times both on the same MinIO
# and registry, taking turns, for the four workloads the engine must not
# slow down: (a) S3 3 x 1 GiB shards + small files, (b) S3 1,000 x 256 KiB,
# (c) a gzip modelcar of model (a), (d) the same model as a ModelPack
# artifact of .raw layers. Prints medians of wall and CPU seconds.
#   hack/bench-ab.sh [BASE]      env: BENCH_RUNS (3), BENCH_SHARD_SIZE (1GiB)
# A benchmark, not a test: it asserts nothing, it reports.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
base=${1:-HEAD~1}
runs=${BENCH_RUNS:-3}
shard=${BENCH_SHARD_SIZE:-1GiB}
hack/tools.sh minio registry crane oras
seed="$root/.cache/bin/seed"
go build -o "$seed" ./hack/seed
work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/si-ab.XXXXXX")
cleanup() {
  hack/minio.sh stop "$work/minio" >/dev/null 2>&1 || true
  hack/registry.sh stop "$work/registry" >/dev/null 2>&1 || true
  git worktree remove --force "$work/base-src" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

git worktree add -q --detach "$work/base-src" "$base"
(cd "$work/base-src" && CGO_ENABLED=0 go build -trimpath -o "$work/before" ./cmd/storage-initializer)
CGO_ENABLED=0 go build -trimpath -o "$work/after" ./cmd/storage-initializer

data="$root/.cache/bench-data/$shard-1000"
if [[ ! -f "$data/.done" ]]; then
  rm -rf "$data"
  "$seed" gen -shards 3 -shard-size "$shard" "$data/llm"
  "$seed" gen -shards 0 -small-files 1000 -small-size 256KiB "$data/smallset"
  touch "$data/.done"
fi
hack/minio.sh start "$work/minio" >/dev/null
# shellcheck disable=SC1091
source "$work/minio/minio.env"
hack/registry.sh start "$work/registry" >/dev/null
# shellcheck disable=SC1091
source "$work/registry/registry.env"
ep=$SI_MINIO_ENDPOINT reg=$SI_REGISTRY
"$seed" put -endpoint "$ep" -bucket bench -prefix llm -checksum crc64nvme -part-size 64MiB "$data/llm"
"$seed" put -endpoint "$ep" -bucket bench -prefix small -checksum crc64nvme "$data/smallset/small"
tar -C "$data/llm" --transform 's,^\.,models,' --sort=name -cf "$work/models.tar" .
.cache/bin/crane append --insecure -f "$work/models.tar" -t "$reg/bench/modelcar:gzip" >/dev/null 2>&1
rm -f "$work/models.tar"
(
  cd "$data/llm"
  files=() ann="{"
  for f in *; do
    files+=("$f:application/vnd.cncf.model.weight.v1.raw")
    ann+="\"$f\":{\"org.cncf.model.filepath\":\"$f\"},"
  done
  echo "${ann%,}}" >"$work/ann.json"
  echo '{"descriptor":{"name":"bench"}}' >"$work/config.json"
  "$root/.cache/bin/oras" push --plain-http --disable-path-validation "$reg/bench/modelpack:raw" \
    --artifact-type application/vnd.cncf.model.manifest.v1+json \
    --config "$work/config.json:application/vnd.cncf.model.config.v1+json" \
    --annotation-file "$work/ann.json" "${files[@]}" >/dev/null
)

env=(env -i "PATH=$PATH" "HOME=$work" "AWS_ACCESS_KEY_ID=$SI_MINIO_ACCESS_KEY"
  "AWS_SECRET_ACCESS_KEY=$SI_MINIO_SECRET_KEY" "AWS_DEFAULT_REGION=us-east-1" "AWS_ENDPOINT_URL=$ep")
declare -A src=([s3-large]="s3://bench/llm" [s3-small]="s3://bench/small"
  [modelcar]="oci://$reg/bench/modelcar:gzip" [modelpack]="oci://$reg/bench/modelpack:raw")
results="$work/results.tsv"
: >"$results"
for set in s3-large s3-small modelcar modelpack; do # one untimed warm-up read each
  "${env[@]}" "$work/after" --log-format json "${src[$set]}" "$work/dest" >/dev/null 2>&1
  rm -rf "$work/dest"
done
order=(before after)
for i in $(seq 1 "$runs"); do
  for set in s3-large s3-small modelcar modelpack; do
    for b in "${order[@]}"; do
      rm -rf "$work/dest" && sync
      /usr/bin/time -f "%e %U %S %M" -o "$work/time" "${env[@]}" "$work/$b" --log-format json "${src[$set]}" "$work/dest" \
        >"$work/out" 2>&1 || { echo "bench-ab: $b $set failed:" >&2; tail -3 "$work/out" >&2; exit 1; }
      read -r secs usr sys rss <"$work/time"
      printf '%s\t%s\t%s\t%s\t%s\n' "$set" "$b" "$secs" "$(python3 -c "print($usr+$sys)")" "$rss" >>"$results"
      echo "bench-ab: round $i $set $b: ${secs}s" >&2
    done
  done
  order=("${order[1]}" "${order[0]}") # who goes first alternates by round
done
python3 - "$results" "$runs" "$base" <<'PY'
import sys, statistics, collections, datetime, os
rows = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    s, b, secs, cpu, rss = line.split()
    rows[s][b + " wall"].append(float(secs)); rows[s][b + " cpu"].append(float(cpu)); rows[s][b + " rss"].append(int(rss))
print(f"\nbench-ab {datetime.date.today()}, {os.cpu_count()} cores, before = {sys.argv[3]}, median of {sys.argv[2]} runs\n")
print("| workload | before s | after s | after/before | before CPU s | after CPU s | peak RSS MiB before/after |")
print("|---|---:|---:|---:|---:|---:|---:|")
for s in ("s3-large", "s3-small", "modelcar", "modelpack"):
    m = {k: statistics.median(v) for k, v in rows[s].items()}
    print(f"| {s} | {m['before wall']:.2f} | {m['after wall']:.2f} | {m['after wall']/m['before wall']:.2f} | "
          f"{m['before cpu']:.1f} | {m['after cpu']:.1f} | {max(rows[s]['before rss'])//1024}/{max(rows[s]['after rss'])//1024} |")
PY
