package recordcodec_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/storage/recordcodec"
)

// FuzzDecode: Decode never panics; it fails only with its sentinels; and
// whatever it accepts, Append stores and Decode gives back (the stored
// form of a decoded record is a fixed point). Seeds: testdata/fuzz
// (values of real captures' records, current and legacy; regenerate with
// -update), the golden values and a few broken ones.
//
//	go test ./storage/recordcodec/ -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	for _, v := range [][]byte{nil, {0xff}, {0xff, 1}, {0xff, 2, 0}, {0x0a, 0x10}} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var r flow.Record
		if err := recordcodec.Decode(v, &r); err != nil {
			if !errors.Is(err, recordcodec.ErrCorrupt) && !errors.Is(err, recordcodec.ErrUnknownVersion) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		once, err := recordcodec.Append(nil, &r)
		if err != nil {
			t.Fatalf("a decoded record does not store: %v", err)
		}
		var back flow.Record
		if err := recordcodec.Decode(once, &back); err != nil {
			t.Fatalf("a stored decoded record does not decode: %v", err)
		}
		twice, err := recordcodec.Append(nil, &back)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("stored twice differently (%v):\n%x\n%x", err, once, twice)
		}
	})
}

// TestWriteFuzzSeeds writes the fuzz seeds of the real captures' records
// (with -update): every fourth record, in the current format and the
// legacy one.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("writes testdata/fuzz with -update")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	recs := realRecords(t)
	for i := 0; i < len(recs); i += 4 {
		v, err := recordcodec.Append(nil, &recs[i])
		if err != nil {
			t.Fatal(err)
		}
		writeSeed(t, filepath.Join(dir, fmt.Sprintf("v1-%02d", i)), v)
		writeSeed(t, filepath.Join(dir, fmt.Sprintf("legacy-%02d", i)), legacy(t, &recs[i]))
	}
	r := fixedRecord()
	v, err := recordcodec.Append(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	writeSeed(t, filepath.Join(dir, "v1-fixed"), v)
	writeSeed(t, filepath.Join(dir, "legacy-fixed"), legacy(t, &r))
}

// writeSeed writes one value in the fuzzing engine's corpus format.
func writeSeed(t *testing.T, path string, v []byte) {
	if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", v), 0o644); err != nil {
		t.Fatal(err)
	}
}
