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
// Decode takes tunnels apart, without allocating, nested up to
// Options.TunnelDepth levels (DefaultTunnelDepth, 4; at most MaxTunnels):
// IP-in-IP (IP protocols 4 and 41 over IPv4 or IPv6: 4in4, 6in4, 4in6,
// 6in6), GRE version 0 (checksum, key and sequence number; carrying IP,
// MPLS or, with 0x6558, an Ethernet frame), ERSPAN type I (GRE 0x88be
// without a sequence number), II (0x88be) and III (0x22eb, with its
// optional subheader; Ethernet or IP frame types), and over UDP, on
// either port (as tshark), VXLAN (4789), Geneve (6081, options skipped by
// length), GTP-U G-PDUs (2152, extension headers walked) and Teredo
// (3544, authentication and origin indications skipped). The ports are
// Options fields. VLAN tags and MPLS labels inside a tunnel are walked as
// outside it: Tuple.VLAN and InnerVLAN keep the first two VLAN IDs of the
// whole frame.
//
// The packet's Tuple, offsets, fragment fields and TCP flags are those
// of the innermost connection, the one Zeek, Suricata, Arkime and
// tshark's Community ID key on, so the flow table, the stored blocks (the
// whole frame, as captured, in the inner flow) and the Community ID
// follow it with no change. Packet.Tunnels[:NTunnels] records the chain,
// outermost first, as flow.Tunnel values (type, the tunnel's own
// addresses, protocol and UDP ports, and its VNI, GRE key, ERSPAN session
// ID or TEID); Packet.Outer is the outermost header's tuple.
//
// Three cases stay on a tunnel's own connection, flagged and counted: a
// tunnel whose payload holds no complete IP header (ARP or CDP over
// VXLAN or ERSPAN, a frame cut short; OpaqueTunnel, with the truncation
// kept), a tunnel nested below the configured depth (TunnelDepthHit), and
// a tunnel whose outer IP packet is a fragment (TunnelFragment: first and
// later fragments alike, since taking only the first apart would split
// the datagram between two flows; reassembly is not done).
//
// # Mirror interfaces
//
// Options.Mirror declares the source a mirror interface (cloud traffic
// mirroring's VXLAN, a remote SPAN's ERSPAN or GRE, Geneve): an
// outermost tunnel level of that type (any ERSPAN type for an ERSPAN
// mirror; for VXLAN and Geneve, on Mirror.Port besides the Options
// ports) is stripped whatever TunnelDepth, which then counts the levels
// inside it. The level stays Tunnels[0], with flow.Tunnel.Mirror set, and
// Packet.MirrorLevels is 1: consumers that account a tunnel's own flow
// (the outer flow record) must skip Tunnels[:MirrorLevels], the mirror
// being how the traffic reached the sensor, not a tunnel of the mirrored
// network. To keep mirror sources apart, Tuple.InnerVLAN (the flow key's
// second VLAN slot) is MirrorKey of the mirror's VNI or session ID, a
// value from 4096 up that no VLAN ID takes, and Tuple.Mirror the whole
// identifier, so that VNIs or GRE keys MirrorKey folds together still
// make distinct flow keys. A mirrored frame that is not
// IP (ARP) keeps the mirror stripped too: HasTuple is false, EtherType is
// the mirrored frame's and LinkOffset where it starts.
//
// Design for what follows (tunnel fields in the flow record, the tunnel's
// own flow, mirror mode): the chain is a fixed array of values with no
// pointers, so a Packet stays a plain value a worker reuses, and a flow
// record can copy the chain of its first packet as Zeek's tunnel parents
// (each level's type, addresses and identifier become ECS-style fields).
// Each level holds a complete tuple of the tunnel's own connection
// (flow.Tunnel.Tuple), so the flow table can account the tunnel itself
// on that tuple beside the inner flow (bytes on the wire versus inner
// bytes from L3Offset), and a mirror mode can drop the outermost level
// (AWS and Azure VXLAN, remote SPAN ERSPAN) while keeping its VNI or
// session ID in the key to keep mirror sources apart. Tunnels do not
// change Tuple's layout, so flow keys, storage row keys and the eBPF
// flow map keep theirs.
//
// # Counters
//
// Counters tallies what the decoder saw (per IP protocol, per ethertype,
// truncated, malformed, unsupported, fragments, tunnel levels per type
// and depth, depth-limit hits, fragmented and opaque tunnels). Each capture worker owns
// one; Merge folds workers' counters together for export.
package decode
