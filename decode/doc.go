// Package decode turns one captured frame into what the sensor's flow
// table needs: the directional flow tuple (addresses, protocol, ports or
// ICMP type/code, VLAN IDs), TCP flags, IP fragment fields, the offsets of
// the layers inside the frame, and a status saying whether the frame was
// cut short, malformed or of a kind the decoder does not handle.
//
// Decode is a single pass over the bytes with explicit bounds checks. It
// never allocates and never panics, whatever the input: a frame cut short
// sets StatusTruncated and keeps every field that could be decoded before
// the cut.
//
// # Layers
//
// Link types: Ethernet, Linux cooked capture v1 and v2 (their protocol
// field), raw IP (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) and BSD
// NULL/LOOP (a 4-byte address family in either byte order; AF_INET=2,
// AF_INET6=24, 28 or 30). Any other link type sets StatusUnsupported.
//
// Over Ethernet: 802.1Q, 802.1ad and the old 0x9100 QinQ tag (the first
// two VLAN IDs are kept in Tuple.VLAN and Tuple.InnerVLAN, further tags are
// skipped; a VLAN ID of 0 is a priority tag and counts as untagged), MPLS
// label stacks (unicast and multicast; after the bottom of stack the
// payload is guessed from its first nibble: 4 is IPv4, 6 is IPv6, 0 is a
// pseudowire control word followed by an Ethernet frame; anything else is
// unsupported), and PPPoE sessions carrying IPv4 or IPv6. Other ethertypes
// (ARP, LLDP, loopback...) are reported in Packet.EtherType with
// StatusUnsupported; 802.3 length fields (LLC) likewise.
//
// IPv4 with options; IPv6 with hop-by-hop, routing, destination options,
// fragment, AH, mobility, HIP and shim6 extension headers (decoding stops
// at ESP and at "no next header"). When the IP length field is smaller
// than the frame, the rest is Ethernet padding and is ignored; when it is 0
// or larger than the captured bytes (GSO/TSO super-packets, jumbograms, or
// a snap length), the captured length is used and nothing is flagged.
//
// Fragments: the first fragment (offset 0) is decoded down to its ports;
// later fragments set IsFragment with FragOffset > 0, FragID and Proto,
// and carry no ports: the flow table resolves them by fragment ID.
//
// Transport: TCP (ports, flags, data offset), UDP, SCTP (ports), ICMP and
// ICMPv6 (Tuple.SrcPort is the type, Tuple.DstPort the code).
//
// # Tunnels
//
// The flow of a tunnelled packet is its OUTER header: VXLAN is reported as
// UDP between the tunnel endpoints, GRE and ERSPAN as IP protocol 47,
// IP-in-IP as protocol 4 and 6in4 as protocol 41. A passive tap sees the
// tunnel, and the pcap an investigator pulls by Community ID should be the
// tunnel's packets. The decoder does not look inside; L4Offset points at
// the encapsulated bytes for whoever wants to.
//
// # Counters
//
// Counters tallies what the decoder saw (per IP protocol, per ethertype,
// truncated, malformed, unsupported, fragments). Each capture worker owns
// one; Merge folds workers' counters together for export.
package decode
