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
for f in config/clusterstoragecontainer.yaml config/node-cache/clusterstoragecontainer.yaml; do
  # KServe recognises its init container only by this name.
  grep -qE '^    name: storage-initializer$' "$f" || fail "$f: container must be named storage-initializer"
  # Without it, newer KServe refuses services with several storage URIs.
  grep -qE '^  supportsMultiModelDownload: true$' "$f" || fail "$f: supportsMultiModelDownload: true missing"
  # The image ENTRYPOINT is the binary and KServe sets args: a command or args here would break it.
  ! grep -qE '^    (command|args):' "$f" || fail "$f: must not set command or args"
done
for p in s3:// pvc:// oci:// oci+fetch:// http:// https://; do
  grep -qF -- "- prefix: $p" config/clusterstoragecontainer.yaml || fail "config/clusterstoragecontainer.yaml: $p not routed"
  ! grep -qF -- "- prefix: $p" config/default-without-overlap.yaml || fail "config/default-without-overlap.yaml overlaps on $p"
done
# The volume the node-cache container mounts must be the one the example declares.
grep -qF 'name: storage-initializer-cache' config/node-cache/inferenceservice.yaml || fail "node-cache example lacks the cache volume"
echo "manifests: all checks passed"
