#!/usr/bin/env bash
# perf-compare.sh (make bench, with Kafka and HBase up): tapir's Kafka and
# HBase write paths beside Kafka's own producer benchmark, in the same run.
#
#  1. BenchmarkPublishFlows (collector/publish): flow records of a real
#     capture as ECS JSON, 1000 per PublishFlows call (one sensor batch),
#     each call waiting for Kafka's acks (zstd, acks=all, idempotent);
#     COUNT records in all. Reports flows/s and the mean record size.
#  2. kafka-producer-perf-test (org.apache.kafka.tools.ProducerPerformance
#     from the Kafka jars): COUNT records of that size, same settings
#     (acks=all, idempotence, zstd, linger 5 ms), to a topic with the same
#     partitions. Its records are random bytes (compress worse than JSON).
#  3. BenchmarkWrite (storage/hbase): sensor batches of real packet blocks
#     (zeek/ssh.pcap, 64 packets per block) to HBase, every row
#     acknowledged. Reports MB/s and blocks/s.
# Prints the figures and the ratio tapir / kafka-producer-perf-test.
#
# Environment: TAPIR_KAFKA (default 127.0.0.1:9092), TAPIR_HBASE_ZK
# (127.0.0.1:2181), COUNT (200000 records), HBASE_BATCHES (40).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
export TAPIR_KAFKA=${TAPIR_KAFKA:-127.0.0.1:9092}
export TAPIR_HBASE_ZK=${TAPIR_HBASE_ZK:-127.0.0.1:2181}
count=${COUNT:-200000}
batches=${HBASE_BATCHES:-40}
jars=$root/.cache/jars/kafka
"$here/fetch.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== go test -bench BenchmarkPublishFlows -benchtime $((count / 1000))x ./collector/publish" >&2
go test -run '^$' -bench '^BenchmarkPublishFlows$' -benchtime "$((count / 1000))x" ./collector/publish | tee "$out/publish.txt" >&2
flows_s=$(awk '/^BenchmarkPublishFlows/ {for (i = 1; i <= NF; i++) if ($i == "flows/s") print $(i-1)}' "$out/publish.txt")
rec_size=$(awk '/^BenchmarkPublishFlows/ {for (i = 1; i <= NF; i++) if ($i == "B/record") printf "%d", $(i-1)}' "$out/publish.txt")
[ -n "$flows_s" ] && [ -n "$rec_size" ] || { echo "publish benchmark failed" >&2; exit 1; }

cat >"$out/log4j2.properties" <<'PROPS'
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
appender.out.type = Console
appender.out.name = out
appender.out.target = SYSTEM_ERR
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = %p %m%n
PROPS
java_opts=(-Xmx512m "-Dlog4j2.configurationFile=$out/log4j2.properties" -cp "$jars/*")
topic=tapir-perf-$$-$RANDOM
java "${java_opts[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$TAPIR_KAFKA" \
  --create --topic "$topic" --partitions 6 --replication-factor 1 >/dev/null
echo "== kafka-producer-perf-test --num-records $count --record-size $rec_size (acks=all, idempotent, zstd, linger 5 ms)" >&2
java "${java_opts[@]}" org.apache.kafka.tools.ProducerPerformance --topic "$topic" \
  --num-records "$count" --record-size "$rec_size" --throughput -1 \
  --producer-props "bootstrap.servers=$TAPIR_KAFKA" acks=all enable.idempotence=true \
  compression.type=zstd linger.ms=5 | tee "$out/perf.txt" >&2
perf_s=$(awk '/records sent/ && /99.9th/ {for (i = 1; i <= NF; i++) if ($i == "records/sec") print $(i-1)}' "$out/perf.txt" | tail -1)
java "${java_opts[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$TAPIR_KAFKA" \
  --delete --topic "$topic" >/dev/null 2>&1 || true

echo "== go test -bench BenchmarkWrite -benchtime ${batches}x ./storage/hbase" >&2
go test -run '^$' -bench '^BenchmarkWrite$' -benchtime "${batches}x" ./storage/hbase | tee "$out/hbase.txt" >&2
hb_mb=$(awk '/^BenchmarkWrite/ {for (i = 1; i <= NF; i++) if ($i == "MB/s") print $(i-1)}' "$out/hbase.txt")
hb_blocks=$(awk '/^BenchmarkWrite/ {for (i = 1; i <= NF; i++) if ($i == "blocks/s") print $(i-1)}' "$out/hbase.txt")

echo
echo "Kafka and HBase, $(date -u '+%Y-%m-%d %H:%M UTC'), $count records of $rec_size bytes:"
printf '  tapir PublishFlows (ECS JSON, batches of 1000, acked)  %10.0f flows/s\n' "$flows_s"
printf '  kafka-producer-perf-test (same count and size)          %10.0f records/s\n' "${perf_s%.*}"
awk -v a="$flows_s" -v b="${perf_s:-0}" 'BEGIN { if (b > 0) printf "  ratio tapir / kafka-producer-perf-test                  %10.2f\n", a / b }'
printf '  tapir HBase block writes (acked)                        %10s MB/s, %s blocks/s\n' "$hb_mb" "$hb_blocks"
