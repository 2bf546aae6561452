package flow

import (
	"encoding/hex"
	"strconv"
)

// The record encoder's plain path: most records a sensor writes carry no
// application metadata, timeline or tunnels, and building their ECS object
// (ToECS: the object, its address, ID, flag and slice fields, about ten
// allocations a record) cost as much as encoding it. appendPlain writes
// the bytes ToECS followed by ECS.AppendJSON writes for such a record,
// field for field in the same order; ecs_plain_test.go holds it to that.

// plainJSON reports whether appendPlain renders r: no object that only
// ToECS builds.
func (r *Record) plainJSON() bool {
	return r.App == nil && r.Timeline == nil && r.Enrichment == nil && r.Exported == nil && r.Tunnels.Len() == 0
}

// appendPlain appends r's ECS JSON for a record plainJSON accepts; false
// (and b unchanged) when a value needs the general path.
func (r *Record) appendPlain(b []byte) ([]byte, bool) {
	start := len(b)
	a := jsonAppender{b: b, ok: true}
	a.raw(`{"@timestamp":`)
	a.time(r.End.UTC())
	a.raw(`,"ecs":{"version":"` + ECSVersion + `"},"network":`)
	a.plainNetwork(r)
	a.raw(`,"source":`)
	a.plainEndpoint(r, &r.Tuple.Src, r.Tuple.SrcPort, &r.Source)
	a.raw(`,"destination":`)
	a.plainEndpoint(r, &r.Tuple.Dst, r.Tuple.DstPort, &r.Destination)
	a.raw(`,"event":`)
	a.plainEvent(r)
	a.raw(`,"tapir":`)
	a.plainTapir(r)
	a.raw(`,"observer":{`)
	first := true
	a.strField(&first, `"name":`, r.SensorID, true)
	if r.Interface != "" {
		a.key(&first, `"ingress":`)
		a.raw(`{"interface":{`)
		a.raw(`"name":`)
		a.str(r.Interface)
		a.raw(`}}`)
	}
	a.raw(`}}`)
	if !a.ok {
		return a.b[:start], false
	}
	return a.b, true
}

// plainNetwork writes network.* as ToECS fills it.
func (a *jsonAppender) plainNetwork(r *Record) {
	t := &r.Tuple
	a.b = append(a.b, '{')
	first := true
	a.strField(&first, `"community_id":`, r.CommunityID, true)
	typ := "ipv4"
	switch t.Family {
	case FamilyLink:
		typ = "link"
		a.key(&first, `"ethertype":"0x`)
		a.b = appendHex4(a.b, t.SrcPort)
		a.b = append(a.b, '"')
	default:
		if t.Family == FamilyIPv6 {
			typ = "ipv6"
		}
		a.strField(&first, `"transport":`, ProtoName(t.Proto), true)
		a.key(&first, `"iana_number":"`)
		a.b = strconv.AppendUint(a.b, uint64(t.Proto), 10)
		a.b = append(a.b, '"')
	}
	a.key(&first, `"type":"`)
	a.raw(typ)
	a.raw(`","packets":`)
	a.b = strconv.AppendUint(a.b, r.Source.Packets+r.Destination.Packets, 10)
	a.raw(`,"bytes":`)
	a.b = strconv.AppendUint(a.b, r.Source.Bytes+r.Destination.Bytes, 10)
	if t.VLAN != 0 {
		a.raw(`,"vlan":{"id":"`)
		a.b = strconv.AppendUint(a.b, uint64(t.VLAN), 10)
		a.raw(`"}`)
	}
	a.b = append(a.b, '}')
}

// plainEndpoint writes source.* or destination.* of one end (its
// address, port and counters).
func (a *jsonAppender) plainEndpoint(r *Record, addr *Addr, port uint16, d *DirStats) {
	t := &r.Tuple
	if t.Family == FamilyLink {
		a.raw(`{"mac":"`)
		a.b = appendMAC(a.b, addr)
	} else {
		a.raw(`{"ip":"`)
		a.b = addr.Netip(t.Family).AppendTo(a.b)
	}
	a.b = append(a.b, '"')
	if HasPorts(t.Proto) && port != 0 {
		a.raw(`,"port":`)
		a.b = strconv.AppendUint(a.b, uint64(port), 10)
	}
	a.raw(`,"packets":`)
	a.b = strconv.AppendUint(a.b, d.Packets, 10)
	a.raw(`,"bytes":`)
	a.b = strconv.AppendUint(a.b, d.Bytes, 10)
	a.b = append(a.b, '}')
}

// plainEvent writes event.*.
func (a *jsonAppender) plainEvent(r *Record) {
	a.raw(`{"kind":"event","category":["network"],"type":["connection",`)
	if r.Reason.Final() {
		a.raw(`"end"]`)
	} else {
		a.raw(`"info"]`)
	}
	a.raw(`,"start":`)
	a.time(r.Start.UTC())
	a.raw(`,"end":`)
	a.time(r.End.UTC())
	a.raw(`,"duration":`)
	a.b = strconv.AppendInt(a.b, r.End.Sub(r.Start).Nanoseconds(), 10)
	a.raw(`,"reason":`)
	a.str(r.Reason.String())
	a.b = append(a.b, '}')
}

// plainTapir writes tapir.*.
func (a *jsonAppender) plainTapir(r *Record) {
	t := &r.Tuple
	a.raw(`{"flow_id":"`)
	a.b = hex.AppendEncode(a.b, r.ID[:])
	a.raw(`","sensor_id":`)
	a.str(r.SensorID)
	a.raw(`,"segment":`)
	a.b = strconv.AppendUint(a.b, uint64(r.Segment), 10)
	a.raw(`,"final":`)
	a.b = strconv.AppendBool(a.b, r.Reason.Final())
	first := false
	a.uintField(&first, `"vlan":`, uint64(t.VLAN), true)
	a.uintField(&first, `"inner_vlan":`, uint64(t.InnerVLAN), true)
	a.raw(`,"source":`)
	a.plainTapirDir(&r.Source)
	a.raw(`,"destination":`)
	a.plainTapirDir(&r.Destination)
	a.uintField(&first, `"truncated_packets":`, r.Truncated, true)
	a.uintField(&first, `"budget_cut_packets":`, r.BudgetCut, true)
	if t.Proto == ProtoICMP || t.Proto == ProtoICMPv6 {
		a.raw(`,"icmp":{"type":`)
		a.b = strconv.AppendUint(a.b, uint64(t.SrcPort), 10)
		a.raw(`,"code":`)
		a.b = strconv.AppendUint(a.b, uint64(t.DstPort), 10)
		a.raw(`}`)
	}
	a.b = append(a.b, '}')
}

// plainTapirDir writes tapir.source or tapir.destination.
func (a *jsonAppender) plainTapirDir(d *DirStats) {
	a.b = append(a.b, '{')
	if d.TCPFlags != 0 {
		a.raw(`"tcp_flags":"`)
		a.b = appendTCPFlags(a.b, d.TCPFlags)
		a.raw(`",`)
	}
	a.raw(`"stored_packets":`)
	a.b = strconv.AppendUint(a.b, d.StoredPackets, 10)
	a.raw(`,"stored_bytes":`)
	a.b = strconv.AppendUint(a.b, d.StoredBytes, 10)
	a.b = append(a.b, '}')
}

// appendTCPFlags appends TCPFlagsString(f).
func appendTCPFlags(b []byte, f uint8) []byte {
	const letters = "FSRPAUEC"
	for i := 0; i < 8; i++ {
		if f&(1<<i) != 0 {
			b = append(b, letters[i])
		}
	}
	return b
}

// appendHex4 appends v as four lower-case hex digits (fmt's %04x).
func appendHex4(b []byte, v uint16) []byte {
	const digits = "0123456789abcdef"
	return append(b, digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15])
}

// appendMAC appends macECS(*a).
func appendMAC(b []byte, a *Addr) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < 6; i++ {
		if i > 0 {
			b = append(b, '-')
		}
		b = append(b, digits[a[i]>>4], digits[a[i]&15])
	}
	return b
}
