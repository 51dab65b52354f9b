#!/usr/bin/env bash
# `make bench`: times this binary against the real tools on the same MinIO
# server in one run and prints medians, ratios and peak RSS.
#   (a) an LLM-shaped model: 3 x 1 GiB bf16 shards + small JSON/tokenizer files, seeded twice:
#       llm with CRC64NVME checksums (64 MiB parts), llm-etag as aws-cli v1 leaves it (multipart
#       uploads of 8 MiB parts without any checksum: only the multipart ETags vouch for the shards)
#   (b) 1,000 x 256 KiB files
# Every run prints wall and CPU seconds (user+sys); ours also says how its files were verified.
# Env: BENCH_RUNS (default 3), BENCH_SHARD_SIZE (default 1GiB), BENCH_SMALL (1000),
# BENCH_SETS (default "llm llm-etag small"), BENCH_OLD=BINARY times an older build too (e.g. one
# built from the last landing), BENCH_TOOLS (default "si_cmd aws_cmd rclone_cmd") picks the tools,
# BENCH_CACHE=0 skips the node-cache part, BENCH_SIGNED=0 the signed pull of (a) (a model-signing
# bundle, key mode, made once by `seed sign`: every file's SHA-256 checked against it),
# BENCH_OCI=0 to skip the OCI part (hack/modelcar/bench.sh), BENCH_HF=0 the hf:// vs s3://
# part (hack/bench-hf.sh), BENCH_CLOUDS=0 the gs:// and Azure vs rclone part (hack/bench-clouds.sh).
# It is a benchmark, not a test: it asserts nothing, it reports.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${BENCH_RUNS:-3}
shard=${BENCH_SHARD_SIZE:-1GiB}
nsmall=${BENCH_SMALL:-1000}
bin="$root/bin/storage-initializer"
[[ -x "$bin" ]] || make build >/dev/null

hack/tools.sh minio bench-apt
seed="$root/.cache/bin/seed"
go build -o "$seed" ./hack/seed

data="$root/.cache/bench-data/$shard-$nsmall"
if [[ ! -f "$data/.done" ]]; then
  echo "bench: generating test data in $data (once)" >&2
  rm -rf "$data"
  "$seed" gen -shards 3 -shard-size "$shard" "$data/llm"
  "$seed" gen -shards 0 -small-files "$nsmall" -small-size 256KiB "$data/smallset"
  touch "$data/.done"
fi
if [[ "${BENCH_SIGNED:-1}" != 0 && ! -f "$data/llm.sig" ]]; then
  "$seed" sign -out "$data/llm.sig.tmp" -public-key-out "$data/llm.pem" "$data/llm"
  mv "$data/llm.sig.tmp" "$data/llm.sig"
fi

work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/si-bench.XXXXXX")
trap 'hack/minio.sh stop "$work/minio" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
hack/minio.sh start "$work/minio"
# shellcheck disable=SC1091
source "$work/minio/minio.env"
ep=$SI_MINIO_ENDPOINT
"$seed" put -endpoint "$ep" -bucket bench -prefix llm -checksum crc64nvme -part-size 64MiB "$data/llm"
# aws-cli v1's defaults: multipart above 8 MiB in 8 MiB parts, no checksum.
"$seed" put -endpoint "$ep" -bucket bench -prefix llm-etag -checksum none -part-size 8MiB "$data/llm"
"$seed" put -endpoint "$ep" -bucket bench -prefix small -checksum crc64nvme "$data/smallset/small"

# A clean environment for every tool: only the keys and endpoint.
cleanenv=(env -i "PATH=$PATH" "HOME=$work/home" "AWS_ACCESS_KEY_ID=$SI_MINIO_ACCESS_KEY"
  "AWS_SECRET_ACCESS_KEY=$SI_MINIO_SECRET_KEY" "AWS_DEFAULT_REGION=us-east-1")
mkdir -p "$work/home"
aws=/usr/bin/aws # Debian's awscli package, not a pyenv shim
rclone_env=("RCLONE_CONFIG_BENCH_TYPE=s3" "RCLONE_CONFIG_BENCH_PROVIDER=Minio" "RCLONE_CONFIG_BENCH_ENDPOINT=$ep"
  "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$SI_MINIO_ACCESS_KEY" "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$SI_MINIO_SECRET_KEY")

results="$work/results.tsv"
: >"$results"
# measure DATASET TOOL CMD... : one timed run of CMD into a fresh DEST ($dest): wall, peak RSS,
# CPU (user+sys) and, when the tool wrote $work/sum.json (--summary-json), how files were verified.
measure() {
  local set=$1 tool=$2
  shift 2
  rm -rf "$work/dest" "$work/sum.json" && mkdir -p "$work/dest" && sync
  /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >"$work/out" 2>&1 || { echo "bench: $tool failed:" >&2; tail -5 "$work/out" >&2; exit 1; }
  read -r secs rss usr sys <"$work/time"
  local cpu verified="-"
  cpu=$(python3 -c "print(f'{$usr + $sys:.2f}')")
  if [[ -f "$work/sum.json" ]]; then
    verified=$(python3 -c '
import json, sys, collections
c = collections.Counter()
for f in json.load(open(sys.argv[1]))["files"]:
    v = f["verified"]
    c["md5-etag" if "(multipart ETag)" in v else v] += 1
print(", ".join(f"{n} {k}" for k, n in sorted(c.items(), key=lambda kv: -kv[1])))' "$work/sum.json")
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$tool" "$secs" "$rss" "$cpu" "$verified" >>"$results"
  echo "bench: $set $tool: ${secs}s wall, ${cpu}s CPU, peak RSS $((rss / 1024)) MiB; verified: $verified" >&2
  rm -rf "$work/dest"
}

dest="$work/dest"
si_cmd() { measure "$1" storage-initializer "${cleanenv[@]}" "AWS_ENDPOINT_URL=$ep" "$bin" --log-format json --summary-json "$work/sum.json" "s3://bench/$1" "$dest"; }
si_old_cmd() { measure "$1" storage-initializer@old "${cleanenv[@]}" "AWS_ENDPOINT_URL=$ep" "$BENCH_OLD" --log-format json --summary-json "$work/sum.json" "s3://bench/$1" "$dest"; }
si_signed_cmd() { measure llm-signed storage-initializer "${cleanenv[@]}" "AWS_ENDPOINT_URL=$ep" "$bin" --log-format json --summary-json "$work/sum.json" --signature "$data/llm.sig" --signature-public-key "$data/llm.pem" "s3://bench/llm" "$dest"; }
aws_cmd() { measure "$1" aws-cli "${cleanenv[@]}" "$aws" --endpoint-url "$ep" s3 cp --recursive --only-show-errors "s3://bench/$1" "$dest"; }
rclone_cmd() { measure "$1" rclone "${cleanenv[@]}" "${rclone_env[@]}" rclone copy --transfers 16 --multi-thread-streams 8 "bench:bench/$1" "$dest"; }
# One untimed read of each dataset first: MinIO writes with O_DIRECT, so
# freshly seeded objects are not in the page cache and the first reader
# would pay for the disk alone.
read -r -a sets <<<"${BENCH_SETS:-llm llm-etag small}"
for set in "${sets[@]}"; do
  "${cleanenv[@]}" "AWS_ENDPOINT_URL=$ep" "$bin" --log-format json "s3://bench/$set" "$work/warm" >/dev/null 2>&1
  rm -rf "$work/warm"
done
# Tools take turns within each round, each going first once, so a slow
# spell of the machine weighs on all of them rather than on one.
read -r -a order <<<"${BENCH_TOOLS:-si_cmd aws_cmd rclone_cmd}"
if [[ -n "${BENCH_OLD:-}" ]]; then order+=(si_old_cmd); fi
for i in $(seq 1 "$runs"); do
  echo "bench: round $i of $runs" >&2
  for set in "${sets[@]}"; do
    for t in "${order[@]}"; do "$t" "$set"; done
  done
  # The signed pull of (a) right after its unsigned pulls, in turn.
  if [[ "${BENCH_SIGNED:-1}" != 0 && " ${sets[*]} " == *" llm "* ]]; then si_signed_cmd; fi
  order=("${order[@]:1}" "${order[0]}")
done

# Node cache: a cold pull into the cache, a warm start from it (same
# filesystem: hardlinks), and two concurrent cold pulls, with the bytes the
# store served read from MinIO's own traffic counter.
# MinIO refreshes this counter about every 10 s: settle before each read.
sent() { sleep 11; curl -fs "$ep/minio/v2/metrics/cluster" | awk '/^minio_s3_traffic_sent_bytes/ {printf "%.0f\n", $2}'; }
{ # a one-file wrapper so /usr/bin/time can run it
  printf '#!/usr/bin/env bash\nexec'
  printf ' %q' "${cleanenv[@]}" "AWS_ENDPOINT_URL=$ep" "STORAGE_CACHE_DIR=$work/cache" "$bin" --log-format json s3://bench/llm
  printf ' "$1"\n'
} >"$work/si-cache"
chmod +x "$work/si-cache"
cache_rows="$work/cache.tsv"
: >"$cache_rows"
cache_runs=$runs
if [[ "${BENCH_CACHE:-1}" == 0 ]]; then cache_runs=0; fi
for i in $(seq 1 "$cache_runs"); do
  rm -rf "$work/cache" "$work/c1" "$work/c2" "$work/c3" && sync
  /usr/bin/time -f "%e" -o "$work/t.cold" "$work/si-cache" "$work/c1" >/dev/null 2>&1
  /usr/bin/time -f "%e" -o "$work/t.warm" "$work/si-cache" "$work/c2" >/dev/null 2>&1
  rm -rf "$work/cache" "$work/c1" "$work/c2" && sync
  before=$(sent)
  "$work/si-cache" "$work/c1" >/dev/null 2>&1 &
  "$work/si-cache" "$work/c2" >/dev/null 2>&1 &
  wait
  after=$(sent)
  diff -r "$data/llm" "$work/c2" >/dev/null || { echo "bench: cached copy differs" >&2; exit 1; }
  printf '%s\t%s\t%s\n' "$(cat "$work/t.cold")" "$(cat "$work/t.warm")" "$((after - before))" >>"$cache_rows"
  echo "bench: cache run $i: cold $(cat "$work/t.cold")s, warm $(cat "$work/t.warm")s, two concurrent cold pulls served $((after - before)) bytes" >&2
done
rm -rf "$work/cache" "$work/c1" "$work/c2"

size_llm=$(du -sb "$data/llm" | cut -f1)
size_small=$(du -sb "$data/smallset/small" | cut -f1)
python3 - "$results" "$size_llm" "$size_small" "$runs" "$cache_rows" "${sets[*]}" <<'PY'
import sys, statistics, collections, datetime, platform, os
path, size_llm, size_small, runs, cache_path, sets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6].split()
rows = collections.defaultdict(list)
cpu = collections.defaultdict(list)
rss = collections.defaultdict(int)
verified = collections.defaultdict(set)
for line in open(path):
    s, tool, secs, kb, c, v = line.rstrip("\n").split("\t")
    rows[(s, tool)].append(float(secs)); cpu[(s, tool)].append(float(c)); rss[(s, tool)] = max(rss[(s, tool)], int(kb))
    verified[(s, tool)].add(v)
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
gib = size_llm / 3 / 2**30
names = {"llm": f"(a) 3 x {gib:.2f} GiB shards + tokenizer/config, CRC64NVME",
         "llm-etag": f"(a') the same, multipart (8 MiB parts) without checksums, as aws-cli v1 uploads",
         "small": f"(b) {size_small//(256*1024)} x 256 KiB files"}
sizes = {"llm": size_llm, "llm-etag": size_llm, "small": size_small}
print(f"\nBenchmark {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, {model}), "
      f"MinIO on loopback, median of {runs} runs; CPU = user+sys of the tool's process\n")
print("| dataset | tool | median s | CPU s | MiB/s | storage-initializer is faster by | peak RSS MiB | verified |")
print("|---|---|---:|---:|---:|---:|---:|---|")
for s in sets:
    ours = statistics.median(rows[(s, "storage-initializer")])
    for tool in ("storage-initializer", "storage-initializer@old", "aws-cli", "rclone"):
        if not rows[(s, tool)]:
            continue
        m = statistics.median(rows[(s, tool)])
        ratio = "—" if tool == "storage-initializer" else f"{m/ours:.2f}x"
        v = "; ".join(sorted(verified[(s, tool)]))
        print(f"| {names[s]} | {tool} | {m:.2f} | {statistics.median(cpu[(s, tool)]):.2f} | {sizes[s]/2**20/m:.0f} | {ratio} | {rss[(s, tool)]/1024:.0f} | {v} |")
if rows[("llm-signed", "storage-initializer")] and rows[("llm", "storage-initializer")]:
    signed, plain = statistics.median(rows[("llm-signed", "storage-initializer")]), statistics.median(rows[("llm", "storage-initializer")])
    scpu, pcpu = statistics.median(cpu[("llm-signed", "storage-initializer")]), statistics.median(cpu[("llm", "storage-initializer")])
    v = "; ".join(sorted(verified[("llm-signed", "storage-initializer")]))
    print(f"\n(a) signed (model-signing bundle, key mode; verified: {v}): {signed:.2f} s wall, {scpu:.2f} s CPU, against {plain:.2f} s, {pcpu:.2f} s CPU unsigned: "
          f"the signature costs {signed - plain:+.2f} s wall ({signed/plain:.2f}x), {scpu - pcpu:+.2f} s CPU")
if rows[("llm-etag", "storage-initializer@old")]:
    new, old = statistics.median(rows[("llm-etag", "storage-initializer")]), statistics.median(rows[("llm-etag", "storage-initializer@old")])
    print(f"\n(a') verified by multipart ETags in {new:.2f} s = {new/old:.2f}x the older build's size-only {old:.2f} s (target <= 1.10x: {'met' if new <= 1.10*old else 'NOT met'})")
cold, warm, served = [], [], []
for line in open(cache_path):
    c, w, b = line.split()
    cold.append(float(c)); warm.append(float(w)); served.append(int(b))
if cold:
    print("\n| node cache, model (a) | median |")
    print("|---|---:|")
    print(f"| cold pull into the cache (s) | {statistics.median(cold):.2f} |")
    print(f"| warm start from the cache, same filesystem (s) | {statistics.median(warm):.2f} |")
    print(f"| two concurrent cold pulls: bytes served / model size | {statistics.median(served)/size_llm:.3f}x |")
PY

# OCI: modelcar and ModelPack against crane export | tar and skopeo + tar.
if [[ "${BENCH_OCI:-1}" != 0 ]]; then
  "$root/hack/modelcar/bench.sh"
fi

# hf:// from the stand-in Hub against s3:// from MinIO, the same bytes.
if [[ "${BENCH_HF:-1}" != 0 ]]; then
  "$root/hack/bench-hf.sh"
fi

# gs:// from fake-gcs-server and Azure Blob from Azurite against rclone.
if [[ "${BENCH_CLOUDS:-1}" != 0 ]]; then
  "$root/hack/bench-clouds.sh"
fi
