package flowinput

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/flow"
)

// v5Datagram crafts a NetFlow v5 datagram with one TCP record.
func v5Datagram(seq uint32, exportSecs, uptime, first, last uint32) []byte {
	b := make([]byte, 24+48)
	be := binary.BigEndian
	be.PutUint16(b[0:], 5)
	be.PutUint16(b[2:], 1)
	be.PutUint32(b[4:], uptime)
	be.PutUint32(b[8:], exportSecs)
	be.PutUint32(b[16:], seq)
	r := b[24:]
	copy(r[0:], []byte{192, 0, 2, 1})
	copy(r[4:], []byte{198, 51, 100, 2})
	be.PutUint32(r[16:], 3)   // packets
	be.PutUint32(r[20:], 180) // bytes
	be.PutUint32(r[24:], first)
	be.PutUint32(r[28:], last)
	be.PutUint16(r[32:], 40000)
	be.PutUint16(r[34:], 443)
	r[38] = flow.ProtoTCP
	return b
}

// v9Record is one NetFlow v9 data record of the crafted template.
type v9Record struct {
	first, last uint32 // FIRST/LAST_SWITCHED, sysUpTime ms
	sport       uint16
}

// v9Datagram crafts a NetFlow v9 datagram (source id 1) holding the
// template 256 (IPv4 addresses, ports, protocol, packets, bytes,
// FIRST/LAST_SWITCHED) and a data set of recs.
func v9Datagram(seq, exportSecs, uptime uint32, recs ...v9Record) []byte {
	be := binary.BigEndian
	fields := [][2]uint16{{ieSrcIPv4, 4}, {ieDstIPv4, 4}, {ieSrcPort, 2}, {ieDstPort, 2}, {ieProtocol, 1},
		{iePacketDelta, 4}, {ieOctetDelta, 4}, {ieStartSysUp, 4}, {ieEndSysUp, 4}}
	var tmpl []byte
	tmpl = be.AppendUint16(tmpl, 0)
	tmpl = be.AppendUint16(tmpl, uint16(4+4+4*len(fields)))
	tmpl = be.AppendUint16(tmpl, 256)
	tmpl = be.AppendUint16(tmpl, uint16(len(fields)))
	for _, f := range fields {
		tmpl = be.AppendUint16(tmpl, f[0])
		tmpl = be.AppendUint16(tmpl, f[1])
	}
	var data []byte
	for _, r := range recs {
		data = append(data, 192, 0, 2, 1, 198, 51, 100, 2)
		data = be.AppendUint16(data, r.sport)
		data = be.AppendUint16(data, 53)
		data = append(data, flow.ProtoUDP)
		data = be.AppendUint32(data, 2)
		data = be.AppendUint32(data, 150)
		data = be.AppendUint32(data, r.first)
		data = be.AppendUint32(data, r.last)
	}
	for len(data)%4 != 0 {
		data = append(data, 0)
	}
	set := be.AppendUint16(nil, 256)
	set = be.AppendUint16(set, uint16(4+len(data)))
	set = append(set, data...)
	var b []byte
	b = be.AppendUint16(b, 9)
	b = be.AppendUint16(b, uint16(1+len(recs)))
	b = be.AppendUint32(b, uptime)
	b = be.AppendUint32(b, exportSecs)
	b = be.AppendUint32(b, seq)
	b = be.AppendUint32(b, 1)
	b = append(b, tmpl...)
	return append(b, set...)
}

// counterValue sums the samples of a counter family in reg whose label
// has the value (any label when label is "").
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if label == "" || lp.GetName() == label && lp.GetValue() == value {
					sum += m.GetCounter().GetValue()
					break
				}
			}
		}
	}
	return sum
}

// syncBuffer is a bytes.Buffer safe for concurrent use (a log sink).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startTestInput starts an Input on 127.0.0.1:0 (NetFlow only) with its
// own registry and log.
func startTestInput(t *testing.T, edit func(*Config)) (*Input, *prometheus.Registry, *syncBuffer, *net.UDPAddr) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Enabled, cfg.NetFlow, cfg.IPFIX, cfg.SFlow, cfg.TemplatesFile = true, "127.0.0.1:0", "", "", "-"
	cfg.FlushInterval = 20 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	reg := prometheus.NewRegistry()
	log := &syncBuffer{}
	in, err := New(cfg, Dependencies{Registerer: reg, Logger: slog.New(slog.NewTextHandler(log, nil)),
		Deliver: func(context.Context, Batch) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return in, reg, log, in.Addrs()[0].(*net.UDPAddr)
}

// sendFrom sends datagrams to dst from a socket bound to src.
func sendFrom(t *testing.T, src string, dst *net.UDPAddr, dgs ...[]byte) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(src)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range dgs {
		if _, err := c.WriteToUDP(d, dst); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTooManyExportersCounted: with max_exporters 1, datagrams from a
// second exporter address are dropped, counted in
// tapir_flow_input_datagrams_dropped_total{reason="too_many_exporters"}
// and logged; the first exporter's records still flow.
func TestTooManyExportersCounted(t *testing.T) {
	in, reg, log, addr := startTestInput(t, func(c *Config) { c.MaxExporters = 1 })
	dg := v5Datagram(1, 1_700_000_000, 10_000, 9_000, 9_500)
	sendFrom(t, "127.0.0.1", addr, dg)
	eventually(t, "the first exporter", func() bool { return in.Stats()["127.0.0.1"].Records == 1 })
	sendFrom(t, "127.0.0.2", addr, dg, dg, dg)
	eventually(t, "the drop counter", func() bool {
		return counterValue(t, reg, "tapir_flow_input_datagrams_dropped_total", "reason", "too_many_exporters") == 3
	})
	if in.Decoder().Overflow() != 3 || len(in.Stats()) != 1 {
		t.Fatalf("overflow %d, exporters %v", in.Decoder().Overflow(), in.Stats())
	}
	eventually(t, "the warning", func() bool { return strings.Contains(log.String(), "too many exporters") })
	if n := strings.Count(log.String(), "too many exporters"); n != 1 {
		t.Errorf("warning logged %d times, want once (rate-limited)", n)
	}
}

// TestSequenceGapsBounded: NetFlow v9 sequence numbers 10, 11, then a
// jump of 2^29, then backwards, then a gap of 3. Only the 3 are gaps; the
// jump and the step back are resets (before, the jump alone added 2^29).
func TestSequenceGapsBounded(t *testing.T) {
	d := testDecoder()
	const exp, up = 1_700_000_000, 50_000
	for _, seq := range []uint32{10, 11, 11 + 1<<29, 12 + 1<<29, 5, 6, 10, 11} {
		if _, err := d.Decode(loopback, ProtoNetFlow, v9Datagram(seq, exp, up, v9Record{40_000, 45_000, 1000}), time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	}
	st := d.Stats()["127.0.0.1"]
	if st.SequenceGaps != 3 || st.SequenceResets != 2 {
		t.Fatalf("gaps %d, resets %d; want 3 and 2", st.SequenceGaps, st.SequenceResets)
	}
	// One datagram can add at most maxSeqGap.
	d = testDecoder()
	for _, seq := range []uint32{1, 2 + maxSeqGap, 3 + 2*maxSeqGap + 1} {
		if _, err := d.Decode(loopback, ProtoNetFlow, v5Datagram(seq, exp, up, 1, 2), time.Now(), nil); err != nil {
			t.Fatalf("v5 seq %d: %v", seq, err)
		}
	}
	if st := d.Stats()["127.0.0.1"]; st.SequenceGaps != maxSeqGap || st.SequenceResets != 1 {
		t.Fatalf("v5: gaps %d, resets %d; want %d and 1", st.SequenceGaps, st.SequenceResets, maxSeqGap)
	}
}

// TestNetFlowV9TimesAsNfdump: First/Last Switched are read as nfdump
// reads them: boot = export time - header sysUpTime; end = boot + Last
// even when Last is past the header's uptime (the exporter stamped the
// header before the flow's last packet); start = boot + First, 2^32 ms
// earlier only when First > Last. Before, a Last past the uptime put the
// end 2^32 ms (49.7 days) before the export.
func TestNetFlowV9TimesAsNfdump(t *testing.T) {
	const exp, up = 1_700_000_000, 1_000_000
	boot := int64(exp)*1000 - up
	for _, tc := range []struct {
		name        string
		first, last uint32
		start, end  int64 // Unix ms
	}{
		{"before uptime", 990_000, 999_000, boot + 990_000, boot + 999_000},
		{"last past uptime", 999_000, 1_000_500, boot + 999_000, boot + 1_000_500},
		{"both past uptime", 1_000_200, 1_000_700, boot + 1_000_200, boot + 1_000_700},
		{"counter wrapped in the flow", 1<<32 - 1000, 500, boot - 1000, boot + 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDecoder()
			out, err := d.Decode(loopback, ProtoNetFlow, v9Datagram(1, exp, up, v9Record{tc.first, tc.last, 1000}), time.Now(), nil)
			if err != nil || len(out) != 1 {
				t.Fatalf("%d records, %v", len(out), err)
			}
			r := &out[0]
			if r.Start.UnixMilli() != tc.start || r.End.UnixMilli() != tc.end {
				t.Fatalf("start %v end %v; want %v %v", r.Start, r.End, time.UnixMilli(tc.start).UTC(), time.UnixMilli(tc.end).UTC())
			}
		})
	}
}

// TestNetFlowV5TimesAsNfdump: NetFlow v5 First/Last are read as nfdump
// reads them: boot = export time - header uptime; First 2^32 ms earlier
// when above Last; both 2^32 ms earlier when Last is more than 100 s past
// the uptime. Before, a Last a moment past the uptime put the end 49.7
// days before the export.
func TestNetFlowV5TimesAsNfdump(t *testing.T) {
	const exp = 1_700_000_000
	for _, tc := range []struct {
		name                string
		uptime, first, last uint32
		start, end          int64 // ms after boot
	}{
		{"before uptime", 1_000_000, 990_000, 999_000, 990_000, 999_000},
		{"last past uptime", 1_000_000, 999_000, 1_000_500, 999_000, 1_000_500},
		{"counter wrapped in the flow", 1_000_000, 1<<32 - 1000, 500, -1000, 500},
		{"flow from before the wrap", 1000, 1<<32 - 5000, 1<<32 - 2000, -5000, -2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot := int64(exp)*1000 - int64(tc.uptime)
			out, err := testDecoder().Decode(loopback, ProtoNetFlow, v5Datagram(1, exp, tc.uptime, tc.first, tc.last), time.Now(), nil)
			if err != nil || len(out) != 1 {
				t.Fatalf("%d records, %v", len(out), err)
			}
			if r := &out[0]; r.Start.UnixMilli() != boot+tc.start || r.End.UnixMilli() != boot+tc.end {
				t.Fatalf("start %v end %v; want %v %v", r.Start, r.End, time.UnixMilli(boot+tc.start).UTC(), time.UnixMilli(boot+tc.end).UTC())
			}
		})
	}
}

// TestIPFIXSystemInitTime: softflowd's IPFIX flows carry
// flowStart/EndSysUpTime and, in an options record,
// systemInitTimeMilliseconds (IE 160): the records' times are init +
// uptime, so flows have their real durations (before: start = end =
// export time for every flow).
func TestIPFIXSystemInitTime(t *testing.T) {
	d := testDecoder()
	var recs []flow.Record
	for _, dg := range recorded(t, "softflowd-echo-v10.bin") {
		var err error
		if recs, err = d.Decode(loopback, ProtoNetFlow, dg, time.Now(), recs); err != nil {
			t.Fatal(err)
		}
	}
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	long := 0
	for i := range recs {
		r := &recs[i]
		if r.End.Before(r.Start) {
			t.Fatalf("record %d ends before it starts: %v %v", i, r.Start, r.End)
		}
		if r.End.Sub(r.Start) > 0 {
			long++
		}
	}
	if long == 0 {
		t.Fatalf("every one of %d records has duration 0", len(recs))
	}
	t.Logf("%d of %d records with a duration", long, len(recs))
}

// TestDuplicateListenerAddress: two listeners on one address are a
// configuration error, not silently merged; port 0 and distinct
// addresses are fine.
func TestDuplicateListenerAddress(t *testing.T) {
	for _, tc := range []struct {
		netflow, ipfix, sflow string
		bad                   bool
	}{
		{":2055", ":4739", ":2055", true},
		{":2055", ":2055", "", true},
		{"0.0.0.0:6343", "", "127.0.0.1:6343", true},
		{"127.0.0.1:2055", "", "[::1]:2055", false},
		{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", false},
		{":2055", ":4739", ":6343", false},
	} {
		c := DefaultConfig()
		c.Enabled, c.NetFlow, c.IPFIX, c.SFlow = true, tc.netflow, tc.ipfix, tc.sflow
		err := c.Validate()
		if tc.bad != (err != nil) {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), "same address") {
			t.Errorf("%+v: unclear error %v", tc, err)
		}
	}
}

// udpDrops returns the kernel's drop count of the UDP socket bound to
// 127.0.0.1:port, from /proc/net/udp.
func udpDrops(t *testing.T, port int) uint64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Skipf("no /proc/net/udp: %v", err)
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) > 12 && f[1] == want {
			n, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
			return n
		}
	}
	t.Fatalf("socket 127.0.0.1:%d not in /proc/net/udp", port)
	return 0
}

// TestSocketDropsExported: with a tiny receive buffer and the reader
// held up, a burst overflows the socket; the kernel's drop count reaches
// tapir_flow_input_socket_drops_total{listener="netflow"} and equals
// /proc/net/udp's.
func TestSocketDropsExported(t *testing.T) {
	in, reg, log, addr := startTestInput(t, func(c *Config) { c.ReadBuffer = 4096 })
	dg := v5Datagram(1, 1_700_000_000, 10_000, 9_000, 9_500)
	in.mu.Lock() // the reader blocks in add after its first datagram
	burst := make([][]byte, 400)
	for i := range burst {
		burst[i] = v5Datagram(uint32(i+1), 1_700_000_000, 10_000, 9_000, 9_500)
	}
	sendFrom(t, "127.0.0.1", addr, burst...)
	time.Sleep(100 * time.Millisecond)
	in.mu.Unlock()
	// The drop count rides on datagrams queued after the drops: send one
	// more until the reader has drained the burst and seen it.
	var kernel uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		sendFrom(t, "127.0.0.1", addr, dg)
		time.Sleep(20 * time.Millisecond)
		kernel = udpDrops(t, addr.Port)
		got := counterValue(t, reg, "tapir_flow_input_socket_drops_total", "listener", "netflow")
		if kernel > 0 && got == float64(kernel) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket drops metric %v, kernel %d", got, kernel)
		}
	}
	if !strings.Contains(log.String(), "dropped datagrams") {
		t.Errorf("no warning logged: %s", log.String())
	}
	t.Logf("kernel dropped %d datagrams; exported", kernel)
}

// TestFlowIDsDifferAfterRestart: a collector restart (a new decoder)
// that receives records with the same start times as before (a long
// flow's repeated reports) gives them new IDs. Before, the counter
// started from the clock in microseconds, so a decoder made right after
// another reused its counters.
func TestFlowIDsDifferAfterRestart(t *testing.T) {
	before, after := testDecoder(), testDecoder()
	dg := v5Datagram(1, 1_700_000_000, 10_000, 9_000, 9_500)
	ids := map[flow.ID]bool{}
	for i := 0; i < 5000; i++ {
		out, _ := before.Decode(loopback, ProtoNetFlow, dg, time.Now(), nil)
		ids[out[0].ID] = true
	}
	for i := 0; i < 10; i++ {
		out, _ := after.Decode(netip.MustParseAddr("127.0.0.1"), ProtoNetFlow, dg, time.Now(), nil)
		if ids[out[0].ID] {
			t.Fatalf("flow id %s given before the restart too", out[0].ID)
		}
	}
}
