package rowkey

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage"
	"github.com/tapir-sensor/tapir/storage/storagetest"
)

func TestTimeOrderAndBucket(t *testing.T) {
	times := []int64{math.MinInt64, -int64(time.Hour) - 1, -1, 0, 1, int64(time.Minute), 1_300_000_000_000_000_000, math.MaxInt64}
	var prev []byte
	for _, ns := range times {
		b := AppendTime(nil, ns)
		if DecodeTime(b) != ns {
			t.Fatalf("time %d round-trips to %d", ns, DecodeTime(b))
		}
		if prev != nil && bytes.Compare(prev, b) >= 0 {
			t.Fatalf("time %d does not sort after its predecessor", ns)
		}
		prev = b
	}
	w := int64(time.Minute)
	for _, c := range []struct{ ns, want int64 }{{0, 0}, {w - 1, 0}, {w, w}, {-1, -w}, {-w, -w}, {-w - 1, -2 * w}} {
		if got := Bucket(c.ns, w); got != c.want {
			t.Errorf("Bucket(%d) = %d, want %d", c.ns, got, c.want)
		}
		if got := NextBucket(c.ns, w); got != c.want+w {
			t.Errorf("NextBucket(%d) = %d, want %d", c.ns, got, c.want+w)
		}
	}
	if NextBucket(math.MaxInt64, w) != math.MaxInt64 {
		t.Error("NextBucket does not saturate")
	}
}

func TestKeysFromCapture(t *testing.T) {
	flows := storagetest.LoadFlows(t, storagetest.Capture)
	salts := map[byte]bool{}
	for i := range flows {
		f := &flows[i]
		in := storagetest.NewInstance(f, "sensor-a", uint32(i), 0, 2)
		// Both directions of every packet give the same prefix.
		want := AppendFlowPrefix(nil, &f.Key)
		salts[want[0]] = true
		for _, p := range f.Packets {
			for _, tup := range []flow.Tuple{p.Tuple, p.Tuple.Reverse()} {
				k, _ := tup.Key()
				if got := AppendFlowPrefix(nil, &k); !bytes.Equal(got, want) {
					t.Fatalf("%s: prefix %x, want %x", tup, got, want)
				}
			}
		}
		if k, err := DecodeFlowKey(want[1:]); err != nil || k != f.Key {
			t.Fatalf("flow key round trip: %+v %v", k, err)
		}
		checkBlockKeys(t, in, want)
		r := in.Record
		cid, ok := ParseCommunityID(r.CommunityID)
		if !ok || cid != flow.CommunityIDRaw(0, r.Tuple) {
			t.Fatalf("community id %s parses to %x, want %x", r.CommunityID, cid, flow.CommunityIDRaw(0, r.Tuple))
		}
		ref := storage.FlowRef{Key: f.Key, FlowID: r.ID, CommunityID: r.CommunityID, SensorID: r.SensorID, First: r.Start, Last: r.End}
		var gotRef storage.FlowRef
		if err := DecodeRef(AppendRef(nil, &ref), &gotRef); err != nil || gotRef != ref {
			t.Fatalf("ref round trip: %+v %v, want %+v", gotRef, err, ref)
		}
		rk := AppendRecordKey(nil, Bucket(r.Start.UnixNano(), int64(time.Minute)), r.ID)
		if b, id, err := DecodeRecordKey(rk); err != nil || id != r.ID || b != Bucket(r.Start.UnixNano(), int64(time.Minute)) {
			t.Fatalf("record key round trip: %d %s %v", b, id, err)
		}
		if c, id, err := DecodeCommunityKey(AppendCommunityKey(nil, &cid, r.ID)); err != nil || c != cid || id != r.ID {
			t.Fatalf("community key round trip: %x %s %v", c, id, err)
		}
		if p, id, err := DecodeCommunityHashKey(AppendCommunityHashKey(nil, &cid, r.ID)); err != nil || p != [CommunityHashLen]byte(cid[:CommunityHashLen]) || id != r.ID {
			t.Fatalf("community hash key round trip: %x %s %v", p, id, err)
		}
		if !bytes.Equal(AppendFlowIDKey(nil, r.ID)[1:], r.ID[:]) {
			t.Fatal("flow id key does not hold the id")
		}
		if k := AppendOrderedFlowIDKey(nil, r.ID); len(k) != FlowIDKeyLen || k[0] != 0 || !bytes.Equal(k[1:], r.ID[:]) {
			t.Fatalf("ordered flow id key %x of %s", k, r.ID)
		}
	}
	if len(flows) > 8 && len(salts) < 4 {
		t.Fatalf("%d flows fall on only %d salts", len(flows), len(salts))
	}
}

// checkBlockKeys checks that the block keys of an instance start with its
// flow prefix, sort in block order, and round-trip with their values and
// age keys.
func checkBlockKeys(t *testing.T, in *storagetest.Instance, prefix []byte) {
	t.Helper()
	var prev []byte
	for _, b := range in.Blocks {
		m := b.Meta
		bk := BlockKey{Key: m.Key, Bucket: Bucket(m.First, int64(time.Minute)), First: m.First,
			Sensor: flow.SensorHash(m.SensorID), FlowID: m.FlowID, Seq: m.Seq}
		key := AppendBlockKey(nil, &bk)
		if len(key) != BlockKeyLen || !bytes.HasPrefix(key, prefix) {
			t.Fatalf("block key %x: length %d or prefix wrong", key, len(key))
		}
		if got, err := DecodeBlockKey(key); err != nil || got != bk {
			t.Fatalf("block key round trip: %+v %v, want %+v", got, err, bk)
		}
		if prev != nil && bytes.Compare(prev, key) >= 0 {
			t.Fatalf("block %d key does not sort after block %d", m.Seq, m.Seq-1)
		}
		prev = key
		val := AppendBlockValue(nil, &m, b.Encoded)
		var got storage.Block
		if err := DecodeBlock(key, val, &got); err != nil || got.Meta != m || !bytes.Equal(got.Encoded, b.Encoded) {
			t.Fatalf("block value round trip: %+v %v", got.Meta, err)
		}
		ak := AppendAgeKey(nil, m.Last, key)
		if last, bkey, err := DecodeAgeKey(ak); err != nil || last != m.Last || !bytes.Equal(bkey, key) {
			t.Fatalf("age key round trip: %d %x %v", last, bkey, err)
		}
	}
}

func TestDedupeKey(t *testing.T) {
	for _, c := range []struct {
		s   string
		seq uint64
	}{{"sensor-a", 0}, {"", 7}, {"x", math.MaxUint64}} {
		s, seq, err := DecodeDedupeKey(AppendDedupeKey(nil, c.s, c.seq))
		if err != nil || s != c.s || seq != c.seq {
			t.Fatalf("%q/%d -> %q/%d %v", c.s, c.seq, s, seq, err)
		}
	}
	// One sensor's markers are a contiguous range sorted by seq.
	a := AppendDedupeKey(nil, "ab", 1)
	b := AppendDedupeKey(nil, "ab", 256)
	c := AppendDedupeKey(nil, "abc", 0)
	if !(bytes.Compare(a, b) < 0 && bytes.Compare(b, c) < 0) {
		t.Fatal("dedupe keys out of order")
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{[]byte{1, 2}, []byte{1, 3}}, {[]byte{1, 0xff}, []byte{2}}, {[]byte{0xff, 0xff}, nil},
	} {
		if got := PrefixEnd(c.in); !slices.Equal(got, c.want) {
			t.Errorf("PrefixEnd(%x) = %x, want %x", c.in, got, c.want)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic, and
// what decodes must re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	flows := storagetest.LoadFlows(f, storagetest.Capture)
	for i := range flows {
		in := storagetest.NewInstance(&flows[i], "sensor-a", uint32(i), 0, 4)
		m := in.Blocks[0].Meta
		bk := BlockKey{Key: m.Key, Bucket: Bucket(m.First, int64(time.Minute)), First: m.First,
			Sensor: flow.SensorHash(m.SensorID), FlowID: m.FlowID, Seq: m.Seq}
		key := AppendBlockKey(nil, &bk)
		f.Add(key, AppendBlockValue(nil, &m, in.Blocks[0].Encoded[:min(64, len(in.Blocks[0].Encoded))]))
		ref := storage.FlowRef{Key: m.Key, FlowID: m.FlowID, CommunityID: m.CommunityID, SensorID: m.SensorID,
			First: in.Record.Start, Last: in.Record.End}
		f.Add(AppendAgeKey(nil, m.Last, key), AppendRef(nil, &ref))
	}
	f.Fuzz(func(t *testing.T, key, val []byte) {
		if bk, err := DecodeBlockKey(key); err == nil {
			if !bytes.Equal(AppendBlockKey(nil, &bk), key) {
				t.Fatalf("block key %x re-encodes differently", key)
			}
			var b storage.Block
			if err := DecodeBlock(key, val, &b); err == nil {
				if got := AppendBlockValue(nil, &b.Meta, b.Encoded); !bytes.Equal(got, val) {
					t.Fatalf("block value %x re-encodes as %x", val, got)
				}
			}
		}
		if last, bkey, err := DecodeAgeKey(key); err == nil && !bytes.Equal(AppendAgeKey(nil, last, bkey), key) {
			t.Fatalf("age key %x re-encodes differently", key)
		}
		var r storage.FlowRef
		if err := DecodeRef(val, &r); err == nil {
			if got := AppendRef(nil, &r); !bytes.Equal(got, val) {
				// Only the zero/nonzero time form may differ: a stored 0
				// means "no time".
				t.Fatalf("ref %x re-encodes as %x", val, got)
			}
		}
		if s, seq, err := DecodeDedupeKey(key); err == nil && !bytes.Equal(AppendDedupeKey(nil, s, seq), key) {
			t.Fatalf("dedupe key %x re-encodes differently", key)
		}
		if b, id, err := DecodeRecordKey(key); err == nil && !bytes.Equal(AppendRecordKey(nil, b, id), key) {
			t.Fatalf("record key %x re-encodes differently", key)
		}
		if c, id, err := DecodeCommunityKey(key); err == nil && !bytes.Equal(AppendCommunityKey(nil, &c, id), key) {
			t.Fatalf("community key %x re-encodes differently", key)
		}
		if p, id, err := DecodeCommunityHashKey(key); err == nil {
			var cid [CommunityLen]byte
			copy(cid[:], p[:])
			if !bytes.Equal(AppendCommunityHashKey(nil, &cid, id), key) {
				t.Fatalf("community hash key %x re-encodes differently", key)
			}
		}
		if sp, err := DecodeSpan(val); err == nil && !bytes.Equal(AppendSpan(nil, sp), val) {
			t.Fatalf("span %x re-encodes differently", val)
		}
		_, _ = DecodeFlowKey(key)
		_, _ = ParseCommunityID(string(key))
	})
}

// TestExpiredIn checks the retention marker against retrieval windows:
// overlapping ones (edges included) get ErrPacketsExpired naming the
// removed span, disjoint ones pass, a damaged value is ErrMalformed.
func TestExpiredIn(t *testing.T) {
	sp := Span{First: 1000, Last: 2000}.Union(Span{First: 1500, Last: 3000})
	if sp != (Span{First: 1000, Last: 3000}) {
		t.Fatalf("union = %+v", sp)
	}
	v := AppendSpan(nil, sp)
	for _, c := range []struct {
		lo, hi int64
		hit    bool
	}{{0, 999, false}, {0, 1000, true}, {1200, 1300, true}, {3000, 4000, true}, {3001, 4000, false}, {0, 5000, true}} {
		err := ExpiredIn("key", v, c.lo, c.hi)
		if got := errors.Is(err, storage.ErrPacketsExpired); got != c.hit {
			t.Errorf("[%d, %d]: %v, want expired %v", c.lo, c.hi, err, c.hit)
		}
		if c.hit && !strings.Contains(err.Error(), "key blocks in 1970-01-01T00:00:00.000001Z..1970-01-01T00:00:00.000003Z removed") {
			t.Errorf("[%d, %d]: message %q", c.lo, c.hi, err)
		}
	}
	if err := ExpiredIn("key", v[:15], 0, 5000); !errors.Is(err, ErrMalformed) {
		t.Errorf("damaged span: %v", err)
	}
}

func TestNanosOrAndSubSat(t *testing.T) {
	if got := NanosOr(time.Time{}, math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("NanosOr(zero) = %d", got)
	}
	if got := NanosOr(time.Unix(5, 7), 0); got != 5_000_000_007 {
		t.Errorf("NanosOr(5.000000007 s) = %d", got)
	}
	for _, c := range []struct{ a, b, want int64 }{
		{10, 3, 7}, {math.MinInt64 + 5, 10, math.MinInt64}, {math.MinInt64, 0, math.MinInt64}, {-5, 5, -10},
	} {
		if got := SubSat(c.a, c.b); got != c.want {
			t.Errorf("SubSat(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestParseCommunityIDUnpadded: 28 base64 characters without padding
// decode to 21 bytes; ParseCommunityID refuses them (it panicked, and a
// sensor's record or an API request could carry one).
func TestParseCommunityIDUnpadded(t *testing.T) {
	for _, s := range []string{"1:" + strings.Repeat("0", 28), "1:" + strings.Repeat("A", 28)} {
		if _, ok := ParseCommunityID(s); ok {
			t.Errorf("ParseCommunityID(%q) accepted", s)
		}
	}
	if _, ok := ParseCommunityID("1:" + strings.Repeat("A", 27) + "="); !ok {
		t.Error("a well-formed Community ID refused")
	}
}
