#!/usr/bin/env bash
# gs:// and Azure Blob benchmark (issue 15): the LLM-shaped model (3 x 1 GiB
# bf16 shards + config/tokenizer files) from fake-gcs-server and from
# Azurite, this binary against `rclone copy --transfers 16
# --multi-thread-streams 8` (Debian rclone) on the same emulator, in one
# run. On each emulator the two take turns within each round, each going
# first in turn. Prints medians, CPU seconds, peak RSS and ratios; the
# target is >= 1.25x faster than rclone.
# Env: BENCH_RUNS (3), BENCH_SHARD_SIZE (1GiB), BENCH_TMP (/var/tmp).
# Run by `make bench` (hack/bench.sh; BENCH_CLOUDS=0 skips it) or alone.
# It reports; it asserts nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runs=${BENCH_RUNS:-3}
shard=${BENCH_SHARD_SIZE:-1GiB}
bin="$root/bin/storage-initializer"
[[ -x "$bin" ]] || make build >/dev/null
hack/tools.sh fake-gcs-server azurite bench-apt
seed="$root/.cache/bin/seed"
go build -o "$seed" ./hack/seed

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
size=$(du -sb "$model" | cut -f1)

work=$(mktemp -d "${BENCH_TMP:-/var/tmp}/si-clouds-bench.XXXXXX")
cleanup() {
  hack/fakegcs.sh stop "$work/gcs" >/dev/null 2>&1 || true
  hack/azurite.sh stop "$work/azurite" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
hack/fakegcs.sh start "$work/gcs"
hack/azurite.sh start "$work/azurite"
# shellcheck disable=SC1091
source "$work/gcs/fakegcs.env"
# shellcheck disable=SC1091
source "$work/azurite/azurite.env"

# rclone 1.60 builds an Azure endpoint as https://ACCOUNT.ENDPOINT (no
# http, no port; its emulator switch is fixed to 127.0.0.1:10000), so it
# reaches Azurite through an account SAS URL, signed here with Azurite's
# published development key (string-to-sign of version 2019-12-12).
sas=$(python3 - "$SI_AZURITE_ACCOUNT" "$SI_AZURITE_KEY" <<'PY'
import sys, hmac, hashlib, base64, urllib.parse
account, key = sys.argv[1], sys.argv[2]
f = dict(sv="2019-12-12", ss="b", srt="sco", sp="rwdlac", se="2099-01-01T00:00:00Z", spr="https,http")
sts = "\n".join([account, f["sp"], f["ss"], f["srt"], "", f["se"], "", f["spr"], f["sv"], ""])
f["sig"] = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode(f))
PY
)
mkdir -p "$work/home"
base=(env -i "PATH=$PATH" "HOME=$work/home")
rclone_env=("RCLONE_CONFIG_GS_TYPE=google cloud storage" "RCLONE_CONFIG_GS_ENDPOINT=$SI_FAKEGCS_ENDPOINT/storage/v1/"
  "RCLONE_CONFIG_GS_ANONYMOUS=true" "RCLONE_CONFIG_GS_NO_CHECK_BUCKET=true"
  "RCLONE_CONFIG_AZ_TYPE=azureblob" "RCLONE_CONFIG_AZ_SAS_URL=$SI_AZURITE_BLOB_ENDPOINT?$sas")
rclone=("${base[@]}" "${rclone_env[@]}" rclone)

# Seeding (untimed). gs://: one media upload per file with curl (rclone's
# resumable uploads take over a minute a GiB on fake-gcs-server); the
# server computes the object's CRC32C and MD5. Azure: rclone, which sets
# the blob's Content-MD5 from the file.
echo "bench: seeding gs://bench/llm and the Azure container bench/llm" >&2
curl -fsS -o /dev/null -X POST "$SI_FAKEGCS_ENDPOINT/storage/v1/b?project=bench" -H 'Content-Type: application/json' -d '{"name":"bench"}'
(cd "$model" && find . -type f -printf '%P\n') | while read -r f; do
  name=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "llm/$f")
  curl -fsS -o /dev/null -X POST -T "$model/$f" -H 'Content-Type: application/octet-stream' \
    "$SI_FAKEGCS_ENDPOINT/upload/storage/v1/b/bench/o?uploadType=media&name=$name"
done
"${rclone[@]}" mkdir az:bench 2>"$work/seed.log" || { cat "$work/seed.log" >&2; exit 1; }
"${rclone[@]}" copy --transfers 4 "$model" az:bench/llm 2>"$work/seed.log" || { cat "$work/seed.log" >&2; exit 1; }

dest="$work/dest"
si_gs=("${base[@]}" "STORAGE_EMULATOR_HOST=${SI_FAKEGCS_ENDPOINT#http://}" "GCE_METADATA_HOST=127.0.0.1:1"
  "$bin" --log-format json gs://bench/llm "$dest")
si_az=("${base[@]}" "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=http;AccountName=$SI_AZURITE_ACCOUNT;BlobEndpoint=$SI_AZURITE_BLOB_ENDPOINT;"
  "AZURE_STORAGE_ACCESS_KEY=$SI_AZURITE_KEY" "$bin" --log-format json "https://$SI_AZURITE_ACCOUNT.blob.core.windows.net/bench/llm" "$dest")
rclone_gs=("${rclone[@]}" copy --transfers 16 --multi-thread-streams 8 gs:bench/llm "$dest")
rclone_az=("${rclone[@]}" copy --transfers 16 --multi-thread-streams 8 az:bench/llm "$dest")

results="$work/results.tsv"
: >"$results"
# measure EMULATOR TOOL CMD... : one timed run of CMD into a fresh $dest.
measure() {
  local emu=$1 tool=$2
  shift 2
  rm -rf "$dest" && mkdir -p "$dest" && sync
  /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >"$work/out" 2>&1 || { echo "bench: $emu $tool failed:" >&2; tail -5 "$work/out" >&2; exit 1; }
  read -r secs rss usr sys <"$work/time"
  [[ $(du -sb "$dest" | cut -f1) -ge $size ]] || { echo "bench: $emu $tool left an incomplete DEST" >&2; exit 1; }
  cpu=$(python3 -c "print(round($usr + $sys, 2))")
  printf '%s\t%s\t%s\t%s\t%s\n' "$emu" "$tool" "$secs" "$rss" "$cpu" >>"$results"
  echo "bench: $emu $tool: ${secs}s, ${cpu}s CPU, peak RSS $((rss / 1024)) MiB" >&2
  rm -rf "$dest"
}

# One untimed, checked read from each emulator first, so the seeded files
# are in the page cache for whoever goes first, and what was verified is known.
# warm EMULATOR CMD...
warm() {
  local emu=$1
  shift
  rm -rf "$dest"
  "$@" >"$work/out" 2>&1 || { echo "bench: warm-up from $emu failed:" >&2; tail -5 "$work/out" >&2; exit 1; }
  diff -r "$model" "$dest" >/dev/null || { echo "bench: the copy from $emu differs from the model" >&2; exit 1; }
  tail -1 "$work/out" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("verified")))' >"$work/verified.$emu"
}
warm gcs "${si_gs[@]}"
warm azure "${si_az[@]}"
rm -rf "$dest"

si_gs_cmd() { measure gcs storage-initializer "${si_gs[@]}"; }
rclone_gs_cmd() { measure gcs rclone "${rclone_gs[@]}"; }
si_az_cmd() { measure azure storage-initializer "${si_az[@]}"; }
rclone_az_cmd() { measure azure rclone "${rclone_az[@]}"; }
gs_order=(si_gs_cmd rclone_gs_cmd)
az_order=(si_az_cmd rclone_az_cmd)
for i in $(seq 1 "$runs"); do
  echo "bench: round $i of $runs" >&2
  for t in "${gs_order[@]}" "${az_order[@]}"; do "$t"; done
  gs_order=("${gs_order[@]:1}" "${gs_order[0]}")
  az_order=("${az_order[@]:1}" "${az_order[0]}")
done

python3 - "$results" "$size" "$runs" "$work/verified.gcs" "$work/verified.azure" "$(rclone version | head -1)" <<'PY'
import sys, statistics, collections, datetime, platform, os
path, size, runs, rclone_version = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[6]
verified = {"gcs": open(sys.argv[4]).read().strip(), "azure": open(sys.argv[5]).read().strip()}
wall, cpu, rss = collections.defaultdict(list), collections.defaultdict(list), collections.defaultdict(int)
for line in open(path):
    emu, tool, secs, kb, c = line.split()
    wall[(emu, tool)].append(float(secs)); cpu[(emu, tool)].append(float(c)); rss[(emu, tool)] = max(rss[(emu, tool)], int(kb))
med = {k: statistics.median(v) for k, v in wall.items()}
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0) / 2**20
print(f"\ngs:// and Azure Blob benchmark {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
      f"({os.cpu_count()} x {model}, {mem:.0f} GiB), model {size/2**30:.2f} GiB, median of {runs} runs")
print(f"fake-gcs-server and Azurite on loopback; {rclone_version} copy --transfers 16 --multi-thread-streams 8")
print(f"(load average at the end: {os.getloadavg()[0]:.1f}; CPU s = user + system time of the tool)\n")
print("| emulator | tool | median s | MiB/s | faster than rclone by | CPU s | peak RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|")
label = {"gcs": "fake-gcs-server (gs://)", "azure": "Azurite (Azure Blob)"}
for emu in ("gcs", "azure"):
    base = med[(emu, "rclone")]
    for tool in ("storage-initializer", "rclone"):
        m = med[(emu, tool)]
        print(f"| {label[emu]} | {tool} | {m:.2f} | {size/2**20/m:.0f} | {base/m:.2f}x | {statistics.median(cpu[(emu, tool)]):.1f} | {rss[(emu, tool)]/1024:.0f} |")
print()
for emu in ("gcs", "azure"):
    r = med[(emu, "rclone")] / med[(emu, "storage-initializer")]
    runs_of = lambda t: ", ".join(f"{x:.2f}" for x in wall[(emu, t)])
    print(f"{label[emu]}: {r:.2f}x rclone (target >= 1.25x: {'met' if r >= 1.25 else 'NOT met'}); storage-initializer verified {verified[emu]}; "
          f"runs storage-initializer {runs_of('storage-initializer')} s, rclone {runs_of('rclone')} s")
PY
