#!/usr/bin/env bash
# Validates the KServe manifests in config/ with kubeconform against the JSON
# schemas vendored in testdata/k8s-schemas (no schema is fetched: the build
# machines have no internet), then checks the schemas have teeth: every file
# in testdata/k8s-schemas/invalid must be rejected. Finally a few facts
# KServe depends on that a schema cannot express.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/hack/tools.sh" kubeconform
kc=("$root/.cache/bin/kubeconform" -strict -summary
  -schema-location "$root/testdata/k8s-schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json")

manifests=$(find config -name '*.yaml' | sort)
echo "== kubeconform: config/"
# shellcheck disable=SC2086
"${kc[@]}" $manifests

echo "== kubeconform: each invalid example must be rejected"
bad=0
for f in testdata/k8s-schemas/invalid/*.yaml; do
  if out=$("${kc[@]}" "$f" 2>&1); then
    echo "FAIL: $f was accepted" >&2
    bad=1
  elif ! grep -q 'jsonschema validation failed' <<<"$out"; then
    # Rejected, but for another reason (a missing schema, a YAML error).
    echo "FAIL: $f rejected for the wrong reason:" >&2
    echo "$out" >&2
    bad=1
  else
    echo "ok: $f rejected"
  fi
done
[[ $bad -eq 0 ]] || exit 1

echo "== KServe facts"
fail() { echo "FAIL: $*" >&2; exit 1; }
csc_files=$(grep -l '^kind: ClusterStorageContainer$' $manifests)
for f in $csc_files; do
  # KServe recognises its init container only by this name (the
  # LocalModelCache agent keeps whatever name the container has).
  if grep -qE '^  workloadType: initContainer$' "$f"; then
    grep -qE '^    name: storage-initializer$' "$f" || fail "$f: container must be named storage-initializer"
    # Without it, newer KServe refuses services with several storage URIs.
    grep -qE '^  supportsMultiModelDownload: true$' "$f" || fail "$f: supportsMultiModelDownload: true missing"
  fi
  # The image ENTRYPOINT is the binary and KServe sets args: a command or args here would break it.
  ! grep -qE '^    (command|args):' "$f" || fail "$f: must not set command or args"
done
# The LLMInferenceService controller overrides args and command too.
! grep -qE '^ +(command|args):' config/llmisvc/*.yaml || fail "config/llmisvc: must not set command or args"
# KServe's own image is named in exactly one place, so its version is set once.
n=$(grep -hoE 'kserve/storage-initializer:[^" ]+' $manifests | wc -l)
[[ $n -eq 1 ]] || fail "KServe's image kserve/storage-initializer:TAG appears $n times in config/, want exactly 1 (default-without-overlap.yaml)"
grep -qE '^    image: kserve/storage-initializer:v0\.(2[0-9]|[3-9][0-9])\.' config/default-without-overlap.yaml ||
  fail "config/default-without-overlap.yaml: KServe's image must be >= v0.20 (modelscope://, oci+fetch://, git)"
# Which URI goes to which container is checked by config/routing_test.go
# (Go's regexp, as KServe): run it here too.
go test -count=1 ./config/
echo "manifests: all checks passed"
