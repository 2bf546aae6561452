package flow

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// ecsStrings are field values that take every path of the string
// encoder: plain, empty, HTML characters, quotes, control bytes, UTF-8,
// invalid UTF-8 and the JavaScript line separators.
var ecsStrings = []string{"", "s1", "eth0", "10.0.0.1", "a<b>&c", `q"uo\te`, "tab\tnl\n\x01", "été", "\xff\xfe", "x\u2028y\u2029", "1:f6AOffKUxnjU7mWJvPqhWOpRYJ8="}

func randString(r *rand.Rand) string { return ecsStrings[r.IntN(len(ecsStrings))] }

func randUint(r *rand.Rand) uint64 {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return r.Uint64()
	}
	return r.Uint64N(100000)
}

func randTime(r *rand.Rand) time.Time {
	switch r.IntN(5) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(r.Int64N(2e9), 0).In(time.FixedZone("", 5*3600+1800))
	case 2:
		return time.Unix(r.Int64N(2e9), r.Int64N(1e9)).UTC().Truncate(time.Millisecond)
	}
	return time.Unix(r.Int64N(2e9), r.Int64N(1e9)).UTC()
}

func randStrings(r *rand.Rand) []string {
	switch r.IntN(3) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	return []string{randString(r), randString(r)}
}

// randTimeline fills a timeline object: nil, empty and filled series.
func randTimeline(r *rand.Rand) *ECSTimeline {
	x := &ECSTimeline{IntervalMs: int64(randUint(r)) - 5, Points: uint32(randUint(r)), Cut: uint32(randUint(r)), Error: randString(r)}
	if n := r.IntN(4); n > 0 {
		for i := 1; i < n; i++ {
			x.OffsetMs = append(x.OffsetMs, int64(randUint(r))-7)
			x.Packets = append(x.Packets, randUint(r))
			x.Bytes = append(x.Bytes, randUint(r))
		}
		if n == 1 {
			x.OffsetMs, x.Packets, x.Bytes = []int64{}, []uint64{}, []uint64{}
		}
	}
	return x
}

// randDNS fills a DNS object: queries, answers with and without data.
func randDNS(r *rand.Rand) *ECSDNS {
	s := randString
	x := &ECSDNS{ID: s(r), Type: s(r), Question: ECSDNSQuestion{Name: s(r), Type: s(r)}, ResponseCode: s(r), ResolvedIP: randStrings(r)}
	for i := r.IntN(3); i > 0; i-- {
		x.Answers = append(x.Answers, ECSDNSAnswer{Name: s(r), Type: s(r), TTL: uint32(randUint(r)), Data: s(r)})
	}
	if r.IntN(4) == 0 {
		x.Answers = []ECSDNSAnswer{}
	}
	return x
}

// randECS fills every field of an ECS object, each optional object
// present half the time.
func randECS(r *rand.Rand) *ECS {
	s, u, t, b := randString, randUint, randTime, func(r *rand.Rand) bool { return r.IntN(2) == 0 }
	e := &ECS{Timestamp: t(r), ECS: ECSMeta{Version: s(r)}}
	e.Network = ECSNetwork{CommunityID: s(r), Transport: s(r), IANANumber: s(r), EtherType: s(r), Type: s(r), Packets: u(r), Bytes: u(r)}
	if b(r) {
		e.Network.VLAN = &struct {
			ID string `json:"id"`
		}{ID: s(r)}
	}
	for _, p := range []*ECSEndpoint{&e.Source, &e.Destination} {
		*p = ECSEndpoint{IP: s(r), MAC: s(r), Port: uint16(u(r)), Packets: u(r), Bytes: u(r), Domain: s(r)}
		if b(r) {
			p.Geo = &ECSGeo{CountryISOCode: s(r)}
		}
		if b(r) {
			p.AS = &ECSAS{Number: uint32(u(r))}
		}
	}
	e.Event = ECSEvent{Kind: s(r), Category: randStrings(r), Type: randStrings(r), Start: t(r), End: t(r), Duration: int64(u(r)), Reason: s(r)}
	e.Tapir = ECSTapir{FlowID: s(r), SensorID: s(r), Segment: uint32(u(r)), Final: b(r), VLAN: uint16(u(r)), InnerVLAN: uint16(u(r)),
		Truncated: u(r), BudgetCut: u(r), DomainSource: s(r)}
	for _, d := range []*ECSTapirDir{&e.Tapir.Source, &e.Tapir.Destination} {
		*d = ECSTapirDir{TCPFlags: s(r), StoredPackets: u(r), StoredBytes: u(r)}
		if b(r) {
			d.Asset = &ECSAsset{}
		}
	}
	if b(r) {
		e.Tapir.ICMP = &ECSTapirICMP{Type: uint16(u(r)), Code: uint16(u(r))}
	}
	if b(r) {
		e.Tapir.Exporter = &ECSTapirExporter{}
	}
	if b(r) {
		e.Tapir.Rarity = &ECSRarity{}
	}
	if b(r) {
		e.Tapir.SSH = &ECSTapirSSH{Client: s(r), Server: s(r)}
	}
	if b(r) {
		e.Tapir.Timeline = randTimeline(r)
	}
	if b(r) {
		vni := uint32(u(r))
		e.Tapir.Tunnels = []ECSTunnel{{Type: s(r), Source: ECSTunnelEnd{IP: s(r), Port: uint16(u(r))}, IANANumber: s(r), VNI: &vni}, {Type: s(r)}}
	}
	if b(r) {
		e.Observer = &ECSObserver{Name: s(r), Hostname: s(r), IP: s(r), Type: s(r)}
		if b(r) {
			e.Observer.Ingress = &ECSInterface{}
			e.Observer.Ingress.Interface.ID, e.Observer.Ingress.Interface.Name = s(r), s(r)
		}
		if b(r) {
			e.Observer.Egress = &ECSInterface{}
			e.Observer.Egress.Interface.Name = s(r)
		}
	}
	if b(r) {
		e.DNS = randDNS(r)
	}
	if b(r) {
		e.TLS = &ECSTLS{Version: s(r), VersionProtocol: s(r), Cipher: s(r), NextProtocol: s(r),
			Client: ECSTLSClient{ServerName: s(r), JA3: s(r), JA4: s(r), ALPN: randStrings(r)}}
	}
	if b(r) {
		e.HTTP = &ECSHTTP{}
		if b(r) {
			e.HTTP.Request = &ECSHTTPRequest{Method: s(r)}
		}
		if b(r) {
			e.HTTP.Response = &ECSHTTPResponse{StatusCode: int(int64(u(r))) - 50000, MimeType: s(r)}
		}
	}
	if b(r) {
		e.URL = &ECSURL{Original: s(r), Domain: s(r), Path: s(r), Query: s(r)}
	}
	if b(r) {
		e.UserAgent = &ECSUserAgent{Original: s(r)}
	}
	if r.IntN(8) == 0 {
		e.Extra = map[string]any{"threat": map[string]string{"x": s(r)}, "tapir": 1}
	}
	return e
}

// TestAppendJSONMatchesEncodingJSON: the append encoder writes exactly
// encoding/json's bytes for every field combination, and its errors.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		e := randECS(r)
		if i%50 == 0 {
			e.Event.End = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // encoding/json refuses it
		}
		want, wantErr := e.marshalReflect()
		prefix := []byte("prefix")
		got, err := e.AppendJSON(prefix)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("case %d: error %v, encoding/json %v", i, err, wantErr)
		}
		if err != nil {
			if string(got) != "prefix" {
				t.Fatalf("case %d: failed append changed the buffer: %q", i, got)
			}
			continue
		}
		if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got[len(prefix):], want)
		}
	}
}

// TestRecordAppendJSONNoReflection: rendering a plain sensor record
// allocates only what ToECS allocates (encoding/json allocated for the
// times and the result copy, and was most of --flows-out's cost).
func TestRecordAppendJSONNoReflection(t *testing.T) {
	start := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	tp := Tuple{Src: AddrFrom4([4]byte{128, 232, 110, 120}), Dst: AddrFrom4([4]byte{66, 35, 250, 204}),
		SrcPort: 34855, DstPort: 80, Proto: ProtoTCP, Family: FamilyIPv4}
	rec := &Record{ID: NewID(start, SensorHash("s1"), 7), SensorID: "s1", Interface: "eth0",
		CommunityID: CommunityID(0, tp), Tuple: tp,
		Source:      DirStats{Packets: 6, Bytes: 500, TCPFlags: TCPFlagSYN | TCPFlagACK},
		Destination: DirStats{Packets: 6, Bytes: 614},
		Start:       start, End: start.Add(time.Second), Reason: ReasonFIN}
	buf := make([]byte, 0, 4096)
	toECS := testing.AllocsPerRun(200, func() { rec.ToECS() })
	render := testing.AllocsPerRun(200, func() {
		b, err := rec.AppendJSON(buf[:0])
		if err != nil || len(b) == 0 {
			t.Fatal(b, err)
		}
	})
	if render > toECS {
		t.Fatalf("AppendJSON: %.0f allocations, ToECS alone %.0f", render, toECS)
	}
}

func benchRecord() *Record {
	start := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	tp := Tuple{Src: AddrFrom4([4]byte{128, 232, 110, 120}), Dst: AddrFrom4([4]byte{66, 35, 250, 204}),
		SrcPort: 34855, DstPort: 443, Proto: ProtoTCP, Family: FamilyIPv4}
	return &Record{ID: NewID(start, SensorHash("s1"), 7), SensorID: "s1", Interface: "eth0",
		CommunityID: CommunityID(0, tp), Tuple: tp,
		Source:      DirStats{Packets: 6, Bytes: 500, TCPFlags: TCPFlagSYN | TCPFlagACK, StoredPackets: 6, StoredBytes: 500},
		Destination: DirStats{Packets: 6, Bytes: 614, StoredPackets: 6, StoredBytes: 614},
		Start:       start, End: start.Add(time.Second), Reason: ReasonFIN}
}

// BenchmarkRecordJSON compares the record encoder (plain path), the ECS
// append encoder after ToECS, and encoding/json on a plain sensor record.
func BenchmarkRecordJSON(b *testing.B) {
	rec := benchRecord()
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf, _ = rec.AppendJSON(buf[:0])
		}
	})
	b.Run("via-ECS", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf, _ = rec.ToECS().AppendJSON(buf[:0])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := rec.ToECS().marshalReflect(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
