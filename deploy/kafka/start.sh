#!/usr/bin/env bash
# Starts Apache Kafka 4.x as a single KRaft node (broker + controller in one
# JVM) on 127.0.0.1 for tapir's tests, benchmarks and demos, and waits until
# it answers metadata requests.
#
#   deploy/kafka/start.sh            # fetch jars if needed, start, wait
#   deploy/kafka/start.sh --resume   # start again on the data a stop.sh --keep-data left
#
# Environment (defaults in brackets):
#   TAPIR_KAFKA_PORT [9092]      client listener on 127.0.0.1
#   TAPIR_KAFKA_CTRL_PORT [9093] controller listener on 127.0.0.1
#   TAPIR_KAFKA_HEAP [768m]      JVM heap
#   TAPIR_KAFKA_START_TIMEOUT [120] seconds to wait for readiness
#   TAPIR_SERVICES_DIR [<repo>/.cache/services] run state (pid, config, log)
# Data lives in a fresh temporary directory removed by stop.sh. On failure
# the log is printed and kept in $TAPIR_SERVICES_DIR/kafka/kafka.log.
set -euo pipefail
name=kafka
# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/../lib.sh"
port=${TAPIR_KAFKA_PORT:-9092}
ctrl=${TAPIR_KAFKA_CTRL_PORT:-9093}
heap=${TAPIR_KAFKA_HEAP:-768m}
timeout=${TAPIR_KAFKA_START_TIMEOUT:-120}
jars=$root/.cache/jars/kafka

svc_exit_if_running
svc_prepare "$@"
[ $resume = 1 ] || cat >"$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data/logs
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
PROPS
cat >"$run/log4j2.properties" <<'PROPS'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
PROPS
java_opts=(-Xms256m "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -Djava.awt.headless=true "-Dlog4j2.configurationFile=$run/log4j2.properties"
  -cp "$jars/*")
# A KRaft node needs its storage formatted with a cluster id (22 characters
# of URL-safe base64 of 16 random bytes, what kafka-storage random-uuid prints).
# Like Kafka's own Uuid.randomUuid, draw again when the id starts with
# '-': the storage tool would read it as an option.
cluster_id=-
while [[ $cluster_id == -* ]]; do
  cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
done
if [ $resume = 0 ]; then
  java "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
    -c "$run/server.properties" >"$log" 2>&1 || {
    echo "kafka: storage format failed:" >&2; cat "$log" >&2; exit 1; }
fi
svc_launch java "${java_opts[@]}" kafka.Kafka "$run/server.properties"
svc_wait "$timeout" ready
echo "kafka: ready on 127.0.0.1:$port (TAPIR_KAFKA=127.0.0.1:$port)"
