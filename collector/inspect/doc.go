// Package inspect looks inside a flow's stored packets for the
// investigator console: a one-line summary per packet as Wireshark's Info
// column reads for the common protocols (summary.go), a per-layer
// breakdown of one packet (layers.go), and the conversation reassembled
// both ways as Wireshark's Follow TCP/UDP Stream shows it (follow.go,
// segment.go).
//
// It decodes only: reading the packets from the store, caps, roles and
// auditing belong to collector/api.
package inspect
