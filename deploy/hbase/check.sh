#!/usr/bin/env bash
# Exits 0 when the standalone HBase started by start.sh is ready: its
# master's JMX (web port $TAPIR_HBASE_INFO_PORT, default 16010) reports it active with a live region
# server, and its log says the master completed initialisation.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
run=${TAPIR_SERVICES_DIR:-$root/.cache/services}/hbase
info=${TAPIR_HBASE_INFO_PORT:-$(cat "$run/info_port" 2>/dev/null || echo 16010)}
jmx=$(curl -fsS -m 5 "http://127.0.0.1:$info/jmx?qry=Hadoop:service=HBase,name=Master,sub=Server" 2>/dev/null) ||
  { echo "hbase: master web port not answering"; exit 1; }
grep -q '"tag.isActiveMaster" *: *"true"' <<<"$jmx" || { echo "hbase: master not active"; exit 1; }
grep -Eq '"numRegionServers" *: *[1-9]' <<<"$jmx" || { echo "hbase: no live region server"; exit 1; }
if [ -f "$run/hbase.log" ] && ! grep -q "Master has completed initialization" "$run/hbase.log"; then
  echo "hbase: master still initialising"; exit 1
fi
echo "hbase: ready"
