#!/usr/bin/env bash
# hf:// benchmark (issue 14): the LLM-shaped model (3 x 1 GiB bf16 shards +
# config/tokenizer files) served by the stand-in Hub (internal/hubtest via
# hack/hubserve: resolve + 302 to a CDN, LFS files read from disk) over
# hf://, against the same bytes over s3:// from MinIO, in one run. The two
# take turns within each round, each going first in turn. Prints medians,
# CPU seconds, peak RSS and the ratio; the target is hf:// <= 1.10x the
# wall time of s3://.
# Env: BENCH_RUNS (3), BENCH_SHARD_SIZE (1GiB), BENCH_TMP (/var/tmp),
# BENCH_OLD=BINARY also times an older build over hf:// in the same rounds.
# Run by `make bench` (hack/bench.sh; BENCH_HF=0 skips it) or alone.
# It reports; it asserts nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${BENCH_RUNS:-3}
shard=${BENCH_SHARD_SIZE:-1GiB}
bin="$root/bin/storage-initializer"
[[ -x "$bin" ]] || make build >/dev/null
hack/tools.sh minio
seed="$root/.cache/bin/seed"
hubserve="$root/.cache/bin/hubserve"
go build -o "$seed" ./hack/seed
go build -o "$hubserve" ./hack/hubserve

# hack/bench.sh generates the same model (same seed): reuse it.
data="$root/.cache/bench-data/llm-$shard"
for d in "$root/.cache/bench-data/$shard"-* "$root/.cache/bench-data/oci-$shard"; do
  [[ -f "$d/.done" && -d "$d/llm" && ! -f "$data/.done" ]] && data=$d
done
if [[ ! -f "$data/.done" ]]; then
  echo "bench: generating test data in $data (once)" >&2
  rm -rf "$data"
  "$seed" gen -shards 3 -shard-size "$shard" "$data/llm"
  touch "$data/.done"
fi
model="$data/llm"

work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/si-hf-bench.XXXXXX")
hubpid=
cleanup() {
  [[ -n "$hubpid" ]] && kill "$hubpid" 2>/dev/null || true
  hack/minio.sh stop "$work/minio" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
hack/minio.sh start "$work/minio"
# shellcheck disable=SC1091
source "$work/minio/minio.env"
ep=$SI_MINIO_ENDPOINT
"$seed" put -endpoint "$ep" -bucket bench -prefix llm -checksum crc64nvme -part-size 64MiB "$model"

# The stand-in hashes every file once before it answers (a few seconds a GiB).
echo "bench: starting the stand-in Hub on $model" >&2
"$hubserve" -repo bench/model "$model" >"$work/hub.url" 2>"$work/hub.log" &
hubpid=$!
for _ in $(seq 1 600); do
  [[ -s "$work/hub.url" ]] && break
  kill -0 "$hubpid" 2>/dev/null || { echo "bench: hubserve exited:" >&2; cat "$work/hub.log" >&2; exit 1; }
  sleep 0.5
done
hub=$(head -1 "$work/hub.url")
[[ "$hub" == http://127.0.0.1:* ]] || { echo "bench: hubserve printed no loopback URL within 300 s" >&2; exit 1; }

mkdir -p "$work/home"
dest="$work/dest"
hf_run=(env -i "PATH=$PATH" "HOME=$work/home" "HF_ENDPOINT=$hub" "$bin" --log-format json hf://bench/model "$dest")
s3_run=(env -i "PATH=$PATH" "HOME=$work/home" "AWS_ACCESS_KEY_ID=$SI_MINIO_ACCESS_KEY" "AWS_SECRET_ACCESS_KEY=$SI_MINIO_SECRET_KEY"
  "AWS_DEFAULT_REGION=us-east-1" "AWS_ENDPOINT_URL=$ep" "$bin" --log-format json s3://bench/llm "$dest")

results="$work/results.tsv"
: >"$results"
size=$(du -sb "$model" | cut -f1)
# measure SOURCE CMD... : one timed run of CMD into a fresh $dest.
measure() {
  local src=$1
  shift
  rm -rf "$dest" && mkdir -p "$dest" && sync
  /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >"$work/out" 2>&1 || { echo "bench: $src failed:" >&2; tail -5 "$work/out" >&2; exit 1; }
  read -r secs rss usr sys <"$work/time"
  [[ $(du -sb "$dest" | cut -f1) -ge $size ]] || { echo "bench: $src left an incomplete DEST" >&2; exit 1; }
  cpu=$(python3 -c "print(round($usr + $sys, 2))")
  printf '%s\t%s\t%s\t%s\n' "$src" "$secs" "$rss" "$cpu" >>"$results"
  echo "bench: $src: ${secs}s, ${cpu}s CPU, peak RSS $((rss / 1024)) MiB" >&2
  rm -rf "$dest"
}
hf_cmd() { measure hf:// "${hf_run[@]}"; }
s3_cmd() { measure s3:// "${s3_run[@]}"; }
hf_old_cmd() { measure hf://@old env -i "PATH=$PATH" "HOME=$work/home" "HF_ENDPOINT=$hub" "$BENCH_OLD" --log-format json hf://bench/model "$dest"; }

# One untimed, checked read of each first: MinIO writes with O_DIRECT, so
# freshly seeded objects are not in the page cache, and the first reader
# would pay for the disk alone.
# warm NAME CMD...
warm() {
  local name=$1
  shift
  rm -rf "$dest"
  "$@" >"$work/out" 2>&1 || { echo "bench: warm-up $name failed:" >&2; tail -5 "$work/out" >&2; exit 1; }
  diff -r "$model" "$dest" >/dev/null || { echo "bench: the $name copy differs from the model" >&2; exit 1; }
  tail -1 "$work/out" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("verified")))' >"$work/verified.$name"
}
warm hf "${hf_run[@]}"
warm s3 "${s3_run[@]}"
rm -rf "$dest"

order=(hf_cmd s3_cmd)
if [[ -n "${BENCH_OLD:-}" ]]; then order+=(hf_old_cmd); fi
for i in $(seq 1 "$runs"); do
  echo "bench: round $i of $runs" >&2
  for t in "${order[@]}"; do "$t"; done
  order=("${order[@]:1}" "${order[0]}")
done

python3 - "$results" "$size" "$runs" "$work/verified.hf" "$work/verified.s3" <<'PY'
import sys, statistics, collections, datetime, platform, os
path, size, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
verified = {"hf://": open(sys.argv[4]).read().strip(), "s3://": open(sys.argv[5]).read().strip()}
wall, cpu, rss = collections.defaultdict(list), collections.defaultdict(list), collections.defaultdict(int)
for line in open(path):
    src, secs, kb, c = line.split()
    wall[src].append(float(secs)); cpu[src].append(float(c)); rss[src] = max(rss[src], int(kb))
med = {k: statistics.median(v) for k, v in wall.items()}
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0) / 2**20
print(f"\nhf:// benchmark {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
      f"({os.cpu_count()} x {model}, {mem:.0f} GiB), model {size/2**30:.2f} GiB, median of {runs} runs")
print("stand-in Hub (internal/hubtest, LFS files from disk via a 302 to its CDN) vs MinIO, both on loopback")
print(f"(load average at the end: {os.getloadavg()[0]:.1f}; CPU s = user + system time of the binary)\n")
print("| source | median s | MiB/s | CPU s | peak RSS MiB | verified |")
print("|---|---:|---:|---:|---:|---|")
for src in ("hf://", "s3://", "hf://@old"):
    if src in med:
        print(f"| {src} | {med[src]:.2f} | {size/2**20/med[src]:.0f} | {statistics.median(cpu[src]):.1f} | {rss[src]/1024:.0f} | {verified.get(src, verified['hf://'])} |")
r = med["hf://"] / med["s3://"]
print(f"\nhf:// wall time / s3:// wall time: {r:.2f}x (target <= 1.10x: {'met' if r <= 1.10 else 'NOT met'}); "
      f"runs hf:// {', '.join(f'{x:.2f}' for x in wall['hf://'])} s, s3:// {', '.join(f'{x:.2f}' for x in wall['s3://'])} s")
if "hf://@old" in med:
    print(f"older build over hf://: {med['hf://@old']:.2f} s, {statistics.median(cpu['hf://@old']):.1f} s CPU "
          f"(runs {', '.join(f'{x:.2f}' for x in wall['hf://@old'])} s)")
PY
