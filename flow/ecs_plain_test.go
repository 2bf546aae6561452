package flow

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// randPlainRecord builds a record of the kind appendPlain renders, with
// every field drawn so that each branch (families, protocols, empty and
// escaped strings, zero counters, VLANs, final or not, odd times) is taken.
func randPlainRecord(r *rand.Rand) *Record {
	rec := &Record{SensorID: randString(r), Interface: randString(r), CommunityID: randString(r),
		Start: randTime(r), End: randTime(r), Reason: EndReason(r.IntN(12)), Segment: uint32(randUint(r)),
		Truncated: randUint(r), BudgetCut: randUint(r)}
	for i := range rec.ID {
		rec.ID[i] = byte(r.Uint32())
	}
	t := &rec.Tuple
	t.Family = []uint8{FamilyIPv4, FamilyIPv6, FamilyLink, 0, 9}[r.IntN(5)]
	t.Proto = []uint8{ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, ProtoSCTP, 0, 47, 200}[r.IntN(8)]
	for i := range t.Src {
		t.Src[i], t.Dst[i] = byte(r.Uint32()), byte(r.Uint32())
	}
	if r.IntN(2) == 0 { // IPv4-mapped and short addresses
		t.Src, t.Dst = AddrFrom4([4]byte{10, 0, 0, byte(r.Uint32())}), AddrFrom4([4]byte{192, 168, 1, 2})
	}
	t.SrcPort, t.DstPort = uint16(randUint(r)), uint16(randUint(r))
	t.VLAN, t.InnerVLAN = uint16(randUint(r)), uint16(randUint(r))
	for _, d := range []*DirStats{&rec.Source, &rec.Destination} {
		*d = DirStats{Packets: randUint(r), Bytes: randUint(r), StoredPackets: randUint(r), StoredBytes: randUint(r),
			TCPFlags: uint8(r.Uint32())}
		if r.IntN(3) == 0 {
			d.TCPFlags = 0
		}
	}
	return rec
}

// TestPlainRecordJSONMatches: for every plain record the direct encoder
// writes exactly what ToECS followed by encoding/json writes (and what
// the ECS append encoder writes), and falls back where they fail.
func TestPlainRecordJSONMatches(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		rec := randPlainRecord(r)
		if i%100 == 0 {
			rec.End = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // encoding/json refuses it
		}
		checkPlainRecord(t, rec)
	}
}

// checkPlainRecord compares Record.AppendJSON with the reference encoders.
func checkPlainRecord(t *testing.T, rec *Record) {
	t.Helper()
	if !rec.plainJSON() {
		t.Fatalf("not a plain record: %+v", rec)
	}
	want, wantErr := rec.ToECS().marshalReflect()
	viaECS, ecsErr := rec.ToECS().AppendJSON(nil)
	got, err := rec.AppendJSON([]byte("prefix"))
	if (err == nil) != (wantErr == nil) || (ecsErr == nil) != (wantErr == nil) {
		t.Fatalf("errors: %v, ECS encoder %v, encoding/json %v", err, ecsErr, wantErr)
	}
	if err != nil {
		if string(got) != "prefix" {
			t.Fatalf("failed append changed the buffer: %q", got)
		}
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[6:], want) || !bytes.Equal(viaECS, want) {
		t.Fatalf("record %+v\n got %s\nwant %s", rec, got[6:], want)
	}
}

// FuzzPlainRecordJSON: the property test's comparison on records drawn
// from the fuzzer's seeds.
func FuzzPlainRecordJSON(f *testing.F) {
	for i := uint64(0); i < 8; i++ {
		f.Add(i, i*7919)
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		checkPlainRecord(t, randPlainRecord(rand.New(rand.NewPCG(a, b))))
	})
}

// TestPlainRecordJSONNoAlloc: a plain record is written into a reused
// buffer without a single allocation (ToECS made about ten per record).
func TestPlainRecordJSONNoAlloc(t *testing.T) {
	rec := benchRecord()
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(200, func() {
		b, err := rec.AppendJSON(buf[:0])
		if err != nil || len(b) == 0 {
			t.Fatal(b, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendJSON of a plain record: %.0f allocations, want 0", allocs)
	}
}

// TestAppJSONNoReflection: the ECS encoder writes the sensor's optional
// objects (DNS, TLS, HTTP, URL, user agent, SSH, timeline) without
// encoding/json: no allocation into a reused buffer.
func TestAppJSONNoReflection(t *testing.T) {
	e := benchRecord().ToECS()
	e.DNS = &ECSDNS{ID: "7", Type: "answer", Question: ECSDNSQuestion{Name: "example.com", Type: "A"}, ResponseCode: "NOERROR",
		Answers: []ECSDNSAnswer{{Name: "example.com", Type: "A", TTL: 60, Data: "93.184.216.34"}}, ResolvedIP: []string{"93.184.216.34"}}
	e.TLS = &ECSTLS{Version: "1.3", VersionProtocol: "tls", Client: ECSTLSClient{ServerName: "example.com", ALPN: []string{"h2"}}}
	e.HTTP = &ECSHTTP{Request: &ECSHTTPRequest{Method: "GET"}, Response: &ECSHTTPResponse{StatusCode: 200, MimeType: "text/html"}}
	e.URL = &ECSURL{Original: "/a?b", Domain: "example.com", Path: "/a", Query: "b"}
	e.UserAgent = &ECSUserAgent{Original: "curl/8"}
	e.Tapir.SSH = &ECSTapirSSH{Client: "SSH-2.0-a", Server: "SSH-2.0-b"}
	e.Tapir.Timeline = &ECSTimeline{IntervalMs: 1000, Points: 2, OffsetMs: []int64{0, 1000}, Packets: []uint64{3, 4}, Bytes: []uint64{300, 400}}
	buf := make([]byte, 0, 8192)
	allocs := testing.AllocsPerRun(200, func() {
		b, err := e.AppendJSON(buf[:0])
		if err != nil || len(b) == 0 {
			t.Fatal(b, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendJSON with application metadata and a timeline: %.0f allocations, want 0", allocs)
	}
}
