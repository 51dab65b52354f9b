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
# themselves. Both are idempotent, like hack/minio.sh. Azurite comes from
# hack/tools.sh azurite (npm, Node >= 20).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
server="${AZURITE_BIN:-$root/.cache/bin/azurite}"

account=devstoreaccount1
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2

pidfile="$dir/azurite.pid"
envfile="$dir/azurite.env"
portfile="$dir/azurite.port"
logfile="$dir/azurite.log"

# running prints the pid of our server when it is alive; the cmdline check
# keeps a recycled pid from being mistaken for (and killed as) our server.
running() {
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q azurite || return 1
  echo "$pid"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# healthy: any HTTP answer from the blob service (an unauthenticated list is
# refused with 403, which still proves it serves requests).
healthy() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/$account?comp=list" || true)
  [[ "$code" =~ ^[1-5][0-9][0-9]$ ]]
}

write_env() {
  local tmp="$envfile.tmp"
  {
    echo "export SI_AZURITE_BLOB_ENDPOINT=http://127.0.0.1:$1/$account"
    echo "export SI_AZURITE_ACCOUNT=$account"
    echo "export SI_AZURITE_KEY='$key'"
  } >"$tmp"
  mv "$tmp" "$envfile"
}

stop() {
  local pid
  if pid=$(running); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -rf "$pidfile" "$envfile" "$portfile" "$dir/data"
}

start() {
  mkdir -p "$dir"
  local pid port
  if pid=$(running) && port=$(cat "$portfile" 2>/dev/null) && healthy "$port"; then
    write_env "$port"
    echo "azurite: already running (pid $pid) at http://127.0.0.1:$port/$account" >&2
    return
  fi
  stop # a stale or unhealthy server: start from scratch
  [[ -x "$server" ]] || "$root/hack/tools.sh" azurite
  mkdir -p "$dir/data"

  # A port can be taken between picking and binding; retry a few times.
  for _ in 1 2 3; do
    port=$(free_port)
    # --disableTelemetry: this machine talks to loopback only.
    # --skipApiVersionCheck: the Go SDK may be newer than this Azurite.
    # --disableProductStyleUrl: the account is always the first path segment.
    setsid "$server" --blobHost 127.0.0.1 --blobPort "$port" --location "$dir/data" \
      --silent --disableTelemetry --skipApiVersionCheck --disableProductStyleUrl \
      </dev/null >"$logfile" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    echo "$port" >"$portfile"
    for _ in $(seq 1 150); do
      if healthy "$port"; then
        write_env "$port"
        echo "azurite: running (pid $pid) at http://127.0.0.1:$port/$account; source $envfile" >&2
        return
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    stop
    mkdir -p "$dir/data"
  done
  echo "azurite: failed to start; last log lines:" >&2
  tail -n 20 "$logfile" >&2 || true
  exit 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
