#!/usr/bin/env bash
# Starts or stops a throwaway fake-gcs-server (a GCS JSON API emulator) for
# tests and benchmarks.
#
#   hack/fakegcs.sh start DIR   start it on a free loopback port, objects in DIR/data;
#                               writes DIR/fakegcs.env (source it) and DIR/fakegcs.pid
#   hack/fakegcs.sh stop DIR    stop it and remove DIR/data
#
# fakegcs.env exports SI_FAKEGCS_ENDPOINT (http://127.0.0.1:PORT). Clients reach
# it with STORAGE_EMULATOR_HOST=127.0.0.1:PORT; the tests set that themselves
# so the rest of the suite never talks to an emulator by accident.
# Both are idempotent (hack/server-lib.sh). The binary comes from hack/tools.sh fake-gcs-server.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/server-lib.sh
source "$root/hack/server-lib.sh"
name=fakegcs match=fake-gcs-server tool=fake-gcs-server
server="${FAKEGCS_BIN:-$root/.cache/bin/fake-gcs-server}"

healthy() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/storage/v1/b"; }

write_env() {
  echo "export SI_FAKEGCS_ENDPOINT=http://127.0.0.1:$1" >"$envfile.tmp"
  mv "$envfile.tmp" "$envfile"
}

# public-host/external-url: the URLs the server hands out (media links,
# resumable upload locations) point back at this loopback port.
launch() {
  setsid "$server" -scheme http -host 127.0.0.1 -port "$1" \
    -public-host "127.0.0.1:$1" -external-url "http://127.0.0.1:$1" \
    -backend filesystem -filesystem-root "$dir/data" -log-level error \
    </dev/null >"$logfile" 2>&1 &
}

server_main "$@"
