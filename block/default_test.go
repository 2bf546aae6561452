package block

import "testing"

// TestDefaultEncoderIsS2: DefaultEncoderConfig compresses with S2, the
// sensor's default blocks.compression, as its doc says.
func TestDefaultEncoderIsS2(t *testing.T) {
	cfg := DefaultEncoderConfig()
	if !cfg.S2 {
		t.Fatalf("DefaultEncoderConfig %+v is not S2", cfg)
	}
	enc, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	codecs := map[byte]int{}
	for _, eb := range encodeGrouped(t, enc, loadCapture(t, "zeek/wikipedia.pcap"), 16<<10) {
		codecs[eb[5]&codecMask]++
	}
	if codecs[codecZstd] != 0 || codecs[codecS2] == 0 {
		t.Fatalf("default encoder codecs %v: want S2 (%d), no zstd (%d)", codecs, codecS2, codecZstd)
	}
}
