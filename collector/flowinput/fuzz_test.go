package flowinput

import (
	"testing"
	"time"
)

// FuzzDatagram feeds arbitrary datagrams to decoders that already hold
// softflowd's templates (so data sets are decoded, not only missed), as
// NetFlow/IPFIX and as sFlow. Seeds: every datagram softflowd sent for
// a shared capture. Nothing may panic; every datagram is counted.
func FuzzDatagram(f *testing.F) {
	var learn [][]byte // the first datagram of each recording carries its templates
	for _, name := range []string{"softflowd-echo-v5.bin", "softflowd-echo-v9.bin", "softflowd-echo-v10.bin"} {
		dgs := recorded(f, name)
		learn = append(learn, dgs[0])
		for i, d := range dgs {
			if i < 3 {
				f.Add(d)
				f.Add(dataOnly(d))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := testDecoder()
		for _, dg := range learn {
			if _, err := d.Decode(loopback, ProtoNetFlow, dg, time.Now(), nil); err != nil {
				t.Fatalf("learn templates: %v", err)
			}
		}
		before := d.Stats()["127.0.0.1"].Datagrams
		// Fuzzed input mostly fails to decode: only the count is checked.
		_, _ = d.Decode(loopback, ProtoNetFlow, data, time.Now(), nil)
		_, _ = d.Decode(loopback, ProtoSFlow, data, time.Now(), nil)
		if got := d.Stats()["127.0.0.1"].Datagrams; got != before+2 {
			t.Fatalf("datagrams counted %d, want %d", got, before+2)
		}
	})
}
