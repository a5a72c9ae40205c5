#!/usr/bin/env bash
# report: the siege's HTML report read the way a reader reads it. A quick
# siege run writes its -json results and its -report page; headless
# Chromium (Debian's chromium) renders the page in a window 1000 px wide,
# and examples/siege/internal/reportcheck compares what was drawn with the
# JSON: every table cell, every figure's pair of bars, where each legit
# request's mark landed (a request without an answer in the band at the
# patience, where the percentiles count it), the race's lost-updates line,
# a heap chart per scenario, the defined words, anything wider than the
# window; and a screenshot of the whole page with both twins' colours on
# it. About 2 minutes (the run is the README's demo with -quick).
set -euo pipefail
cd "$(dirname "$0")/../.."

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then
    browser=$b
    break
  fi
done
if [[ -z "$browser" ]]; then
  apt-get update -qq </dev/null
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core </dev/null >/dev/null
  browser=chromium
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/siege" ./examples/siege
go build -o "$dir/reportcheck" ./examples/siege/internal/reportcheck

# The verdict of this run is not this check's business (exit 1 is a
# missed figure, which the page must then show as such); 2 is an error.
rc=0
"$dir/siege" -quick -json -report "$dir/report.html" >"$dir/results.json" 2>"$dir/progress.log" || rc=$?
if ((rc > 1)); then
  cat "$dir/progress.log"
  echo "report: the siege run failed (exit $rc)"
  exit 1
fi
"$dir/reportcheck" -chromium "$browser" -results "$dir/results.json" -report "$dir/report.html" -screenshot "$dir/page.png"
