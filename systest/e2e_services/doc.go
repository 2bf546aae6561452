// Package e2eservices runs the real binaries (tapir-sensor,
// tapir-collector) against real Apache Kafka and Apache HBase: a shared
// capture streamed through a collector on the HBase store that publishes
// to Kafka, with Kafka stopped, HBase stopped, or the collector killed in
// the middle of the replay. Each test checks that the flows topic, read
// from the beginning by franz-go and by kcat, holds every flow record of
// the capture exactly once after dedupe by (flow id, segment), that each
// flow's pcap served from HBase holds all of its packets, and that the
// packets add up to tshark's count of the capture.
//
// The tests need TAPIR_KAFKA and TAPIR_HBASE_ZK (set by make test) to say
// the services can run here; the outage tests then start private Kafka and
// HBase instances on free ports with deploy/kafka and deploy/hbase (so
// stopping them does not disturb other packages' tests). Without the
// variables they skip, or fail under TAPIR_REQUIRE_ALL=1.
package e2eservices
