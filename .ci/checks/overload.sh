#!/usr/bin/env bash
# overload: the siege's capacity-drop and priority scenarios, full length
# and without the race detector, judged by the siege's own verdict (exit 1
# when a bound is missed): the adaptive limit keeps ≥ 90 % of the better
# static cap's goodput in every phase with a lower p99 than the static cap
# that keeps its goodput, and critical requests keep ≥ 99 % success under
# a sheddable flood. About 75 s; every load is bounded by the scenario.
#
# These are latency measurements on whatever machine runs CI: a scenario
# that misses a bound runs once more, and the check fails only if the
# second run misses too. Both runs' tables are printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/siege" ./examples/siege
for s in capacity-drop priority; do
  if ! "$dir/siege" -scenario "$s"; then
    echo "overload: $s missed a bound; running it once more (noisy machine?)"
    "$dir/siege" -scenario "$s"
  fi
done
