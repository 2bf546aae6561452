#!/usr/bin/env bash
# console.sh: page timings of the web console, measured in headless
# Chromium (Performance API) against a real collector fed with shared
# captures: navigation to first contentful paint and to search results
# drawn, p50 and p99 over CONSOLE_LOADS loads (default 30) of the search
# page. Run by `make bench`; needs chromium (make deps). Writes
# bench/results/console.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export TAPIR_PCAPS=${TAPIR_PCAPS:-$(cd "$root/.." && pwd)/shared/pcaps}
export CONSOLE_LOADS=${CONSOLE_LOADS:-30}
out=$(go test -count=1 -run '^$' -bench '^BenchmarkConsolePageTiming$' -benchtime 1x ./systest/console)
echo "$out"
line=$(grep '^BenchmarkConsolePageTiming' <<<"$out") || { echo "console.sh: no benchmark result" >&2; exit 1; }
metric() { awk -v u="$1" '{for (i = 2; i < NF; i++) if ($(i+1) == u) print $i}' <<<"$line"; }
results=$root/bench/results/console.md
{
  echo "# Web console page timings"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $CONSOLE_LOADS loads of the search page (results and histogram) in headless Chromium, collector on localhost."
  echo
  echo "| | p50 | p99 |"
  echo "|---|---|---|"
  echo "| navigation to first contentful paint | $(metric paint-p50-ms) ms | $(metric paint-p99-ms) ms |"
  echo "| navigation to results shown | $(metric results-p50-ms) ms | $(metric results-p99-ms) ms |"
} >"$results"
cat "$results"
