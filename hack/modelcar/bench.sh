#!/usr/bin/env bash
# OCI benchmark: storage-initializer against `crane export | tar` and
# `skopeo copy` + tar, on one local CNCF distribution registry, in one run.
#   (a) a modelcar image: one gzip layer with models/ = 3 x 1 GiB bf16 shards
#       (normal-distributed values: gzip shrinks them only a little, but must
#       really inflate them) + config/tokenizer files, built with crane append
#   (b) the same model as a CNCF ModelPack artifact with .raw layers (oras push),
#       also pulled with `oras pull`
#   (c) a modelcar of 3 random shards (gzip stores them: inflate is a copy,
#       SHA-256, CRC-32 and writes are what is left), built with crane append
#   (d) modelcar (a) recompressed with zstd (skopeo copy --dest-compress-format
#       zstd, as `buildah push --compression-format zstd` makes it)
# Prints medians, ratios against crane export | tar, the targets, peak RSS.
# Env: BENCH_RUNS (3), BENCH_SHARD_SIZE (1GiB), BENCH_TMP (/var/tmp).
# Run by `make bench` (hack/bench.sh) or alone. It reports; it asserts nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${BENCH_RUNS:-3}
shard=${BENCH_SHARD_SIZE:-1GiB}
bin="$root/bin/storage-initializer"
[[ -x "$bin" ]] || make build >/dev/null
hack/tools.sh registry crane oras bench-apt
crane="$root/.cache/bin/crane"
oras="$root/.cache/bin/oras"
seed="$root/.cache/bin/seed"
go build -o "$seed" ./hack/seed

data="$root/.cache/bench-data/oci-$shard"
# hack/bench.sh generates the same model (same seed) for S3: reuse it.
for d in "$root/.cache/bench-data/$shard"-*; do
  [[ -f "$d/.done" && -d "$d/llm" && ! -f "$data/.done" ]] && data=$d
done
if [[ ! -f "$data/.done" ]]; then
  echo "bench: generating test data in $data (once)" >&2
  rm -rf "$data"
  "$seed" gen -shards 3 -shard-size "$shard" "$data/llm"
  touch "$data/.done"
fi

work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/si-oci-bench.XXXXXX")
trap 'hack/registry.sh stop "$work/registry" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
hack/registry.sh start "$work/registry"
# shellcheck disable=SC1091
source "$work/registry/registry.env"
reg=$SI_REGISTRY
modelcar=$reg/bench/modelcar:gzip
modelpack=$reg/bench/modelpack:raw
random=$reg/bench/modelcar:random
zstd=$reg/bench/modelcar:zstd

echo "bench: pushing the modelcar (crane append) and the ModelPack (oras push)" >&2
tar -C "$data/llm" --transform 's,^\.,models,' --sort=name -cf "$work/models.tar" .
"$crane" append --insecure -f "$work/models.tar" -t "$modelcar" >/dev/null 2>&1
rm -f "$work/models.tar"
rdata="$root/.cache/bench-data/oci-random-$shard"
if [[ ! -f "$rdata/.done" ]]; then
  rm -rf "$rdata"
  "$seed" gen -shards 0 -small-files 3 -small-size "$shard" "$rdata/llm"
  touch "$rdata/.done"
fi
tar -C "$rdata/llm" --transform 's,^\.,models,' --sort=name -cf "$work/models.tar" .
"$crane" append --insecure -f "$work/models.tar" -t "$random" >/dev/null 2>&1
rm -f "$work/models.tar"
# Through an oci: layout: copying registry to registry, skopeo reuses the
# gzip blob the registry already has instead of recompressing it.
skopeo copy --quiet --src-tls-verify=false --dest-compress --dest-compress-format zstd \
  "docker://$modelcar" "oci:$work/zstd:m"
skopeo copy --quiet --dest-tls-verify=false "oci:$work/zstd:m" "docker://$zstd"
rm -rf "$work/zstd"
(
  cd "$data/llm"
  files=() ann="{"
  for f in *; do
    case "$f" in *.safetensors) mt=application/vnd.cncf.model.weight.v1.raw ;; *) mt=application/vnd.cncf.model.weight.config.v1.raw ;; esac
    files+=("$f:$mt")
    ann+="\"$f\":{\"org.cncf.model.filepath\":\"$f\"},"
  done
  echo "${ann%,}}" >"$work/ann.json"
  echo '{"descriptor":{"name":"bench"}}' >"$work/config.json"
  "$oras" push --plain-http --disable-path-validation "$modelpack" \
    --artifact-type application/vnd.cncf.model.manifest.v1+json \
    --config "$work/config.json:application/vnd.cncf.model.config.v1+json" \
    --annotation-file "$work/ann.json" "${files[@]}" >/dev/null
)

cleanenv=(env -i "PATH=$PATH" "HOME=$work/home")
mkdir -p "$work/home"
dest="$work/dest"
results="$work/results.tsv"
: >"$results"
# measure DATASET TOOL CMD... : runs CMD $runs times into a fresh $dest.
measure() {
  local set=$1 tool=$2
  shift 2
  for i in $(seq 1 "$runs"); do
    rm -rf "$dest" "$work/skopeo" && mkdir -p "$dest" && sync
    /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >"$work/out" 2>&1 || { echo "bench: $tool failed:" >&2; tail -5 "$work/out" >&2; exit 1; }
    read -r secs rss usr sys <"$work/time"
    [[ $(du -sb "$dest" | cut -f1) -ge $(du -sb "$data/llm" | cut -f1) ]] || { echo "bench: $tool left an incomplete DEST" >&2; exit 1; }
    cpu=$(python3 -c "print($usr + $sys)")
    printf '%s\t%s\t%s\t%s\t%s\n' "$set" "$tool" "$secs" "$rss" "$cpu" >>"$results"
    echo "bench: $set $tool run $i: ${secs}s, ${cpu}s CPU, peak RSS $((rss / 1024)) MiB" >&2
  done
  rm -rf "$dest" "$work/skopeo"
}

# skopeo has no extraction: copy to a dir: layout, then untar each layer in order.
cat >"$work/skopeo.sh" <<SH
set -e
skopeo copy --quiet --src-tls-verify=false "docker://$modelcar" "dir:$work/skopeo"
python3 -c 'import json,sys; [print(l["digest"].split(":")[1]) for l in json.load(open(sys.argv[1]))["layers"]]' "$work/skopeo/manifest.json" |
  while read -r blob; do tar -xzf "$work/skopeo/\$blob" -C "$dest" models; done
SH

measure modelcar storage-initializer "${cleanenv[@]}" "$bin" --log-format json "oci://$modelcar" "$dest/models"
measure modelcar crane-export sh -c "cd '$dest' && '$crane' export --insecure '$modelcar' - | tar -x models"
measure modelcar skopeo+tar sh "$work/skopeo.sh"
measure modelpack storage-initializer "${cleanenv[@]}" "$bin" --log-format json "oci://$modelpack" "$dest/models"
# oras pull: the ModelPack's own client (each layer's sha256 checked as it streams; one request per layer).
measure modelpack oras-pull sh -c "cd '$dest' && '$oras' pull --plain-http '$modelpack' >/dev/null"
# (c) and (d), the tools taking turns (runs=1 per call, one round per run).
all_runs=$runs runs=1
for i in $(seq 1 "$all_runs"); do
  for set in random zstd; do
    ref=${!set}
    [[ $set == random ]] && check=$rdata || check=$data
    data_was=$data data=$check
    measure "modelcar-$set" storage-initializer "${cleanenv[@]}" "$bin" --log-format json "oci://$ref" "$dest/models"
    measure "modelcar-$set" crane-export sh -c "cd '$dest' && '$crane' export --insecure '$ref' - | tar -x models"
    data=$data_was
  done
done
runs=$all_runs

size=$(du -sb "$data/llm" | cut -f1)
python3 - "$results" "$size" "$runs" <<'PY'
import sys, statistics, collections, datetime, platform, os
path, size, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = collections.defaultdict(list)
cpus = collections.defaultdict(list)
rss = collections.defaultdict(int)
for line in open(path):
    s, tool, secs, kb, cpu = line.split()
    rows[(s, tool)].append(float(secs)); cpus[(s, tool)].append(float(cpu)); rss[(s, tool)] = max(rss[(s, tool)], int(kb))
med = {k: statistics.median(v) for k, v in rows.items()}
cpu = {k: statistics.median(v) for k, v in cpus.items()}
base = med[("modelcar", "crane-export")]
print(f"\nOCI benchmark {datetime.date.today()} on {platform.node()} ({os.cpu_count()} cores), "
      f"CNCF distribution on loopback, model {size/2**30:.2f} GiB, median of {runs} runs\n")
print(f"(load average at the end: {os.getloadavg()[0]:.1f}; CPU s = user + system time of the tool and its children,")
print(" which a busy machine does not inflate the way it does wall time)\n")
print("| source | tool | median s | MiB/s | vs crane export \\| tar | CPU s | peak RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|")
for (s, tool) in [("modelcar", "storage-initializer"), ("modelcar", "crane-export"), ("modelcar", "skopeo+tar"), ("modelpack", "storage-initializer"), ("modelpack", "oras-pull")]:
    m = med[(s, tool)]
    label = {"modelcar": "modelcar (1 gzip layer)", "modelpack": "ModelPack (.raw layers)"}[s]
    print(f"| {label} | {tool} | {m:.2f} | {size/2**20/m:.0f} | {base/m:.2f}x | {cpu[(s, tool)]:.1f} | {rss[(s, tool)]/1024:.0f} |")
print(f"\nTargets: modelcar >= 1.5x crane export | tar: {base/med[('modelcar','storage-initializer')]:.2f}x; "
      f"ModelPack raw >= 3x: {base/med[('modelpack','storage-initializer')]:.2f}x; "
      f"ModelPack raw vs oras pull >= 1.5x: {med[('modelpack','oras-pull')]/med[('modelpack','storage-initializer')]:.2f}x; "
      f"peak RSS <= 64 MiB: {max(rss[('modelcar','storage-initializer')], rss[('modelpack','storage-initializer')])/1024:.0f} MiB")
print("\n| source | tool | median s | MiB/s | vs crane export \\| tar of the same image | CPU s | peak RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|")
for s, label in [("modelcar-random", "modelcar of random shards (gzip)"), ("modelcar-zstd", "modelcar (a), zstd layer")]:
    b = med[(s, "crane-export")]
    for tool in ["storage-initializer", "crane-export"]:
        m = med[(s, tool)]
        print(f"| {label} | {tool} | {m:.2f} | {size/2**20/m:.0f} | {b/m:.2f}x | {cpu[(s, tool)]:.1f} | {rss[(s, tool)]/1024:.0f} |")
print(f"\nTargets (issue 17): weights modelcar >= 2.2x crane: {base/med[('modelcar','storage-initializer')]:.2f}x; "
      f"random modelcar >= 2x: {med[('modelcar-random','crane-export')]/med[('modelcar-random','storage-initializer')]:.2f}x")
PY
