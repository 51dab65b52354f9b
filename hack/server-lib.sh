# shellcheck shell=bash
# The one lifecycle of the throwaway servers the tests and benchmarks start
# on loopback (hack/minio.sh, hack/fakegcs.sh, hack/azurite.sh): start on a
# free port with retries, health check, env file, idempotent stop. A server
# script sets `name` (its log prefix and file names), `match` (a word of its
# command line), `tool` (its hack/tools.sh name) and `server` (the binary),
# defines `healthy PORT`, `write_env PORT` and `launch PORT` (starts the
# server in the background, setsid, logging to $logfile), then calls
# `server_main "$@"`.
#
# Both commands are idempotent: start on a running, healthy server only
# rewrites the env file; stop on a stopped one does nothing.

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# running prints the pid of our server when it is alive. The cmdline check
# keeps a recycled pid from being mistaken for (and killed as) our server.
running() {
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$match" || return 1
  echo "$pid"
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
    echo "$name: already running (pid $pid) at 127.0.0.1:$port" >&2
    return
  fi
  stop # a stale or unhealthy server: start from scratch
  [[ -x "$server" ]] || "$root/hack/tools.sh" "$tool"
  mkdir -p "$dir/data"
  # A port can be taken between picking and binding; retry a few times.
  for _ in 1 2 3; do
    port=$(free_port)
    launch "$port"
    pid=$!
    echo "$pid" >"$pidfile"
    echo "$port" >"$portfile"
    for _ in $(seq 1 150); do
      if healthy "$port"; then
        write_env "$port"
        echo "$name: running (pid $pid) at 127.0.0.1:$port; source $envfile" >&2
        return
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    stop
    mkdir -p "$dir/data"
  done
  echo "$name: failed to start; last log lines:" >&2
  tail -n 20 "$logfile" >&2 || true
  exit 1
}

server_main() {
  [[ $# -eq 2 ]] || usage
  dir=$2
  pidfile="$dir/$name.pid"
  envfile="$dir/$name.env"
  portfile="$dir/$name.port"
  logfile="$dir/$name.log"
  case "$1" in
    start) start ;;
    stop) stop ;;
    *) usage ;;
  esac
}
