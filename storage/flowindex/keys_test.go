package flowindex_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/flowindex"
	"github.com/tapir-sensor/tapir/storage/flowindex/indextest"
)

// builderRecords returns n records of real shapes (indextest) and their
// record keys (the record's ordinal, big endian, padded).
func builderRecords(t testing.TB, n int) ([]flow.Record, [][]byte) {
	t.Helper()
	g := indextest.New(t, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), 24*time.Hour, n)
	recs := make([]flow.Record, n)
	g.Next(recs)
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = binary.BigEndian.AppendUint64(make([]byte, flowindex.RecordKeyLen-8), uint64(i))
	}
	return recs, keys
}

// builderDigest is the SHA-256 of every key and value Builder flushes
// for recs in batches of per records, with their lengths, in order.
func builderDigest(t testing.TB, recs []flow.Record, keys [][]byte, per int) string {
	t.Helper()
	h := sha256.New()
	b := flowindex.Builder{Seq: 1 << 40}
	var n [8]byte
	write := func(k, v []byte) error {
		for _, p := range [][]byte{k, v} {
			h.Write(binary.BigEndian.AppendUint32(n[:0], uint32(len(p))))
			h.Write(p)
		}
		return nil
	}
	for i := range recs {
		b.Add(&recs[i], keys[i])
		if (i+1)%per == 0 || i == len(recs)-1 {
			if got, want := b.Len(), countKeys(t, &b); got != want {
				t.Fatalf("record %d: Len %d, Flush wrote %d keys", i, got, want)
			}
		}
	}
	b = flowindex.Builder{Seq: 1 << 40}
	for i := range recs {
		b.Add(&recs[i], keys[i])
		if (i+1)%per == 0 || i == len(recs)-1 {
			if err := b.Flush(write); err != nil {
				t.Fatal(err)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// countKeys flushes a copy's worth of b: it returns how many keys Flush
// writes (b is then empty).
func countKeys(t testing.TB, b *flowindex.Builder) int {
	t.Helper()
	n := 0
	if err := b.Flush(func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBuilderOutputUnchanged pins the keys and values Builder writes
// over 20,000 records of real shapes to those of the map-based Builder
// it replaced (digests computed with it): the posting format is on
// disk.
func TestBuilderOutputUnchanged(t *testing.T) {
	recs, keys := builderRecords(t, 20000)
	for _, c := range []struct {
		per  int
		want string
	}{
		{1, "416cb34e38f1158d78f1f598340844125baa30e32cefb0f79eaa7b3a573ec29e"},
		{7, "00add17eecfb1ffb19330c5731ca9fa208bfbebcb6f59e42797113ad2940d48c"},
		{1000, "61c3ac2a164c48eff4b5c469b8f5c071de3ccb13310e666f375c554ff7130882"},
		{4096, "9692d4fdb2e58298bfd70ad5169b274533b790e78e23313e195c4e9f1cb7b447"},
	} {
		if got := builderDigest(t, recs, keys, c.per); got != c.want {
			t.Errorf("batches of %d: digest %s, want %s", c.per, got, c.want)
		}
	}
}

// BenchmarkBuilder is Builder.Add and Flush per record of real shapes,
// in batches of 1000.
func BenchmarkBuilder(b *testing.B) {
	recs, keys := builderRecords(b, 20000)
	var bl flowindex.Builder
	discard := func(_, _ []byte) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(recs)
		bl.Add(&recs[j], keys[j])
		if (i+1)%1000 == 0 {
			if err := bl.Flush(discard); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestBuilderReusesBuffers checks that a warm Builder allocates (almost)
// nothing per record: the map-based one allocated a string, a group and
// its ordinals per distinct term, 18.8 times per record here. (The
// allocation left is in some fields' getters.)
func TestBuilderReusesBuffers(t *testing.T) {
	const per = 1000
	recs, keys := builderRecords(t, per)
	var b flowindex.Builder
	batch := func() {
		for i := range recs {
			b.Add(&recs[i], keys[i])
		}
		if err := b.Flush(func(_, _ []byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	batch() // warm
	if got := testing.AllocsPerRun(5, batch) / per; got > 2 {
		t.Errorf("%.1f allocations per record, want at most 2", got)
	}
}
