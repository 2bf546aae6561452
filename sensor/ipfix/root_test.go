package ipfix

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/ipfix/ipfixtest"
)

// key of an element in a decoded data record: pen<<16 | id.
func ek(pen uint32, id uint16) uint64 { return uint64(pen)<<16 | uint64(id) }

// decodedMsg is one message as goflow2's IPFIX decoder (an independent
// implementation) and a walk over its set headers see it.
type decodedMsg struct {
	hdr       netflow.IPFIXPacket
	templates bool // carries a template set
	records   []map[uint64][]byte
}

// decodeMessages decodes every datagram in order with one goflow2 template
// system, failing on any decode error or template miss.
func decodeMessages(t *testing.T, dgs [][]byte) []decodedMsg {
	t.Helper()
	ts := netflow.CreateTemplateSystem()
	var out []decodedMsg
	for i, dg := range dgs {
		var m decodedMsg
		var v9 netflow.NFv9Packet
		if err := netflow.DecodeMessageVersion(bytes.NewBuffer(dg), ts, &v9, &m.hdr); err != nil {
			t.Fatalf("message %d: goflow2: %v", i, err)
		}
		// Walk the sets by hand: they must tile the message exactly.
		off := headerLen
		for off < len(dg) {
			if off+setHeaderLen > len(dg) {
				t.Fatalf("message %d: set header past the end", i)
			}
			id, l := binary.BigEndian.Uint16(dg[off:]), int(binary.BigEndian.Uint16(dg[off+2:]))
			if l < setHeaderLen || off+l > len(dg) {
				t.Fatalf("message %d: set %d length %d at %d of %d", i, id, l, off, len(dg))
			}
			switch id {
			case setTemplate:
				m.templates = true
			case TemplateIPv4, TemplateIPv6:
			default:
				t.Fatalf("message %d: unexpected set id %d", i, id)
			}
			off += l
		}
		for _, s := range m.hdr.FlowSets {
			switch fs := s.(type) {
			case netflow.DataFlowSet:
				for _, r := range fs.Records {
					vals := map[uint64][]byte{}
					for _, f := range r.Values {
						var pen uint32
						if f.PenProvided {
							pen = f.Pen
						}
						vals[ek(pen, f.Type)] = f.Value.([]byte)
					}
					m.records = append(m.records, vals)
				}
			case netflow.RawFlowSet:
				t.Fatalf("message %d: set %d decoded without a template", i, fs.Id)
			}
		}
		out = append(out, m)
	}
	return out
}

func be(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// checkRecord compares a decoded data record with the flow record it came from.
func checkRecord(t *testing.T, r *flow.Record, v map[uint64][]byte, pen uint32) {
	t.Helper()
	tp := &r.Tuple
	src, dst := v[ek(0, ieSourceIPv4Address)], v[ek(0, ieDestinationIPv4Address)]
	if tp.Family == flow.FamilyIPv6 {
		src, dst = v[ek(0, ieSourceIPv6Address)], v[ek(0, ieDestinationIPv6Address)]
	}
	sa, _ := netip.AddrFromSlice(src)
	da, _ := netip.AddrFromSlice(dst)
	sp, dp := tp.SrcPort, tp.DstPort
	if tp.Proto == flow.ProtoICMP || tp.Proto == flow.ProtoICMPv6 {
		sp, dp = 0, tp.SrcPort<<8|tp.DstPort
	}
	type rec struct {
		Src, Dst                 netip.Addr
		SP, DP                   uint64
		Proto                    uint64
		Pkts, Octs, RPkts, ROcts uint64
		Flags, RFlags, VLAN      uint64
		Start, End, Reason       uint64
		CID                      string
		ID                       string
	}
	got := rec{sa, da, be(v[ek(0, ieSourceTransportPort)]), be(v[ek(0, ieDestinationTransportPrt)]),
		be(v[ek(0, ieProtocolIdentifier)]),
		be(v[ek(0, iePacketDeltaCount)]), be(v[ek(0, ieOctetDeltaCount)]),
		be(v[ek(reversePEN, iePacketDeltaCount)]), be(v[ek(reversePEN, ieOctetDeltaCount)]),
		be(v[ek(0, ieTCPControlBits)]), be(v[ek(reversePEN, ieTCPControlBits)]), be(v[ek(0, ieVLANID)]),
		be(v[ek(0, ieFlowStartMilliseconds)]), be(v[ek(0, ieFlowEndMilliseconds)]), be(v[ek(0, ieFlowEndReason)]),
		string(v[ek(pen, IECommunityID)]), string(v[ek(pen, IEFlowID)])}
	want := rec{tp.Src.Netip(tp.Family), tp.Dst.Netip(tp.Family), uint64(sp), uint64(dp), uint64(tp.Proto),
		r.Source.Packets, r.Source.Bytes, r.Destination.Packets, r.Destination.Bytes,
		uint64(r.Source.TCPFlags), uint64(r.Destination.TCPFlags), uint64(tp.VLAN),
		uint64(r.Start.UnixMilli()), uint64(r.End.UnixMilli()), uint64(EndReason(r.Reason)),
		r.CommunityID, string(r.ID[:])}
	if got != want {
		t.Errorf("flow %s:\n got %+v\nwant %+v", r.ID, got, want)
	}
}

// TestMessages exports the final records of real captures through a UDP
// socket and decodes the datagrams with goflow2: every record comes back
// with the same 5-tuple, counters, timestamps, flags, end reason and
// enterprise elements (Community ID, flow id); messages stay within the
// MTU; sequence numbers count the data records sent before each message;
// templates go out in the first message and every TemplateRefreshMessages
// messages after it.
func TestMessages(t *testing.T) {
	for _, rel := range ipfixtest.Captures {
		t.Run(rel, func(t *testing.T) {
			recs := ipfixtest.Finals(ipfixtest.SensorRecords(t, rel))
			u := ipfixtest.ListenUDP(t)
			cfg := DefaultConfig()
			cfg.Collector, cfg.MTU, cfg.TemplateRefreshMessages, cfg.ObservationDomain = u.Addr(), minMTU, 3, 4242
			cfg.EnterpriseNumber = 64999
			cfg.FlushInterval = time.Hour // only full messages, then Stop's flush
			now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
			x, err := New(cfg, Dependencies{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Start(); err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				if err := x.AddRecord(&recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := x.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := x.Stop(); err != nil {
				t.Fatalf("second Stop: %v", err)
			}
			st := x.Stats()
			dgs := u.Datagrams(st.Messages)
			if st.Records != uint64(len(recs)) || st.Messages != uint64(len(dgs)) || st.SendErrors+st.DroppedMessages != 0 {
				t.Fatalf("stats %+v for %d records, %d datagrams", st, len(recs), len(dgs))
			}
			msgs := decodeMessages(t, dgs)
			var seq uint32
			byID := map[string]map[uint64][]byte{}
			for i, m := range msgs {
				h := m.hdr
				if len(dgs[i]) > cfg.MTU || int(h.Length) != len(dgs[i]) || h.Version != 10 ||
					h.ObservationDomainId != 4242 || h.ExportTime != uint32(now.Unix()) {
					t.Fatalf("message %d: %d bytes, header %+v", i, len(dgs[i]), h)
				}
				if h.SequenceNumber != seq {
					t.Fatalf("message %d: sequence number %d, want %d", i, h.SequenceNumber, seq)
				}
				seq += uint32(len(m.records))
				if want := i%cfg.TemplateRefreshMessages == 0; m.templates != want {
					t.Errorf("message %d: templates %v, want %v", i, m.templates, want)
				}
				if len(m.records) == 0 {
					t.Errorf("message %d carries no data record", i)
				}
				for _, v := range m.records {
					byID[string(v[ek(cfg.EnterpriseNumber, IEFlowID)])] = v
				}
			}
			if seq != st.SequenceNumber || int(seq) != len(recs) || len(byID) != len(recs) {
				t.Fatalf("%d data records decoded (%d distinct), %d sent, sequence %d", seq, len(byID), len(recs), st.SequenceNumber)
			}
			for i := range recs {
				checkRecord(t, &recs[i], byID[string(recs[i].ID[:])], cfg.EnterpriseNumber)
			}
			t.Logf("%d records in %d messages (%d bytes)", len(recs), len(dgs), st.Bytes)
		})
	}
}

// TestTemplateRefreshByTime: with message refresh off, templates go out in
// the first message and again once TemplateRefresh has passed.
func TestTemplateRefreshByTime(t *testing.T) {
	recs := ipfixtest.Finals(ipfixtest.SensorRecords(t, "zeek/ssh.pcap"))
	cfg := DefaultConfig()
	cfg.TemplateRefreshMessages, cfg.TemplateRefresh = 0, 10*time.Second
	e := newEncoder(&cfg, func() []byte { return nil })
	t0 := time.Unix(1_700_000_000, 0)
	var got []bool
	for i, at := range []time.Duration{0, 5 * time.Second, 9 * time.Second, 10 * time.Second, 15 * time.Second, 25 * time.Second} {
		now := t0.Add(at)
		if full := e.add(&values{t: &recs[i].Tuple, cid: recs[i].CommunityID}, now); full != nil {
			t.Fatal("one record filled a message")
		}
		m := e.finish(now)
		got = append(got, binary.BigEndian.Uint16(m[headerLen:]) == setTemplate)
		if seq := binary.BigEndian.Uint32(m[8:]); seq != uint32(i) {
			t.Errorf("message %d: sequence %d", i, seq)
		}
	}
	want := []bool{true, false, false, true, false, true}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("templates per message %v, want %v", got, want)
			break
		}
	}
}

// TestUpdates: updates are skipped by default; with ExportUpdates they
// go out as deltas, so the reports of a flow add up to its final record.
func TestUpdates(t *testing.T) {
	recs := ipfixtest.Finals(ipfixtest.SensorRecords(t, "zeek/ssh.pcap"))
	for _, export := range []bool{false, true} {
		u := ipfixtest.ListenUDP(t)
		cfg := DefaultConfig()
		cfg.Collector, cfg.ExportUpdates = u.Addr(), export
		x, err := New(cfg, Dependencies{})
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Start(); err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			// An update at half the final counts, then the final record.
			up := recs[i]
			up.Reason = flow.ReasonActive
			up.Source.Packets, up.Source.Bytes = up.Source.Packets/2, up.Source.Bytes/2
			up.Destination.Packets, up.Destination.Bytes = up.Destination.Packets/2, up.Destination.Bytes/2
			if err := x.AddRecord(&up); err != nil {
				t.Fatal(err)
			}
			if err := x.AddRecord(&recs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := x.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := x.AddRecord(&recs[0]); err != ErrStopped {
			t.Errorf("AddRecord after Stop: %v", err)
		}
		st := x.Stats()
		msgs := decodeMessages(t, u.Datagrams(st.Messages))
		sum := map[string][4]uint64{}
		n := 0
		for _, m := range msgs {
			for _, v := range m.records {
				n++
				id := string(v[ek(DocumentationPEN, IEFlowID)])
				s := sum[id]
				s[0] += be(v[ek(0, iePacketDeltaCount)])
				s[1] += be(v[ek(0, ieOctetDeltaCount)])
				s[2] += be(v[ek(reversePEN, iePacketDeltaCount)])
				s[3] += be(v[ek(reversePEN, ieOctetDeltaCount)])
				sum[id] = s
			}
		}
		want := len(recs)
		if export {
			want *= 2
		}
		if n != want {
			t.Fatalf("export_updates %v: %d data records, want %d", export, n, want)
		}
		for i := range recs {
			r := &recs[i]
			if s := sum[string(r.ID[:])]; s != [4]uint64{r.Source.Packets, r.Source.Bytes, r.Destination.Packets, r.Destination.Bytes} {
				t.Errorf("export_updates %v: flow %s sums to %v", export, r.ID, s)
			}
		}
	}
}
