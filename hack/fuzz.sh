#!/usr/bin/env bash
# Runs every Go native fuzz target of the module for DURATION each.
#
#   hack/fuzz.sh [DURATION]     e.g. hack/fuzz.sh 10s (CI, via hack/test.sh), 60s (make fuzz)
#
# Targets are found by name (func FuzzXxx in *_test.go), so a new one is
# picked up without editing this script. Seeds come from f.Add and
# testdata/fuzz/<Target>/ beside each test; a failing input is written
# there too (commit it with the fix: it then runs in every `go test`).
# Two targets run at a time with one fuzz worker each (FUZZ_JOBS changes
# it), which on two cores halves the wall time of many short runs. All
# targets run even when one fails; the exit status says if any did.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
duration=${1:-10s}
jobs=${FUZZ_JOBS:-2}

mapfile -t targets < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' pkg cmd internal 2>/dev/null |
  sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)\($#\1 \2#' | sort -u)
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
logs=$(mktemp -d "${TMPDIR:-/tmp}/si-fuzz.XXXXXX")
trap 'rm -rf "$logs"' EXIT

corpus_files() { ls "$1/testdata/fuzz/$2" 2>/dev/null | sort || true; }

fuzz_one() { # dir name
  local dir=$1 name=$2 before
  before=$(corpus_files "$dir" "$name")
  # -run '^$': only the fuzz target, not the package's other tests.
  # -fuzzminimizetime: Go spends up to 60s minimizing each new interesting
  # input by default, which leaves a short run of a slow target (archives)
  # almost no time to explore; 100 tries per input is plenty.
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" -fuzzminimizetime "${FUZZ_MINIMIZE:-100x}" -parallel 1 "./$dir" \
    >"$logs/$name.log" 2>&1; then
    echo "fuzz: ok   $name (./$dir) $(grep -Eo 'execs: [0-9]+' "$logs/$name.log" | tail -n 1)"
  elif [[ "$(corpus_files "$dir" "$name")" == "$before" ]] && grep -q 'context deadline exceeded' "$logs/$name.log"; then
    # Go 1.26's fuzz coordinator can report its own -fuzztime deadline as
    # a failure (go.dev/issue/75804, fixed in Go 1.27). No input was
    # written, so nothing failed: a real failure always leaves one.
    echo "fuzz: ok   $name (./$dir) $(grep -Eo 'execs: [0-9]+' "$logs/$name.log" | tail -n 1) (stopped by the Go 1.26 fuzztime race, no failing input)"
  else
    echo "fuzz: FAIL $name (./$dir)"
    cat "$logs/$name.log"
    touch "$logs/$name.failed"
  fi
}

start=$SECONDS
echo "fuzz: ${#targets[@]} targets, $duration each, $jobs at a time"
for t in "${targets[@]}"; do
  read -r dir name <<<"$t"
  while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n || true; done
  fuzz_one "$dir" "$name" &
done
wait
echo "fuzz: done in $((SECONDS - start))s"
if compgen -G "$logs/*.failed" >/dev/null; then
  echo "fuzz: FAILED: $(basename -s .failed "$logs"/*.failed | tr '\n' ' ')" >&2
  exit 1
fi
