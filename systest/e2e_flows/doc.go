// Package e2eflows tests the collector's flow input and the sensor's
// IPFIX exporter against real peers from Debian: softflowd exports
// NetFlow v5, v9 and IPFIX from the shared captures to both tapir and
// nfcapd, and nfdump's reading of nfcapd's files is the oracle; the
// sensor exports IPFIX to nfcapd, and nfdump's view must equal the
// sensor's own flow records. Everything runs on 127.0.0.1.
package e2eflows
