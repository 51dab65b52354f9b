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
# Both are idempotent, like hack/minio.sh. The binary comes from hack/tools.sh fake-gcs-server.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
server="${FAKEGCS_BIN:-$root/.cache/bin/fake-gcs-server}"

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2

pidfile="$dir/fakegcs.pid"
envfile="$dir/fakegcs.env"
portfile="$dir/fakegcs.port"
logfile="$dir/fakegcs.log"

# running prints the pid of our server when it is alive; the cmdline check
# keeps a recycled pid from being mistaken for (and killed as) our server.
running() {
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q fake-gcs-server || return 1
  echo "$pid"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

healthy() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/storage/v1/b"; }

write_env() {
  local tmp="$envfile.tmp"
  echo "export SI_FAKEGCS_ENDPOINT=http://127.0.0.1:$1" >"$tmp"
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
    echo "fake-gcs-server: already running (pid $pid) at http://127.0.0.1:$port" >&2
    return
  fi
  stop # a stale or unhealthy server: start from scratch
  [[ -x "$server" ]] || "$root/hack/tools.sh" fake-gcs-server
  mkdir -p "$dir/data"

  # A port can be taken between picking and binding; retry a few times.
  for _ in 1 2 3; do
    port=$(free_port)
    # public-host/external-url: the URLs the server hands out (media links,
    # resumable upload locations) point back at this loopback port.
    setsid "$server" -scheme http -host 127.0.0.1 -port "$port" \
      -public-host "127.0.0.1:$port" -external-url "http://127.0.0.1:$port" \
      -backend filesystem -filesystem-root "$dir/data" -log-level error \
      </dev/null >"$logfile" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    echo "$port" >"$portfile"
    for _ in $(seq 1 150); do
      if healthy "$port"; then
        write_env "$port"
        echo "fake-gcs-server: running (pid $pid) at http://127.0.0.1:$port; source $envfile" >&2
        return
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    stop
    mkdir -p "$dir/data"
  done
  echo "fake-gcs-server: failed to start; last log lines:" >&2
  tail -n 20 "$logfile" >&2 || true
  exit 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
