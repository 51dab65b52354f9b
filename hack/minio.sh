#!/usr/bin/env bash
# Starts or stops a throwaway MinIO server for tests and benchmarks.
#
#   hack/minio.sh start DIR   start MinIO on a free loopback port, data in DIR/data;
#                             writes DIR/minio.env (source it) and DIR/minio.pid
#   hack/minio.sh stop DIR    stop it and remove DIR/data
#
# Both are idempotent (hack/server-lib.sh). The binary comes from hack/tools.sh minio.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/server-lib.sh
source "$root/hack/server-lib.sh"
name=minio match=minio tool=minio
server="${MINIO_BIN:-$root/.cache/bin/minio}"

# Fixed test credentials: this server only listens on loopback and holds
# throwaway data, and fixed values let a developer reuse a running server.
access_key=si-test-access
secret_key=si-test-secret-key

healthy() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/minio/health/live"; }

write_env() {
  {
    echo "export SI_MINIO_ENDPOINT=http://127.0.0.1:$1"
    echo "export SI_MINIO_ACCESS_KEY=$access_key"
    echo "export SI_MINIO_SECRET_KEY=$secret_key"
  } >"$envfile.tmp"
  mv "$envfile.tmp" "$envfile"
}

launch() {
  MINIO_ROOT_USER=$access_key MINIO_ROOT_PASSWORD=$secret_key \
    MINIO_PROMETHEUS_AUTH_TYPE=public MINIO_BROWSER=off MINIO_UPDATE=off \
    setsid "$server" server --quiet --address "127.0.0.1:$1" "$dir/data" \
    </dev/null >"$logfile" 2>&1 &
}

server_main "$@"
