package recordcodec_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/proto/tapirv1"
	"github.com/tapir-sensor/tapir/storage/recordcodec"
)

var update = flag.Bool("update", false, "rewrite the golden value of the current version and the fuzz seeds")

// legacy is how every store wrote records before this package: the wire
// message, marshalled.
func legacy(tb testing.TB, r *flow.Record) []byte {
	tb.Helper()
	b, err := proto.Marshal(tapirv1.FromRecord(r, nil))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestRoundTripRealRecords stores the records of real captures and
// expects each back unchanged, field for field (timelines included, so
// their points decode the same).
func TestRoundTripRealRecords(t *testing.T) {
	recs := realRecords(t)
	var app, tl, enr, exp int
	var buf []byte
	for i := range recs {
		r := &recs[i]
		var err error
		buf, err = recordcodec.Append(buf[:0], r)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		var got flow.Record
		if err := recordcodec.Decode(buf, &got); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, *r) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got, *r)
		}
		app += b2i(r.App != nil)
		tl += b2i(r.Timeline != nil)
		enr += b2i(r.Enrichment != nil)
		exp += b2i(r.Exported != nil)
	}
	t.Logf("%d records: %d with app metadata, %d with a timeline, %d enriched, %d exported", len(recs), app, tl, enr, exp)
	if app == 0 || tl == 0 || enr == 0 || exp == 0 {
		t.Fatal("the captures no longer exercise every part of a record")
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAppendAppends: Append extends dst and leaves what was there.
func TestAppendAppends(t *testing.T) {
	r := &realRecords(t)[0]
	one, err := recordcodec.Append(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	two, err := recordcodec.Append([]byte("prefix"), r)
	if err != nil {
		t.Fatal(err)
	}
	if string(two) != "prefix"+string(one) {
		t.Fatalf("Append to a prefix: %x, want prefix + %x", two, one)
	}
}

// TestLegacyValues: values in the wire format, as every existing store
// holds them, decode to the record the wire format gives back; for the
// records of real captures that is the record itself.
func TestLegacyValues(t *testing.T) {
	recs := realRecords(t)
	for i := range recs {
		r := &recs[i]
		v := legacy(t, r)
		if v[0] == 0xff {
			t.Fatalf("record %d: a legacy value begins with the marker", i)
		}
		var got flow.Record
		if err := recordcodec.Decode(v, &got); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, *r) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got, *r)
		}
	}
}

// TestMarkerIsNoProtobuf: the wire message's decoder refuses every value
// that begins with the marker, so no stored legacy value can.
func TestMarkerIsNoProtobuf(t *testing.T) {
	v, err := recordcodec.Append(nil, &realRecords(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{v, {0xff}, {0xff, 0x01}, {0xff, 0x00, 0x0a, 0x00}} {
		var p tapirv1.FlowRecord
		if err := proto.Unmarshal(b, &p); err == nil {
			t.Errorf("proto.Unmarshal accepted %x", b)
		}
	}
}

// fixedRecord is a record with every field set, the golden value's source.
// Changing it changes the golden file.
func fixedRecord() flow.Record {
	start := time.Date(2026, 12, 7, 13, 37, 0, 123456789, time.UTC)
	src, fam := flow.AddrFromNetip(mustAddr("192.0.2.10"))
	dst, _ := flow.AddrFromNetip(mustAddr("198.51.100.20"))
	o4a, _ := flow.AddrFromNetip(mustAddr("192.0.2.1"))
	o4b, _ := flow.AddrFromNetip(mustAddr("192.0.2.2"))
	o6a, o6fam := flow.AddrFromNetip(mustAddr("2001:db8:ffff::1"))
	o6b, _ := flow.AddrFromNetip(mustAddr("2001:db8:ffff::2"))
	tl := flow.EncodeTimeline(time.Second, []flow.TimelinePoint{
		{Start: start, Packets: 10, Bytes: 1500}, {Start: start.Add(time.Second), Packets: 3, Bytes: 180},
		{Start: start.Add(5 * time.Second), Packets: 7, Bytes: 9000}}, 0)
	r := flow.Record{
		ID: flow.NewID(start, 0xdeadbeef, 42), SensorID: "sensor-1", Interface: "eth0", CommunityID: "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
		Tuple: flow.Tuple{Src: src, Dst: dst, SrcPort: 51515, DstPort: 443, Proto: flow.ProtoTCP, Family: fam, VLAN: 100, InnerVLAN: 7},
		Source: flow.DirStats{Packets: 12, Bytes: 1800, StoredPackets: 12, StoredBytes: 1700,
			First: start, Last: start.Add(5 * time.Second), TCPFlags: flow.TCPFlagSYN | flow.TCPFlagACK | flow.TCPFlagFIN},
		Destination: flow.DirStats{Packets: 8, Bytes: 8880, StoredPackets: 6, StoredBytes: 6000,
			First: start.Add(time.Millisecond), Last: start.Add(5*time.Second + time.Millisecond), TCPFlags: flow.TCPFlagSYN | flow.TCPFlagACK},
		Start: start, End: start.Add(5*time.Second + time.Millisecond), Reason: flow.ReasonFIN, Segment: 2, Truncated: 3, BudgetCut: 4,
		App: &flow.AppMeta{
			DNS: &flow.DNSMeta{ID: 4660, QueryName: "example.org", QueryType: 1, HasResponse: true, ResponseCode: 0,
				Answers: []flow.DNSAnswer{{Name: "example.org", Type: 5, TTL: 60, Data: "edge.example.net"}, {Name: "edge.example.net", Type: 1, TTL: 30, Data: "198.51.100.20"}}},
			TLS: &flow.TLSMeta{ServerName: "example.org", ALPN: []string{"h2", "http/1.1"}, ClientVersion: 0x0304,
				JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1", JA3: "773906b0efdefa24a7f2b8eb6985bf37", ServerVersion: 0x0304, Cipher: 0x1301, NextProtocol: "h2", QUIC: true},
			HTTP: &flow.HTTPMeta{Method: "GET", Host: "example.org", URI: "/index.html?q=1", UserAgent: "curl/8.5.0", StatusCode: 200, ContentType: "text/html"},
			SSH:  &flow.SSHMeta{ClientVersion: "SSH-2.0-OpenSSH_9.6", ServerVersion: "SSH-2.0-OpenSSH_9.2p1"},
		},
		Timeline:   tl,
		Enrichment: enrichment(0),
		Exported: &flow.Exported{Exporter: "192.0.2.1", Protocol: "ipfix", ObservationDomain: 9, InputInterface: 3, OutputInterface: 7,
			SamplingRate: 100, RawSourcePackets: 1, RawSourceBytes: 18, RawDestinationPackets: 2, RawDestinationBytes: 88, Biflow: true},
		Tunnels: &flow.TunnelChain{Levels: []flow.Tunnel{
			{Type: flow.TunnelGRE, Src: o6a, Dst: o6b, Family: o6fam, Proto: 47, ID: 0xdeadbeef, HasID: true},
			{Type: flow.TunnelVXLAN, Src: o4a, Dst: o4b, Family: fam, Proto: flow.ProtoUDP, SrcPort: 49152, DstPort: 4789, HasID: true},
		}},
	}
	return r
}

// TestGolden pins the stored form: the fixed record must encode to the
// committed value of the current version byte for byte (a change of the
// layout shows here and must follow the compatibility rule), and every
// committed golden value (each version's and the legacy wire format's)
// must still decode to the record committed beside it (NAME.golden.json,
// the record's fields as they are; a field added to flow.Record later is
// absent there, so zero, as an old value gives it).
func TestGolden(t *testing.T) {
	r := fixedRecord()
	v, err := recordcodec.Append(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		writeGolden(t, "v1", v, &r)
		if _, err := os.Stat(filepath.Join("testdata", "legacy.golden")); errors.Is(err, os.ErrNotExist) {
			writeGolden(t, "legacy", legacy(t, &r), &r)
		}
	}
	current := filepath.Join("testdata", "v1.golden")
	if want := readHex(t, current); !bytes.Equal(v, want) {
		t.Errorf("the fixed record encodes to\n%x\nthe committed %s holds\n%x\n(a layout change: follow the package comment's compatibility rule)", v, current, want)
	}
	if bytes.Equal(v[2:], legacy(t, &r)) {
		t.Error("the stored payload is the wire message")
	}
	for _, name := range []string{"v1", "legacy"} {
		var got flow.Record
		if err := recordcodec.Decode(readHex(t, filepath.Join("testdata", name+".golden")), &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var want plainRecord
		b, err := os.ReadFile(filepath.Join("testdata", name+".golden.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, flow.Record(want)) {
			t.Errorf("%s.golden decodes to\n%+v\nwant\n%+v", name, got, want)
		}
	}
}

// plainRecord is a flow.Record without its ECS JSON form: in JSON, its
// fields as they are.
type plainRecord flow.Record

// writeGolden writes the golden value NAME.golden and the record it holds,
// NAME.golden.json.
func writeGolden(t *testing.T, name string, v []byte, r *flow.Record) {
	writeHex(t, filepath.Join("testdata", name+".golden"), v)
	b, err := json.MarshalIndent((*plainRecord)(r), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name+".golden.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeHex writes b as hex, 32 bytes a line.
func writeHex(t *testing.T, path string, b []byte) {
	var s strings.Builder
	for len(b) > 0 {
		n := min(32, len(b))
		s.WriteString(hex.EncodeToString(b[:n]) + "\n")
		b = b[n:]
	}
	if err := os.WriteFile(path, []byte(s.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readHex(t *testing.T, path string) []byte {
	s, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(s)), ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestConcurrentUse: Append and Decode share pooled state; run them from
// several goroutines (go test -race) and expect every record back.
func TestConcurrentUse(t *testing.T) {
	recs := realRecords(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			var buf []byte
			for i := w; i < len(recs); i++ {
				var err error
				if buf, err = recordcodec.Append(buf[:0], &recs[i]); err != nil {
					errs <- err
					return
				}
				var got flow.Record
				if err := recordcodec.Decode(buf, &got); err != nil || !reflect.DeepEqual(got, recs[i]) {
					errs <- fmt.Errorf("record %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
