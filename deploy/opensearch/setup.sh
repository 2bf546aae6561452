#!/usr/bin/env bash
# Installs tapir's composable index template (opensearch-template.json, as
# _index_template/tapir) into the node at $TAPIR_OPENSEARCH (default
# http://127.0.0.1:9200) and checks that the node stored it. Idempotent.
# start.sh runs it; run it by hand against a production cluster (add
# curl's -u/--cacert through CURL_OPTS there).
#
# Rollover and retention: the index-management plugin (ISM) is not on
# Maven Central, so a node built from Maven jars has no ISM. The
# collector's indexer (collector/searchindex) writes daily indices
# tapir-flows-YYYY.MM.DD and deletes those older than
# opensearch.retention_days itself; see README.md for an ISM policy on a
# full distribution.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
url=${TAPIR_OPENSEARCH:-http://127.0.0.1:${TAPIR_OPENSEARCH_PORT:-9200}}
read -r -a extra <<<"${CURL_OPTS:-}"
out=$(curl -sS -m 30 "${extra[@]}" -XPUT -H 'Content-Type: application/json' \
  "$url/_index_template/tapir" --data-binary "@$here/opensearch-template.json")
grep -q '"acknowledged":true' <<<"$out" || { echo "opensearch: template rejected: $out" >&2; exit 1; }
curl -sSf -m 30 "${extra[@]}" "$url/_index_template/tapir" >/dev/null
echo "opensearch: index template tapir installed at $url"
