// Package e2e holds end-to-end tests of tapir's sensor → collector →
// retrieval chain, run against the real binaries (tapir-sensor,
// tapir-collector and tapir) built once per test run into a temporary
// directory. The tests drive them exactly as an operator would
// (deploy/demo.sh shows the wiring): a development CA from `tapir certs`,
// a collector YAML configuration with a tokens file, sensors reading the
// shared captures and streaming over mutual TLS, and `tapir flows`,
// `tapir pcap` and `tapir sensors` against the collector's API. Expected
// results come from tshark, tcpdump and capinfos on the original captures
// and from offline sensor runs.
//
// The package has no non-test code.
package e2e
