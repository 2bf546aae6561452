package pebble

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble"
)

// TestSortedBatchOrder: a sortedBatch adds its operations to the Pebble
// batch in key order, and operations on one key in the order they came,
// so the last one decides the row as it would in a Pebble batch.
func TestSortedBatchOrder(t *testing.T) {
	db, err := pebble.Open(t.TempDir(), &pebble.Options{Merger: refMerger})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sb sortedBatch
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sb.Set([]byte("m"), []byte("1"), nil))
	must(sb.Set([]byte("c"), []byte("1"), nil))
	must(sb.Delete([]byte("m"), nil)) // m: set then deleted
	must(sb.Delete([]byte("x"), nil))
	must(sb.Set([]byte("x"), []byte("2"), nil)) // x: deleted then set
	must(sb.Set([]byte("a"), []byte("3"), nil))
	pb := db.NewBatch()
	must(sb.applyTo(pb))
	if len(sb.ops) != 0 || len(sb.buf) != 0 {
		t.Fatal("applyTo did not empty the batch")
	}
	var keys []string
	r := pb.Reader()
	for {
		kind, k, _, ok, err := r.Next()
		must(err)
		if !ok {
			break
		}
		keys = append(keys, string(k)+map[pebble.InternalKeyKind]string{pebble.InternalKeyKindSet: "=", pebble.InternalKeyKindDelete: "-"}[kind])
	}
	if want := []string{"a=", "c=", "m=", "m-", "x-", "x="}; !slices.Equal(keys, want) {
		t.Fatalf("batch order %v, want %v", keys, want)
	}
	must(pb.Commit(pebble.Sync))
	for k, want := range map[string][]byte{"a": []byte("3"), "c": []byte("1"), "x": []byte("2"), "m": nil} {
		v, c, err := db.Get([]byte(k))
		if want == nil {
			if err != pebble.ErrNotFound {
				t.Errorf("%s: %q %v, want deleted", k, v, err)
			}
			continue
		}
		must(err)
		if !bytes.Equal(v, want) {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
		c.Close()
	}
}

// TestSortedBatchOrdersLikeBytes: the order applyTo adds keys in is
// bytes.Compare's for keys that share long prefixes, differ past the
// first 16 bytes, end in zero bytes or are prefixes of each other (the
// heads compared first are zero-padded), with ties in the order added.
func TestSortedBatchOrdersLikeBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var sb sortedBatch
	type op struct {
		key []byte
		n   int
	}
	var want []op
	for i := range 5000 {
		k := make([]byte, rng.IntN(24))
		for j := range k {
			k[j] = []byte{0, 1, 'a', 0xff}[rng.IntN(4)]
		}
		if err := sb.Set(k, []byte{byte(i), byte(i >> 8)}, nil); err != nil {
			t.Fatal(err)
		}
		want = append(want, op{k, i})
	}
	slices.SortStableFunc(want, func(x, y op) int { return bytes.Compare(x.key, y.key) })
	db, err := pebble.Open(t.TempDir(), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pb := db.NewBatch()
	if err := sb.applyTo(pb); err != nil {
		t.Fatal(err)
	}
	r := pb.Reader()
	for i := 0; ; i++ {
		_, k, v, ok, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if i != len(want) {
				t.Fatalf("%d operations applied, want %d", i, len(want))
			}
			return
		}
		if n := int(v[0]) | int(v[1])<<8; !bytes.Equal(k, want[i].key) || n != want[i].n {
			t.Fatalf("operation %d: key %x (added %d), want %x (added %d)", i, k, n, want[i].key, want[i].n)
		}
	}
}
