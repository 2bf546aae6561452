#!/usr/bin/env bash
# Exits 0 when the OpenSearch node at $TAPIR_OPENSEARCH (default
# http://127.0.0.1:9200, or the port in TAPIR_OPENSEARCH_PORT) reports
# yellow or green cluster health within 5 s.
set -euo pipefail
url=${TAPIR_OPENSEARCH:-http://127.0.0.1:${TAPIR_OPENSEARCH_PORT:-9200}}
out=$(curl -sS -m 10 "$url/_cluster/health?wait_for_status=yellow&timeout=5s" 2>&1) ||
  { echo "opensearch: not answering at $url"; exit 1; }
if grep -Eq '"status":"(yellow|green)"' <<<"$out" && ! grep -q '"timed_out":true' <<<"$out"; then
  echo "opensearch: ready at $url"
  exit 0
fi
echo "opensearch: not yellow at $url: $out"
exit 1
