#!/usr/bin/env bash
# The hardened service's /metrics (on its loopback admin listener) is valid
# Prometheus exposition: install Debian's prometheus package for promtool
# if missing, start the service on free loopback ports, send it a little
# traffic (some of it rate limited), scrape /metrics and run
# `promtool check metrics` on what it served.
set -euo pipefail
cd "$(dirname "$0")/../.."

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
install() {
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq </dev/null >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
}
if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool missing: installing Debian's prometheus"
  install prometheus
fi
if ! command -v curl >/dev/null 2>&1; then install curl; fi
promtool --version 2>&1 | head -1

work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# free_port: a loopback port nothing listens on right now.
free_port() {
  local p
  for _ in $(seq 20); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  return 1
}

go build -o "$work/hardened-server" ./examples/hardened-server
# The admin listener (issue 11) carries /metrics; until it is merged there
# is nothing to check.
usage=$("$work/hardened-server" -h 2>&1 || true)
if [[ $usage != *-admin-addr* ]]; then
  echo "SKIP: examples/hardened-server has no admin listener (-admin-addr) yet"
  exit 0
fi
public=$(free_port)
admin=$(free_port)
"$work/hardened-server" -addr "127.0.0.1:$public" -admin-addr "127.0.0.1:$admin" \
  -rate-per-ip 5 -burst-per-ip 5 >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$admin/healthz" 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/server.log" >&2; exit 1; fi
  sleep 0.1
done

# A burst over the per-IP rate, so the rejection counters are not all 0.
for _ in $(seq 30); do
  curl -s -o /dev/null "http://127.0.0.1:$public/accounts/alice" || true
done

curl -fsS "http://127.0.0.1:$admin/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt"
grep -q '^garrison_middleware_requests_rejected_total{name="http",reason="request-rate"} [1-9]' "$work/metrics.txt" || {
  echo "no rate-limited request counted in /metrics" >&2
  exit 1
}
# The public port must not serve the operator's endpoints.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$public/metrics")
if [[ $code == 200 ]]; then
  echo "/metrics is served on the public port" >&2
  exit 1
fi
echo "promtool: $(grep -c '^garrison_' "$work/metrics.txt") series valid"
