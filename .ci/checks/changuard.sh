#!/usr/bin/env bash
# changuard: a short fuzz run of the Chan model check (the seed corpus runs
# in go test; this explores new operation sequences), then the Chan close
# race under the race detector with GOMAXPROCS=1, where interleavings
# differ from the default run.
set -euo pipefail
# An execution count, not a duration: see golang/go#75804.
go test -run '^$' -fuzz '^FuzzChanModel$' -fuzztime 200000x ./changuard
GOMAXPROCS=1 go test -race -count 1 -run '^TestChanCloseRace$' ./changuard
