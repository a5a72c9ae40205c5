#!/usr/bin/env bash
# Telling the load balancer: two examples/agentcheck instances, one ten
# times slower, behind a real HAProxy (Debian's), on loopback. The same
# bounded load (hey, 8 s, 24 connections at 20 requests per second each: 24 times what the slow instance can serve with its 4 slots of 200 ms, a third of what the fast one can with 32 of 20 ms) runs twice: with plain round-robin,
# then with HAProxy's agent-check reading each instance's limiter.Readiness.
# Pass: with the agent at most 0.5 % of requests are lost (HAProxy retries
# a refusal elsewhere; on a quiet machine none is), the slow instance gets
# a smaller share of the traffic, and it has drained at least once.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v hey >/dev/null 2>&1 || need+=(hey)
if [[ ${#need[@]} -gt 0 ]]; then
  echo "installing Debian's ${need[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq </dev/null >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
fi
haproxy -v | sed -n 1p

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/agentcheck" ./examples/agentcheck

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    if ! port_in_use "$p"; then echo "$p"; return; fi
  done
  echo "no free port" >&2
  return 1
}
# http_get PORT PATH: the body of a GET on loopback, with bash alone.
http_get() {
  exec 3<>"/dev/tcp/127.0.0.1/$1"
  printf 'GET %s HTTP/1.0\r\nHost: x\r\n\r\n' "$2" >&3
  sed '1,/^\r$/d' <&3
  exec 3<&-
}
wait_port() {
  for _ in $(seq 100); do
    if port_in_use "$1"; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}
json_field() { grep -o "\"$2\":[0-9]*" <<<"$1" | head -1 | cut -d: -f2; }

# phase NAME AGENT(yes|no): runs the load and sets NAME_share (the slow
# instance's share of served requests, in ‰), NAME_lost (requests not
# answered 200) and NAME_drains.
phase() {
  local name=$1 agent=$2
  local fast slow fast_agent slow_agent front
  fast=$(free_port) slow=$(free_port) fast_agent=$(free_port) slow_agent=$(free_port) front=$(free_port)
  "$tmp/agentcheck" -addr "127.0.0.1:$fast" -agent "127.0.0.1:$fast_agent" -service 20ms -capacity 32 2>"$tmp/fast.log" &
  local fast_pid=$!
  "$tmp/agentcheck" -addr "127.0.0.1:$slow" -agent "127.0.0.1:$slow_agent" -service 200ms -capacity 4 2>"$tmp/slow.log" &
  local slow_pid=$!
  pids+=("$fast_pid" "$slow_pid")
  local agent_fast="" agent_slow=""
  if [[ $agent == yes ]]; then
    agent_fast="agent-check agent-addr 127.0.0.1 agent-port $fast_agent agent-inter 200ms"
    agent_slow="agent-check agent-addr 127.0.0.1 agent-port $slow_agent agent-inter 200ms"
  fi
  cat >"$tmp/haproxy.cfg" <<CFG
global
  maxconn 2000
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
  retries 6
  option redispatch 1
  retry-on 503 conn-failure empty-response
frontend fe
  bind 127.0.0.1:$front
  default_backend be
backend be
  balance roundrobin
  server fast 127.0.0.1:$fast weight 100 check inter 500ms $agent_fast
  server slow 127.0.0.1:$slow weight 100 check inter 500ms $agent_slow
CFG
  haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 &
  local ha_pid=$!
  pids+=("$ha_pid")
  wait_port "$fast"; wait_port "$slow"; wait_port "$front"
  sleep 1 # let the first agent checks land

  timeout 30 hey -z 8s -c 24 -q 20 -t 10 "http://127.0.0.1:$front/" >"$tmp/hey.txt"
  local fs ss
  fs=$(http_get "$fast" /stats) ss=$(http_get "$slow" /stats)
  kill "$ha_pid" "$fast_pid" "$slow_pid" 2>/dev/null || true
  wait "$ha_pid" "$fast_pid" "$slow_pid" 2>/dev/null || true

  local ok total p99 fserved sserved drains
  ok=$(awk '/\[200\]/ {print $2}' "$tmp/hey.txt")
  total=$(awk '/Requests\/sec/ {next} /^  Total:/ {next} /responses/ {s += $2} END {print s+0}' "$tmp/hey.txt")
  p99=$(awk '/ 99% in/ {print $3}' "$tmp/hey.txt")
  fserved=$(json_field "$fs" served) sserved=$(json_field "$ss" served)
  drains=$(json_field "$ss" BecameUnready)
  local errors
  errors=$(awk '/Error distribution/ {e = 1; next} e && /\[/ {s += substr($1, 2)} END {print s+0}' "$tmp/hey.txt")
  echo "$name: fast instance: $(json_field "$fs" rejected) refused, drained $(json_field "$fs" BecameUnready) times, limit $(json_field "$fs" Limit); slow: $(json_field "$ss" rejected) refused, limit $(json_field "$ss" Limit)"
  echo "$name: ${ok:-0} of $((total + errors)) requests answered 200, p99 ${p99}s; served by fast $fserved, by slow $sserved (slow share $((100 * sserved / (fserved + sserved))) %), slow drained ${drains:-0} times"
  sed -n '/Status code distribution/,$p' "$tmp/hey.txt" | sed '/^\s*$/d'
  eval "${name}_lost=$((total + errors - ${ok:-0}))"
  eval "${name}_total=$((total + errors))"
  eval "${name}_share=$((1000 * sserved / (fserved + sserved)))"
  eval "${name}_drains=${drains:-0}"
}

phase roundrobin no
phase agent yes
echo "lost: $agent_lost with the agent, $roundrobin_lost without"
if [[ $((agent_lost * 200)) -gt $agent_total ]]; then
  echo "with the agent $agent_lost of $agent_total requests were lost (over 0.5 %)" >&2
  exit 1
fi
if [[ $agent_share -ge $roundrobin_share ]]; then
  echo "the agent did not move traffic away from the slow instance (share ${agent_share}‰ vs ${roundrobin_share}‰)" >&2
  exit 1
fi
if [[ $agent_drains -lt 1 ]]; then
  echo "the slow instance never drained" >&2
  exit 1
fi
echo "ok: the agent moved traffic to the fast instance, nothing lost"
