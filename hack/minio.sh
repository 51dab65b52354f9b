#!/usr/bin/env bash
# Starts or stops a throwaway MinIO server for tests and benchmarks.
#
#   hack/minio.sh start DIR   start MinIO on a free loopback port, data in DIR/data;
#                             writes DIR/minio.env (source it) and DIR/minio.pid
#   hack/minio.sh stop DIR    stop it and remove DIR/data
#
# Both are idempotent: start on a running server only rewrites minio.env,
# stop on a stopped one does nothing. The binary comes from hack/tools.sh minio.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
minio="${MINIO_BIN:-$root/.cache/bin/minio}"

# Fixed test credentials: this server only listens on loopback and holds
# throwaway data, and fixed values let a developer reuse a running server.
access_key=si-test-access
secret_key=si-test-secret-key

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2

pidfile="$dir/minio.pid"
envfile="$dir/minio.env"
portfile="$dir/minio.port"
logfile="$dir/minio.log"

# running prints the pid of our MinIO when it is alive. The cmdline check
# keeps a recycled pid from being mistaken for (and killed as) our server.
running() {
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q minio || return 1
  echo "$pid"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

healthy() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1/minio/health/live"; }

write_env() {
  local tmp="$envfile.tmp"
  {
    echo "export SI_MINIO_ENDPOINT=http://127.0.0.1:$1"
    echo "export SI_MINIO_ACCESS_KEY=$access_key"
    echo "export SI_MINIO_SECRET_KEY=$secret_key"
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
    echo "minio: already running (pid $pid) at http://127.0.0.1:$port" >&2
    return
  fi
  stop # a stale or unhealthy server: start from scratch
  [[ -x "$minio" ]] || "$root/hack/tools.sh" minio
  mkdir -p "$dir/data"

  # A port can be taken between picking and binding; retry a few times.
  for _ in 1 2 3; do
    port=$(free_port)
    MINIO_ROOT_USER=$access_key MINIO_ROOT_PASSWORD=$secret_key \
      MINIO_PROMETHEUS_AUTH_TYPE=public MINIO_BROWSER=off MINIO_UPDATE=off \
      setsid "$minio" server --quiet --address "127.0.0.1:$port" "$dir/data" \
      </dev/null >"$logfile" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    echo "$port" >"$portfile"
    for _ in $(seq 1 150); do
      if healthy "$port"; then
        write_env "$port"
        echo "minio: running (pid $pid) at http://127.0.0.1:$port; source $envfile" >&2
        return
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    stop
    mkdir -p "$dir/data"
  done
  echo "minio: failed to start; last log lines:" >&2
  tail -n 20 "$logfile" >&2 || true
  exit 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
