// Package appmeta extracts application metadata at the sensor: DNS (UDP
// and TCP), TLS ClientHello/ServerHello (SNI, ALPN, versions,
// cipher, JA4, JA3), HTTP/1.x request and response heads, and SSH
// identification strings. It fills flow.AppMeta once per flow. QUIC
// Initial decryption is not implemented: QUIC flows get no metadata.
//
// Work is bounded: only the first Config.MaxPackets payload packets of
// each direction of a flow are looked at, TCP payload is reassembled in
// order only and only up to Config.MaxBytes per direction (the first
// flight), and a flow whose metadata is complete (or cannot be had) costs
// nothing more. Per-flow state (Flow) is allocated only for flows that
// carry payload; reassembly buffers come from a per-Extractor pool and go
// back to it when the flow is done.
//
// An Extractor belongs to one sensor worker and is not safe for
// concurrent use; the parsers (ParseDNS, ParseClientHello, ...) are pure
// functions safe for concurrent use.
package appmeta
