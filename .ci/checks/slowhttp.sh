#!/usr/bin/env bash
# slowhttp: an independent tool (Debian's slowhttptest) attacks
# examples/hardened-server, with its default limits, on loopback while a
# legitimate user is measured. Three attacks, one after the other:
#   slowloris  (-H) headers that never end, from one address
#   slow body  (-B) a POST /upload whose body trickles in
#   slow read  (-X) a GET /download of 32 MiB (more than the kernel buffers) read through a tiny TCP window
# Each must leave the legitimate user (a new connection every 50 ms from
# 127.0.0.2, 1 s patience) at least 99 % served, and the slow readers must
# be cut by the minimum write rate (slow-write). About 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."

ATTACK_SECONDS=${SLOWHTTP_SECONDS:-40} # per attack; each is also capped at 60 s below
MIN_PCT=99

if ! command -v slowhttptest >/dev/null 2>&1; then
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends slowhttptest </dev/null
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

go build -o "$tmp/hardened-server" ./examples/hardened-server
go build -o "$tmp/probe" ./examples/internal/probe

# Port 0: the kernel picks free ports; the server logs what it got.
"$tmp/hardened-server" -addr 127.0.0.1:0 -admin-addr 127.0.0.1:0 >"$tmp/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q 'listening on http://' "$tmp/server.log" && grep -q 'admin endpoints on' "$tmp/server.log" && break
  sleep 0.1
done
addr=$(sed -n 's|.*listening on http://\([0-9.:]*\).*|\1|p' "$tmp/server.log" | head -1)
admin=$(sed -n 's|.*admin endpoints on http://\([0-9.:]*\)/.*|\1|p' "$tmp/server.log" | head -1)
if [[ -z "$addr" || -z "$admin" ]]; then
  echo "hardened-server did not start:"
  cat "$tmp/server.log"
  exit 1
fi
echo "hardened-server on $addr (admin $admin), defaults"

failed=0
# attack NAME URL SLOWHTTPTEST-ARGS...: runs the attack and the probe side
# by side for ATTACK_SECONDS and prints both verdicts.
attack() {
  local name=$1 url=$2
  shift 2
  echo
  echo "== $name: slowhttptest $* -u $url"
  timeout 70 slowhttptest "$@" -u "$url" -l "$ATTACK_SECONDS" -p 2 >"$tmp/$name.out" 2>&1 &
  local atk=$!
  pids+=("$atk")
  # Let the attack open its connections before measuring.
  sleep 3
  local rc=0
  timeout 70 "$tmp/probe" -url "http://$addr/healthz" -src 127.0.0.2 -every 50ms -timeout 1s \
    -for "$((ATTACK_SECONDS - 6))s" -min "$MIN_PCT" -label "legit during $name" || rc=$?
  wait "$atk" || true
  # slowhttptest's own summary: how many connections it held at the end,
  # and whether its probe found the service available.
  sed 's/\x1b\[[0-9;]*m//g' "$tmp/$name.out" | grep -E 'pending|connected|closed|error|service available|Exit status' |
    tail -6 | sed 's/^/  slowhttptest: /' || true
  if [[ $rc -ne 0 ]]; then
    echo "FAIL: $name: legitimate user served below $MIN_PCT %"
    failed=1
  fi
}

echo "(slowhttptest's own probe, 'service available', connects from the attacking address, 127.0.0.1,"
echo " which the server holds at its per-address cap on purpose: the verdict is the legit line, from 127.0.0.2)"

# Bounded connection counts: 1,000 from one address, 200 new per second.
attack slowloris "http://$addr/healthz" -H -c 1000 -r 200 -i 5 -x 24
attack slowbody "http://$addr/upload" -B -c 1000 -r 200 -i 5 -x 24 -s 65536
attack slowread "http://$addr/download?size=33554432" -X -c 500 -r 100 -w 1 -y 64 -n 2 -z 32 -k 1

echo
echo "== listener counters after the attacks (admin endpoint)"
counters=$(curl -s --max-time 5 "http://$admin/debug/garrison" | tr -d '\n' | grep -o '"listener":{[^}]*}[^}]*}' || true)
echo "$counters"
# The slow readers must have been cut by the minimum write rate, not
# merely outlived the attack.
slow_write=$(grep -o '"slow-write":[0-9]*' <<<"$counters" | cut -d: -f2)
echo "slow readers cut by the minimum write rate: ${slow_write:-none}"
if [[ -z "$slow_write" || "$slow_write" -eq 0 ]]; then
  echo "FAIL: slowread: no connection was cut as slow-write"
  failed=1
fi
if [[ $failed -ne 0 ]]; then
  echo "slowhttp: FAIL"
  exit 1
fi
echo "slowhttp: ok"
