#!/usr/bin/env bash
# Starts OpenSearch 2.19 as a real single node on 127.0.0.1 for tapir's
# tests, benchmarks and demos, from Maven Central jars alone (fetch.sh), with
# the security plugin absent (plain HTTP, no authentication: loopback and
# tests only; production settings are in README.md), waits for yellow
# cluster health and installs tapir's index templates (setup.sh).
#
#   deploy/opensearch/start.sh            # fetch jars if needed, start, wait, set up
#   deploy/opensearch/start.sh --resume   # start again on the data a stop.sh --keep-data left
#
# Environment (defaults in brackets):
#   TAPIR_OPENSEARCH_PORT [9200]            HTTP (REST) on 127.0.0.1
#   TAPIR_OPENSEARCH_TRANSPORT_PORT [9300]  node-to-node transport on 127.0.0.1
#   TAPIR_OPENSEARCH_HEAP [512m]            JVM heap, -Xms = -Xmx (see README.md)
#   TAPIR_OPENSEARCH_START_TIMEOUT [120]    seconds to wait for yellow health
#   TAPIR_OPENSEARCH_USER [nobody]          the unprivileged user the node runs
#                                           as when started by root (it refuses root)
#   TAPIR_SERVICES_DIR [<repo>/.cache/services] run state (pid, config, log)
# Data lives in a fresh temporary directory removed by stop.sh. On failure
# the log is printed and kept in $TAPIR_SERVICES_DIR/opensearch/opensearch.log.
set -euo pipefail
name=opensearch
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/../lib.sh"
port=${TAPIR_OPENSEARCH_PORT:-9200}
tport=${TAPIR_OPENSEARCH_TRANSPORT_PORT:-9300}
heap=${TAPIR_OPENSEARCH_HEAP:-512m}
timeout=${TAPIR_OPENSEARCH_START_TIMEOUT:-120}
user=${TAPIR_OPENSEARCH_USER:-nobody}
home=$root/.cache/jars/opensearch
export TAPIR_OPENSEARCH=${TAPIR_OPENSEARCH:-http://127.0.0.1:$port}

svc_exit_if_running
svc_prepare "$@"
conf=$data/config
mkdir -p "$conf" "$data/data" "$data/logs" "$data/tmp"
[ $resume = 1 ] || cat >"$conf/opensearch.yml" <<YAML
cluster.name: tapir-test
node.name: tapir-test-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: $port
transport.port: $tport
path.data: $data/data
path.logs: $data/logs
# Tests create and delete many indices; no disk-watermark surprises on a
# nearly full test disk.
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
YAML
cat >"$conf/log4j2.properties" <<'PROPS'
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
PROPS
cat >"$conf/jvm.options" <<OPTS
-Xms$heap
-Xmx$heap
OPTS
runas=()
if [ "$(id -u)" = 0 ]; then
  chown -R "$user" "$data"
  runas=(setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups --)
fi
# The options the distribution's jvm.options and bin/opensearch set that
# matter here.
java_opts=("-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -XX:+HeapDumpOnOutOfMemoryError
  "-XX:HeapDumpPath=$data/logs" -Djava.awt.headless=true -Dfile.encoding=UTF-8
  -Djna.nosys=true -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true
  -Dio.netty.recycler.maxCapacityPerThread=0 -Dlog4j.shutdownHookEnabled=false
  -Dlog4j2.disable.jmx=true -Djava.locale.providers=SPI,COMPAT
  "-Djava.io.tmpdir=$data/tmp" -Djava.security.manager=allow
  "-Dopensearch.path.home=$home" "-Dopensearch.path.conf=$conf"
  -Dopensearch.distribution.type=tar -Dopensearch.bundled_jdk=false
  -cp "$home/lib/*")
: >"$log"
chmod a+w "$log"
svc_launch "${runas[@]}" java "${java_opts[@]}" org.opensearch.bootstrap.OpenSearch
svc_wait "$timeout" yellow
"$here/setup.sh"
echo "opensearch: ready on 127.0.0.1:$port (TAPIR_OPENSEARCH=$TAPIR_OPENSEARCH)"
