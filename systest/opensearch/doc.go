// Package opensearch runs the real binaries (tapir-sensor,
// tapir-collector, tapir) against real Apache Kafka and a real OpenSearch
// node: shared captures streamed through a collector (embedded store)
// that publishes to Kafka and indexes the flows topic into OpenSearch
// (collector/searchindex). The tests check that every flow record is in
// the index exactly once per flow instance with its latest segment and the
// same content `tapir flows` prints; that searches by IP, SNI, JA4,
// country and ASN find the same flows as `tapir flows`; that the Community
// ID of a hit retrieves, with `tapir pcap`, exactly the flow's packets of
// the capture; and that Kafka and then OpenSearch stopped mid-replay lose
// and duplicate nothing.
//
// The tests need TAPIR_KAFKA and TAPIR_OPENSEARCH (set by make test) to
// say the services can run here; they then start a private Kafka and
// OpenSearch on free ports with deploy/kafka and deploy/opensearch (so
// stopping them does not disturb other packages). Without the variables
// they skip, or fail under TAPIR_REQUIRE_ALL=1. Country and ASN need the
// GeoIP/ASN files of make data ($TAPIR_DATA or .cache/data).
package opensearch
