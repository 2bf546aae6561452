package pebble

import (
	"bytes"
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
