#!/usr/bin/env bash
# lockorder: the checking build (-tags lockorder) and the production build
# (plain) are different code; test both, vet both, and assert that the
# production methods inline (the "costs nothing" promise).
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "-- go vet -tags lockorder (amd64, arm64 assembly, 386 fallback)"
go vet -tags lockorder ./lockorder/...
GOARCH=arm64 go vet -tags lockorder ./lockorder/...
GOARCH=386 go build -tags lockorder ./lockorder/...

echo "-- go test -tags lockorder (checking build without -race)"
go test -count=1 -tags lockorder ./lockorder/...

echo "-- go test (production build)"
go test -count=1 ./lockorder/...

echo "-- inlining of the production methods"
out=$(go build -gcflags='github.com/garrison-go/garrison/lockorder=-m' ./lockorder/ 2>&1)
missing=0
for m in '(*Mutex).Lock' '(*Mutex).Unlock' '(*Mutex).TryLock' '(*Mutex).SetClass' \
  '(*RWMutex).Lock' '(*RWMutex).Unlock' '(*RWMutex).RLock' '(*RWMutex).RUnlock' \
  '(*RWMutex).TryLock' '(*RWMutex).TryRLock' '(*RWMutex).SetClass' 'Enabled' \
  'Blocking' 'Unblocking' 'WillUnblock' '(*WaitGroup).Add' '(*WaitGroup).Done' \
  '(*WaitGroup).Wait' '(*Once).Do'; do
  if ! grep -qF "can inline $m" <<<"$out"; then
    echo "not inlinable in the production build: $m" >&2
    missing=1
  fi
done
if [[ $missing -ne 0 ]]; then
  printf '%s\n' "$out" | grep -F 'lockorder/' >&2 || true
  exit 1
fi
echo "-- the blocking hooks are empty and inline in the production build"
out=$(go build -gcflags='github.com/garrison-go/garrison/internal/blockhook=-m' ./internal/blockhook/ 2>&1)
for m in Wait Unblock Begin End; do
  if ! grep -qF "can inline $m" <<<"$out"; then
    echo "not inlinable in the production build: blockhook.$m" >&2
    exit 1
  fi
done
echo "ok"
