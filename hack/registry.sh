#!/usr/bin/env bash
# Starts or stops two throwaway CNCF distribution registries for tests and
# benchmarks: one anonymous, one behind htpasswd basic auth.
#
#   hack/registry.sh start DIR   start both on free loopback ports (data in DIR/plain
#                                and DIR/auth); writes DIR/registry.env (source it)
#                                and DIR/registry-{plain,auth}.pid
#   hack/registry.sh stop DIR    stop them and remove their data
#
# Both are idempotent: start on running registries only rewrites registry.env,
# stop on stopped ones does nothing. The binary comes from hack/tools.sh registry.
#
# registry.env exports SI_REGISTRY (host:port, anonymous), SI_REGISTRY_AUTH
# (host:port, basic auth), SI_REGISTRY_USER and SI_REGISTRY_PASS.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
registry="${REGISTRY_BIN:-$root/.cache/bin/registry}"

# Fixed test credentials: these registries listen on loopback only and hold
# throwaway data, and fixed values let a developer reuse running servers.
user=si-test
pass=si-test-registry-pass

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2
envfile="$dir/registry.env"

# running NAME prints the pid of that registry when it is alive. The cmdline
# check keeps a recycled pid from being mistaken for (and killed as) ours.
running() {
  local pidfile="$dir/registry-$1.pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid=$(cat "$pidfile")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q registry || return 1
  echo "$pid"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# healthy NAME PORT: the anonymous registry answers /v2/ with 200, the other
# with 401 (and 200 with the credentials).
healthy() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$2/v2/") || return 1
  if [[ $1 == plain ]]; then [[ $code == 200 ]]; else [[ $code == 401 ]]; fi
}

write_config() { # NAME PORT
  local auth=""
  if [[ $1 == auth ]]; then
    auth="auth:
  htpasswd:
    realm: si-test
    path: $dir/htpasswd"
  fi
  cat >"$dir/registry-$1.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/$1
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: 127.0.0.1:$2
  secret: si-test-$1-secret
$auth
YAML
}

write_env() {
  local tmp="$envfile.tmp"
  {
    echo "export SI_REGISTRY=127.0.0.1:$(cat "$dir/registry-plain.port")"
    echo "export SI_REGISTRY_AUTH=127.0.0.1:$(cat "$dir/registry-auth.port")"
    echo "export SI_REGISTRY_USER=$user"
    echo "export SI_REGISTRY_PASS=$pass"
  } >"$tmp"
  mv "$tmp" "$envfile"
}

stop_one() {
  local pid
  if pid=$(running "$1"); then
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
  rm -rf "$dir/registry-$1.pid" "$dir/registry-$1.port" "$dir/registry-$1.yml" "${dir:?}/$1"
}

start_one() {
  local name=$1 pid port
  if pid=$(running "$name") && port=$(cat "$dir/registry-$name.port" 2>/dev/null) && healthy "$name" "$port"; then
    echo "registry: $name already running (pid $pid) at 127.0.0.1:$port" >&2
    return
  fi
  stop_one "$name"
  # A port can be taken between picking and binding; retry a few times.
  for _ in 1 2 3; do
    port=$(free_port)
    mkdir -p "$dir/$name"
    write_config "$name" "$port"
    setsid "$registry" serve "$dir/registry-$name.yml" </dev/null >"$dir/registry-$name.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/registry-$name.pid"
    echo "$port" >"$dir/registry-$name.port"
    for _ in $(seq 1 100); do
      if healthy "$name" "$port"; then
        echo "registry: $name running (pid $pid) at 127.0.0.1:$port" >&2
        return
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_one "$name"
  done
  echo "registry: $name failed to start; last log lines:" >&2
  tail -n 20 "$dir/registry-$name.log" >&2 || true
  exit 1
}

start() {
  mkdir -p "$dir"
  [[ -x "$registry" ]] || "$root/hack/tools.sh" registry
  if [[ ! -s "$dir/htpasswd" ]]; then
    printf '%s' "$pass" | (cd "$root" && go run ./hack/htpasswd "$user") >"$dir/htpasswd.tmp"
    mv "$dir/htpasswd.tmp" "$dir/htpasswd"
  fi
  start_one plain
  start_one auth
  write_env
  echo "registry: source $envfile" >&2
}

stop() {
  stop_one plain
  stop_one auth
  rm -f "$envfile" "$dir/htpasswd"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
