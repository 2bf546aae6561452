#!/usr/bin/env bash
# Starts Apache HBase 2.x in standalone mode (HMaster, one region server and
# ZooKeeper in one JVM; hbase.rootdir on the local filesystem) on 127.0.0.1
# for tapir's tests, benchmarks and demos, and waits until the master has
# finished initialising (hbase:meta and hbase:namespace online).
#
#   deploy/hbase/start.sh            # fetch jars if needed, start, wait
#   deploy/hbase/start.sh --resume   # start again on the data a stop.sh --keep-data left
#
# Environment (defaults in brackets):
#   TAPIR_HBASE_ZK_PORT [2181]   ZooKeeper client port on 127.0.0.1
#   TAPIR_HBASE_HEAP [2g]        JVM heap (see "Memory" below)
#   TAPIR_HBASE_START_TIMEOUT [180] seconds to wait for readiness
#   TAPIR_SERVICES_DIR [<repo>/.cache/services] run state (pid, config, log)
#   TAPIR_HBASE_MASTER_PORT [16000], TAPIR_HBASE_INFO_PORT [16010] (master
#   web UI/JMX, used by check.sh), TAPIR_HBASE_RS_PORT [16020]
# Data lives in a fresh temporary directory removed by stop.sh.
#
# Memory. With 1 GiB and HBase's defaults (memstores up to 40 % of the heap,
# block cache 40 %, an RPC call queue of up to 1 GiB) a sustained stream of
# packet blocks ran the heap out in memstore chunk allocation and the
# master aborted. Here memstores get at most 30 % of the heap (flushing
# from 80 % of that), the block cache 20 % (the collector reads blocks by
# prefix scan, rarely twice), a region blocks writes at 4x its 64 MiB
# flush size, and queued calls may hold at most 256 MiB: under a stream
# faster than the disk, writes wait (RegionTooBusyException, which the
# client retries) instead of filling the heap. On a real cluster keep the
# same proportions per region server: heap 16-31 GiB (below 32 GiB for
# compressed pointers), global memstore 0.3-0.4 with flush size 128-256 MiB
# and blocking multiplier 4, block cache 0.2 on write-mostly servers,
# call queue below 10 % of the heap, and enough regions (salt_regions) that
# every server's memstores take a share of the ingest.
set -euo pipefail
name=hbase
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/../lib.sh"
zk=${TAPIR_HBASE_ZK_PORT:-2181}
mport=${TAPIR_HBASE_MASTER_PORT:-16000}
info=${TAPIR_HBASE_INFO_PORT:-16010}
rsport=${TAPIR_HBASE_RS_PORT:-16020}
heap=${TAPIR_HBASE_HEAP:-2g}
timeout=${TAPIR_HBASE_START_TIMEOUT:-180}
jars=$root/.cache/jars/hbase

svc_exit_if_running
svc_prepare "$@"
mkdir -p "$run/conf"
echo "$info" >"$run/info_port"
[ $resume = 1 ] || cat >"$run/conf/hbase-site.xml" <<XML
<?xml version="1.0"?>
<configuration>
  <property><name>hbase.cluster.distributed</name><value>false</value></property>
  <property><name>hbase.rootdir</name><value>file://$data/hbase</value></property>
  <property><name>hbase.tmp.dir</name><value>$data/tmp</value></property>
  <property><name>hbase.zookeeper.property.dataDir</name><value>$data/zookeeper</value></property>
  <property><name>hbase.zookeeper.quorum</name><value>127.0.0.1</value></property>
  <property><name>hbase.zookeeper.property.clientPort</name><value>$zk</value></property>
  <!-- the local filesystem has no hflush/hsync capability flags -->
  <property><name>hbase.unsafe.stream.capability.enforce</name><value>false</value></property>
  <property><name>hbase.wal.provider</name><value>filesystem</value></property>
  <property><name>hbase.master.hostname</name><value>127.0.0.1</value></property>
  <property><name>hbase.unsafe.regionserver.hostname</name><value>127.0.0.1</value></property>
  <property><name>hbase.regionserver.hostname</name><value>127.0.0.1</value></property>
  <property><name>hbase.master.ipc.address</name><value>127.0.0.1</value></property>
  <property><name>hbase.regionserver.ipc.address</name><value>127.0.0.1</value></property>
  <property><name>hbase.master.info.bindAddress</name><value>127.0.0.1</value></property>
  <property><name>hbase.master.port</name><value>$mport</value></property>
  <property><name>hbase.master.info.port</name><value>$info</value></property>
  <property><name>hbase.regionserver.port</name><value>$rsport</value></property>
  <property><name>hbase.regionserver.info.port</name><value>-1</value></property>
  <!-- packet blocks are large cells (up to a few MiB per put) -->
  <property><name>hbase.client.keyvalue.maxsize</name><value>67108864</value></property>
  <property><name>hbase.server.keyvalue.maxsize</name><value>67108864</value></property>
  <!-- memory: a sustained stream makes writes wait, never fills the heap (see above) -->
  <property><name>hbase.regionserver.global.memstore.size</name><value>0.3</value></property>
  <property><name>hbase.regionserver.global.memstore.size.lower.limit</name><value>0.8</value></property>
  <property><name>hfile.block.cache.size</name><value>0.2</value></property>
  <property><name>hbase.hregion.memstore.flush.size</name><value>67108864</value></property>
  <property><name>hbase.hregion.memstore.block.multiplier</name><value>4</value></property>
  <property><name>hbase.ipc.server.max.callqueue.size</name><value>268435456</value></property>
  <!-- small machine: fewer handler threads, no periodic balancing -->
  <property><name>hbase.regionserver.handler.count</name><value>16</value></property>
  <property><name>hbase.balancer.period</name><value>3600000</value></property>
</configuration>
XML
cat >"$run/conf/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{2}: %m%n
log4j.logger.org.apache.zookeeper=WARN
log4j.logger.org.apache.hadoop.hbase.zookeeper=WARN
log4j.logger.org.apache.hadoop=WARN
log4j.logger.org.apache.hadoop.hbase=INFO
PROPS
# JDK 17 needs the module opens that bin/hbase adds for JDK 11+.
java_opts=(-Xms256m "-Xmx$heap" -XX:+UseG1GC -Djava.awt.headless=true
  -Djava.net.preferIPv4Stack=true
  "-Dhbase.log.dir=$run" "-Dlog4j.configuration=file:$run/conf/log4j.properties"
  -Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports=java.base/sun.net.util=ALL-UNNAMED
  -cp "$run/conf:$jars/*")
: >"$log"
svc_launch java "${java_opts[@]}" org.apache.hadoop.hbase.master.HMaster start
svc_wait "$timeout" ready
echo "hbase: ready (TAPIR_HBASE_ZK=127.0.0.1:$zk)"
