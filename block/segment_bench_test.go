package block

import (
	"math/rand/v2"
	"testing"
)

// benchPacket returns n pseudo-random bytes (payloads as TLS carries
// them: incompressible), the same for the same seed.
func benchPacket(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// BenchmarkDirWriter appends 4 KiB blocks (the size most blocks close at
// on a busy tap) to 64 MiB segments, as `tapir-sensor --blocks-out` does.
func BenchmarkDirWriter(b *testing.B) {
	enc := newEncoder(b, SpeedFastest)
	var bld Builder
	bld.Reset(Meta{SensorID: "bench"})
	for i := 0; bld.Len() < 4<<10; i++ {
		bld.Append(int64(i)*1000, 200, benchPacket(uint64(i), 200))
	}
	eb, _, err := bld.Encode(enc, nil)
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewDirWriter(DirWriterConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(eb)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(eb); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReadSegment reads a segment of 4 KiB blocks back, as
// `tapir pcap --blocks` does.
func BenchmarkReadSegment(b *testing.B) {
	dir := b.TempDir()
	enc := newEncoder(b, SpeedFastest)
	w, err := NewDirWriter(DirWriterConfig{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	var bld Builder
	for k := range 500 {
		bld.Reset(Meta{SensorID: "bench", Seq: uint32(k)})
		for i := 0; bld.Len() < 4<<10; i++ {
			bld.Append(int64(i)*1000, 200, benchPacket(uint64(k<<16|i), 200))
		}
		eb, _, err := bld.Encode(enc, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Write(eb); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		st, err := ReadDir(dir, func(Meta, *Block) error { return nil })
		if err != nil || st.Blocks != 500 {
			b.Fatal(err, st)
		}
	}
}
