#!/usr/bin/env bash
# lockorder-projects: well-known projects' own test suites, run with their
# sync.Mutex and sync.RWMutex replaced by lockorder's (the checking build,
# under -race), with a handler that records every report. Each project is
# fetched with `go mod download`, converted in a scratch copy by
# lockorder/lockcheck/cmd/lockconvert, and never committed.
#
# The clean projects (go-cache, golang-lru/v2, groupcache) must produce no
# report at all; bbolt must produce the reports listed in
# lockorder/testdata/projects/bbolt.expected (its latent nested-transaction
# deadlocks, one line per report) and no others. The converted suite's time
# against the same suite unconverted, both under -race and both compiled
# first, is printed (informative: one run each on a shared machine).
# Bounded: each suite runs under a 5-minute timeout; about 3½ minutes in
# all, most of it bbolt's suite, twice.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
export GOWORK=off GOFLAGS=-mod=mod

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
(cd lockorder/lockcheck && go build -o "$tmp/lockconvert" ./cmd/lockconvert)

# name  module@version  packages  go test flags (bbolt: its root package,
# where the mutexes are; its failpoint tests need a gofail build. Its
# TestDB_Open_InitialMmapSize fails when a writer waits longer than a
# fixed time, which on a 2-core machine under -race it sometimes does with
# the unconverted code too (one CI run: "unexpected that the writer is
# blocked for a long time"), so it is skipped in both runs.)
projects=(
  "go-cache github.com/patrickmn/go-cache@v2.1.0+incompatible ./... -race"
  "golang-lru github.com/hashicorp/golang-lru/v2@v2.0.7 ./... -race"
  "groupcache github.com/golang/groupcache@v0.0.0-20241129210726-2c02b8208cf8 ./... -race"
  "bbolt go.etcd.io/bbolt@v1.5.0 . -race -short -skip ^TestDB_Open_InitialMmapSize$"
)

fail=0
for p in "${projects[@]}"; do
  read -r name modver pkgs flags <<<"$p"
  mod=${modver%@*}
  echo "-- $name ($modver)"
  src=$(go mod download -json "$modver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  for variant in plain checked; do
    dir="$tmp/$name-$variant"
    cp -r "$src" "$dir"
    chmod -R u+w "$dir"
    (
      cd "$dir"
      [[ -f go.mod ]] || go mod init "$mod" >/dev/null 2>&1
      if [[ $variant == checked ]]; then
        "$tmp/lockconvert" .
        go mod edit -require=github.com/garrison-go/garrison@v0.0.0-00010101000000-000000000000 \
          -replace=github.com/garrison-go/garrison="$root"
        # A recording handler in every package that has tests.
        go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}} {{.Name}}{{end}}' ./... | while read -r pdir pname; do
          [[ -n "$pdir" ]] || continue
          cat >"$pdir/zz_lockorder_record_test.go" <<GO
package $pname

import (
	"os"
	"strings"

	"github.com/garrison-go/garrison/lockorder"
)

func init() {
	path := os.Getenv("LOCKORDER_RECORD")
	if path == "" {
		return
	}
	lockorder.SetHandler(func(err *lockorder.OrderError) {
		f, e := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if e != nil {
			return
		}
		defer f.Close()
		first, _, _ := strings.Cut(err.Error(), "\n")
		_, _ = f.WriteString(first + "\n")
	})
}
GO
        done
      fi
      go mod tidy >/dev/null 2>&1 || go mod download >/dev/null 2>&1 || true
    )
  done
  # Both suites are compiled first, so the times compare runs, not builds.
  for variant in plain checked; do
    (cd "$tmp/$name-$variant" && go test $flags -count=1 -run '^$' $pkgs >/dev/null 2>&1) || true
  done
  start=$(date +%s.%N)
  (cd "$tmp/$name-plain" && timeout 300 go test $flags -count=1 $pkgs >"$tmp/$name-plain.log" 2>&1) || { echo "   unconverted suite failed:"; tail -20 "$tmp/$name-plain.log"; fail=1; continue; }
  mid=$(date +%s.%N)
  rec="$tmp/$name.reports"
  : >"$rec"
  (cd "$tmp/$name-checked" && LOCKORDER_RECORD="$rec" timeout 300 go test $flags -count=1 $pkgs >"$tmp/$name-checked.log" 2>&1) || { echo "   converted suite failed:"; tail -20 "$tmp/$name-checked.log"; fail=1; continue; }
  end=$(date +%s.%N)
  python3 - "$start" "$mid" "$end" <<'PY'
import sys
s, m, e = map(float, sys.argv[1:])
print(f"   -race {m-s:.1f} s unconverted, {e-m:.1f} s converted: {(e-m)/(m-s):.2f}x")
PY
  expected="lockorder/testdata/projects/$name.expected"
  # Instance numbers (Mutex#417) depend on what ran before: not compared.
  sed -E 's/#[0-9]+//g' "$rec" | sort >"$rec.sorted"
  if [[ -f "$expected" ]]; then
    grep -v '^#' "$expected" | sort >"$tmp/$name.want"
  else
    : >"$tmp/$name.want"
  fi
  if ! diff -u "$tmp/$name.want" "$rec.sorted" >"$tmp/$name.diff"; then
    echo "   reports differ from $expected (- expected, + got):"
    sed 's/^/   /' "$tmp/$name.diff"
    fail=1
  else
    echo "   $(wc -l <"$rec.sorted") report(s), as expected"
  fi
done
exit $fail
