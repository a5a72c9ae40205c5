#!/usr/bin/env bash
# The contrib modules (Prometheus, OpenTelemetry, gRPC) are nested modules
# with their own dependencies: test each one with -race inside its own
# directory, through the committed go.work. go test runs vet's test
# checks; a full vet and staticcheck would compile and analyse grpc, otel
# and protobuf twice more, which costs minutes on a 2-core machine (run
# them by hand before committing). The gRPC flood test
# binds clients to 127.0.0.N, so it needs the whole 127.0.0.0/8 on the
# loopback interface (Linux has it by default).
set -euo pipefail
cd "$(dirname "$0")/../.."

# -trimpath makes the compiled dependencies independent of where the
# module cache lives, so modules.sh (which uses a fresh one) reuses them.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath"
for dir in contrib/*/; do
  [[ -f "$dir/go.mod" ]] || continue
  echo "== $dir"
  (
    cd "$dir"
    go test -race -count=1 ./...
  )
done
