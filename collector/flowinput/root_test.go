package flowinput

import (
	"path/filepath"
	"testing"
	"time"
)

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Enabled, c.NetFlow, c.IPFIX, c.SFlow = true, "", "", ""
	if err := c.Validate(); err == nil {
		t.Fatal("enabled without listeners validated")
	}
}

// TestTemplatePersistence: templates learned from softflowd's real
// datagrams are saved; a new decoder that loads them decodes the
// data-only datagrams (template sets stripped) into the same records,
// while one without them decodes none and counts template misses.
func TestTemplatePersistence(t *testing.T) {
	for _, name := range []string{"softflowd-echo-v9.bin", "softflowd-echo-v10.bin"} {
		t.Run(name, func(t *testing.T) {
			dgs := recorded(t, name)
			first := testDecoder()
			var want int
			for _, d := range dgs {
				out, err := first.Decode(loopback, ProtoNetFlow, d, time.Now(), nil)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				want += len(out)
			}
			if want == 0 {
				t.Fatal("no records in the recording")
			}
			path := filepath.Join(t.TempDir(), "templates.json")
			if err := first.templates.Save(path); err != nil {
				t.Fatal(err)
			}

			restarted := testDecoder()
			n, err := restarted.templates.Load(path)
			if err != nil || n == 0 {
				t.Fatalf("load: %d templates, %v", n, err)
			}
			cold := testDecoder()
			got, coldGot := 0, 0
			for _, d := range dgs {
				data := dataOnly(d)
				out, err := restarted.Decode(loopback, ProtoNetFlow, data, time.Now(), nil)
				if err != nil {
					t.Fatalf("decode after restart: %v", err)
				}
				got += len(out)
				out, _ = cold.Decode(loopback, ProtoNetFlow, data, time.Now(), nil)
				coldGot += len(out)
			}
			if got != want {
				t.Errorf("after restart: %d records, want %d", got, want)
			}
			if st := cold.Stats()["127.0.0.1"]; coldGot != 0 || st.TemplateMisses == 0 {
				t.Errorf("without templates: %d records, stats %+v", coldGot, st)
			}
		})
	}
}

// TestMalformedCounted: truncated datagrams, random bytes and unknown
// versions are counted as decode errors per exporter; nothing panics.
func TestMalformedCounted(t *testing.T) {
	d := testDecoder()
	dgs := recorded(t, "softflowd-echo-v5.bin")
	bad := [][]byte{{}, {0, 5}, {0, 9, 0}, {0, 42, 0, 0}, dgs[0][:30], dgs[0][:24+48*2+5]}
	for i, b := range bad {
		if _, err := d.Decode(loopback, ProtoNetFlow, b, time.Now(), nil); err == nil {
			t.Errorf("bad datagram %d decoded without error", i)
		}
	}
	if _, err := d.Decode(loopback, ProtoSFlow, []byte{0, 0, 0, 5, 0, 0, 0, 9}, time.Now(), nil); err == nil {
		t.Error("bad sFlow datagram decoded without error")
	}
	st := d.Stats()["127.0.0.1"]
	if st.Datagrams != uint64(len(bad)+1) || st.DecodeErrors != uint64(len(bad)+1) {
		t.Fatalf("stats %+v after %d bad datagrams", st, len(bad)+1)
	}
}
