#!/usr/bin/env bash
# limiter/redisstore is a nested module (so the root module never depends on
# a Redis client) whose tests and benchmarks need a real Redis: install
# Debian's redis-server if missing, run one on a free loopback port for the
# duration of this script, and point the tests at it.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server missing: installing Debian's"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq </dev/null >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends redis-server </dev/null >/dev/null
fi
redis-server --version

# answers_ping PORT: true when a server on 127.0.0.1:PORT answers PING.
answers_ping() {
  local reply
  # The subshell keeps fd 3 and the silenced stderr local to the probe.
  reply=$({
    exec 3<>"/dev/tcp/127.0.0.1/$1" &&
      printf 'PING\r\n' >&3 &&
      IFS= read -r -t 1 line <&3 &&
      printf '%s' "$line"
  } 2>/dev/null) || return 1
  [[ $reply == "+PONG"* ]]
}

# port_in_use PORT: true when something already listens there.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

redis_pid=""
redis_log=$(mktemp)
cleanup() {
  if [[ -n $redis_pid ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -f "$redis_log"
}
trap cleanup EXIT

port=""
for _ in 1 2 3 4 5; do
  candidate=$((20000 + RANDOM % 40000))
  if port_in_use "$candidate"; then continue; fi
  redis-server --port "$candidate" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no >"$redis_log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do
    if answers_ping "$candidate"; then port=$candidate; break; fi
    if ! kill -0 "$redis_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [[ -n $port ]]; then break; fi
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=""
done
if [[ -z $port ]]; then
  echo "could not start redis-server on a free loopback port:" >&2
  cat "$redis_log" >&2
  exit 1
fi
export GARRISON_REDIS_ADDR="127.0.0.1:$port"
echo "redis-server pid $redis_pid on $GARRISON_REDIS_ADDR"

staticcheck="$(go env GOPATH)/bin/staticcheck"
(
  cd limiter/redisstore
  go vet ./...
  "$staticcheck" ./...
  # -v so the log shows the Redis-backed tests ran rather than skipped.
  go test -race -count=1 -v ./...
  # The tutorial program must run against a real Redis, not only compile:
  # it exits non-zero if Redis is unreachable or the limit is not shared.
  go run ./example -redis "$GARRISON_REDIS_ADDR"
)
(cd bench && go test -run '^$' -bench . -benchtime 1x ./redisstore/)
