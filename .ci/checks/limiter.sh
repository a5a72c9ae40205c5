#!/usr/bin/env bash
# limiter: the build-tagged Preflight files compile on every OS family, the
# table's prefetch builds and tests without its assembly, Keyed's Allow
# methods inline, and each fuzz target (X-Forwarded-For, Forwarded and X-Real-IP parsing against
# a model, key extraction, GCRA against
# its reference model) runs briefly beyond its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/../.."

for os in linux darwin freebsd windows; do
  GOOS=$os go vet ./limiter/
done
# The table's PREFETCHW is amd64 assembly; every other architecture, and
# -tags purego, build the Go fallback.
GOARCH=arm64 go vet ./limiter/
GOARCH=386 go build ./limiter/
go vet -tags purego ./limiter/
go test -count=1 -tags purego -run 'Keyed|Evict|Table|GCRA|Hot|Shard' ./limiter/

# Keyed.Allow, AllowN and AllowAddr must inline: a Decision returned from a
# call that is not inlined costs its caller a store-forwarding stall (see
# Keyed.Allow's doc). So must the table's lookup and prefetch, on every
# step's path. -m ends each such line with the function's name.
out=$(go build -gcflags='github.com/garrison-go/garrison/limiter=-m' ./limiter/ 2>&1)
for m in '(*Keyed).Allow' '(*Keyed).AllowN' '(*Keyed).AllowAddr' '(*shard).find' 'prefetchForWrite'; do
  if ! awk -v want="can inline $m" 'substr($0, length($0) - length(want) + 1) == want { found = 1 } END { exit !found }' <<<"$out"; then
    echo "not inlinable: limiter.$m" >&2
    exit 1
  fi
done

# Budgets are execution counts, not durations: a duration budget races the
# fuzz coordinator's own deadline on a loaded machine and fails with a bare
# "context deadline exceeded" (golang/go#75804, fixed in Go 1.27).
for target in FuzzForwardedFor:150000x FuzzClientAddr:150000x FuzzKeyFunc:20000x FuzzGCRA:25000x; do
  go test -run '^$' -fuzz "^${target%%:*}\$" -fuzztime "${target#*:}" ./limiter/
done

# The eviction flood at the default capacity is too slow under -race, which
# the main test run uses; replay it here without the race detector.
go test -count=1 -run '^TestEvictionFlood$' ./limiter/
