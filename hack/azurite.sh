#!/usr/bin/env bash
# Starts or stops a throwaway Azurite (the Azure Storage emulator, blob
# service only) for tests and benchmarks.
#
#   hack/azurite.sh start DIR   start it on a free loopback port, data in DIR/data;
#                               writes DIR/azurite.env (source it) and DIR/azurite.pid
#   hack/azurite.sh stop DIR    stop it and remove DIR/data
#
# azurite.env exports SI_AZURITE_BLOB_ENDPOINT (http://127.0.0.1:PORT/devstoreaccount1),
# SI_AZURITE_ACCOUNT and SI_AZURITE_KEY (Azurite's well-known development
# account, public in Microsoft's docs). Clients reach it with
# AZURE_STORAGE_CONNECTION_STRING=...;BlobEndpoint=...; the tests set that
# themselves. Both are idempotent (hack/server-lib.sh). Azurite comes from
# hack/tools.sh azurite (npm, Node >= 20).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/server-lib.sh
source "$root/hack/server-lib.sh"
name=azurite match=azurite tool=azurite
server="${AZURITE_BIN:-$root/.cache/bin/azurite}"

account=devstoreaccount1
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

# healthy: any HTTP answer from the blob service (an unauthenticated list is
# refused with 403, which still proves it serves requests).
healthy() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/$account?comp=list" || true)
  [[ "$code" =~ ^[1-5][0-9][0-9]$ ]]
}

write_env() {
  {
    echo "export SI_AZURITE_BLOB_ENDPOINT=http://127.0.0.1:$1/$account"
    echo "export SI_AZURITE_ACCOUNT=$account"
    echo "export SI_AZURITE_KEY='$key'"
  } >"$envfile.tmp"
  mv "$envfile.tmp" "$envfile"
}

# --disableTelemetry: this machine talks to loopback only.
# --skipApiVersionCheck: the Go SDK may be newer than this Azurite.
# --disableProductStyleUrl: the account is always the first path segment.
launch() {
  setsid "$server" --blobHost 127.0.0.1 --blobPort "$1" --location "$dir/data" \
    --silent --disableTelemetry --skipApiVersionCheck --disableProductStyleUrl \
    </dev/null >"$logfile" 2>&1 &
}

server_main "$@"
