#!/usr/bin/env bash
# search.sh: the flow search index's benchmarks (`make bench` runs it
# after run.sh; issue 17).
#
#  1. Ingest: storage/pebble BenchmarkIngestRecords writes INGEST_RECORDS
#     (default 200000) generated records in synced batches of 1000 with
#     the search index on and off: flows/s, flows per CPU second (the rate
#     per core, Pebble's flushes and compactions included) and the index's
#     bytes per record on disk.
#  2. Search: collector/query BenchmarkSearch over stores of 1M and 10M
#     records spread over one day (SEARCH_SIZES, default "1000000
#     10000000"), built once and kept in .cache/bench/search/N: p50 and
#     p99 of 100 day-long investigator queries through the index, beside
#     full scans of the same window (SEARCH_SCANS per size, default 3),
#     and the index's bytes per record.
#  3. Ratios of the same run: scan/index at p50, ingest with/without the
#     index; printed and written to bench/results/search.md.
#
# Records come from storage/flowindex/indextest: the shapes of the shared
# captures' flows, their DNS and TLS names, clients, servers and names
# drawn Zipf. Building the 10M store takes ~10 minutes and ~3 GB of disk;
# SEARCH_SIZES=1000000 skips it. The machine is shared: compare ratios.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export TAPIR_PCAPS=${TAPIR_PCAPS:-$(cd "$root/.." && pwd)/shared/pcaps}
cache=${BENCH_CACHE:-$root/.cache/bench}/search
results=$root/bench/results
mkdir -p "$cache" "$results"
raw=$results/search-bench.txt
: >"$raw"
log() { echo "== $*" >&2; }

ingest=${INGEST_RECORDS:-200000}
log "ingest: $ingest records, index on and off"
go test -run '^$' -bench '^BenchmarkIngestRecords$' -benchtime "${ingest}x" ./storage/pebble/ 2>&1 | tee -a "$raw" | grep -E '^(Benchmark|FAIL|panic)' >&2

for n in ${SEARCH_SIZES:-1000000 10000000}; do
  log "search: $n records (store cached in $cache/$n)"
  TAPIR_SEARCH_STORE=$cache TAPIR_SEARCH_RECORDS=$n TAPIR_SEARCH_SCANS=${SEARCH_SCANS:-3} \
    go test -run '^$' -bench '^BenchmarkSearch$' -benchtime 3x -timeout 3h ./collector/query/ 2>&1 |
    sed "s/^BenchmarkSearch/BenchmarkSearch\/records=$n/" | tee -a "$raw" | grep -E '^(Benchmark|FAIL|panic)' >&2
done
if grep -q -E '^(FAIL|panic)' "$raw"; then
  log "a benchmark failed; see $raw"
  exit 1
fi

# metric LINE-REGEXP UNIT: the value reported with UNIT on the line.
metric() { grep -E "$1" "$raw" | tail -1 | awk -v u="$2" '{ for (i = 2; i <= NF; i++) if ($i == u) print $(i - 1) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

md=$results/search.md
{
  echo "# Flow search benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores)"
  echo
  on=$(metric 'IngestRecords/index-' flows/cpu-s)
  off=$(metric 'IngestRecords/noindex-' flows/cpu-s)
  echo "| ingest ($ingest records, batches of 1000, synced) | flows/s | flows per CPU second | index B/record |"
  echo "|---|---|---|---|"
  echo "| index on | $(metric 'IngestRecords/index-' flows/s) | $on | $(metric 'IngestRecords/index-' index-B/record) |"
  echo "| index off | $(metric 'IngestRecords/noindex-' flows/s) | $off | |"
  echo "| on/off | | $(ratio "$on" "$off") | |"
  echo
  echo "| records (one day) | index p50 ms | index p99 ms | scan p50 ms | scan/index p50 | matches/query | index B/record | record B/record |"
  echo "|---|---|---|---|---|---|---|---|"
  for n in ${SEARCH_SIZES:-1000000 10000000}; do
    l="records=$n-"
    echo "| $n | $(metric "$l" index-p50-ms) | $(metric "$l" index-p99-ms) | $(metric "$l" scan-p50-ms) | $(metric "$l" scan/index-p50) | $(metric "$l" matches/query) | $(metric "$l" index-B/record) | $(metric "$l" record-B/record) |"
  done
} | tee "$md"
