#!/usr/bin/env bash
# spawn: beyond the seed corpus that `go test` runs, fuzz the random
# submit/cancel/release sequences for a short while.
set -euo pipefail
# An execution count, not a duration: see golang/go#75804.
go test -run '^$' -fuzz '^FuzzSequence$' -fuzztime 100000x ./spawn/
