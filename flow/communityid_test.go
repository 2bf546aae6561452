package flow_test

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

type baselineRecord struct {
	Proto       uint8   `json:"proto"`
	Saddr       string  `json:"saddr"`
	Daddr       string  `json:"daddr"`
	Sport       *uint16 `json:"sport"`
	Dport       *uint16 `json:"dport"`
	CommunityID string  `json:"communityid"`
}

func tupleOf(t *testing.T, r baselineRecord) flow.Tuple {
	t.Helper()
	s, d := netip.MustParseAddr(r.Saddr), netip.MustParseAddr(r.Daddr)
	var tp flow.Tuple
	tp.Src, tp.Family = flow.AddrFromNetip(s)
	tp.Dst, _ = flow.AddrFromNetip(d)
	tp.Proto = r.Proto
	if r.Sport != nil {
		tp.SrcPort = *r.Sport
	}
	if r.Dport != nil {
		tp.DstPort = *r.Dport
	}
	return tp
}

// TestCommunityIDBaselines checks every tuple of the spec's published
// baselines (default seed, seed 1, and the no-base64 form).
func TestCommunityIDBaselines(t *testing.T) {
	dir := testenv.Pcap(t, "community-id-spec")
	for _, tc := range []struct {
		file  string
		seed  uint16
		nob64 bool
	}{
		{"baseline_deflt.json", 0, false},
		{"baseline_seed1.json", 1, false},
		{"baseline_nob64.json", 0, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var recs []baselineRecord
			if err := json.Unmarshal(raw, &recs); err != nil {
				t.Fatal(err)
			}
			if len(recs) < 20 {
				t.Fatalf("only %d baseline records", len(recs))
			}
			for _, r := range recs {
				tp := tupleOf(t, r)
				var got string
				if tc.nob64 {
					sum := flow.CommunityIDRaw(tc.seed, tp)
					got = "1:" + hex.EncodeToString(sum[:])
				} else {
					got = flow.CommunityID(tc.seed, tp)
				}
				if got != r.CommunityID {
					t.Errorf("%+v: got %s want %s", r, got, r.CommunityID)
				}
			}
		})
	}
}

// TestKeySymmetric checks that both directions of every baseline tuple
// share one canonical key exactly when they share one Community ID.
func TestKeySymmetric(t *testing.T) {
	dir := testenv.Pcap(t, "community-id-spec")
	raw, err := os.ReadFile(filepath.Join(dir, "baseline_deflt.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []baselineRecord
	if err := json.Unmarshal(raw, &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		tp := tupleOf(t, r)
		k1, fwd := tp.Key()
		k2, rev := tp.Reverse().Key()
		oneWay := flow.CommunityID(0, tp) != flow.CommunityID(0, tp.Reverse())
		if !oneWay && (k1 != k2 || fwd == rev) {
			t.Errorf("%+v: two-way tuple but keys differ or same direction", r)
		}
		if flow.CommunityID(0, k1.Forward()) != r.CommunityID && !oneWay {
			t.Errorf("%+v: key's forward tuple hashes to %s", r, flow.CommunityID(0, k1.Forward()))
		}
	}
}

func TestCommunityIDNoAlloc(t *testing.T) {
	tp := flow.Tuple{Src: flow.AddrFrom4([4]byte{1, 2, 3, 4}), Dst: flow.AddrFrom4([4]byte{5, 6, 7, 8}),
		SrcPort: 1122, DstPort: 3344, Proto: flow.ProtoTCP, Family: flow.FamilyIPv4}
	buf := make([]byte, 0, flow.CommunityIDLen)
	if got := string(flow.AppendCommunityID(buf, 0, &tp)); got != "1:wCb3OG7yAFWelaUydu0D+125CLM=" {
		t.Fatalf("spec README example: got %s", got)
	}
	if n := testing.AllocsPerRun(100, func() { buf = flow.AppendCommunityID(buf[:0], 0, &tp) }); n != 0 {
		t.Fatalf("AppendCommunityID allocates %v times", n)
	}
}
