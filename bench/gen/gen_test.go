package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"testing"
)

// smallConfig is a trace small enough for unit tests yet concurrent.
func smallConfig() Config {
	c := DefaultConfig()
	c.Flows, c.Open = 2000, 750
	return c
}

// generateBytes runs the generator into memory.
func generateBytes(t *testing.T, cfg Config) ([]byte, []Flow, Stats) {
	t.Helper()
	var buf bytes.Buffer
	pw, err := newPcapWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var flows []Flow
	st, err := Generate(cfg, true, pw.write, func(f *Flow) { flows = append(flows, *f) })
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), flows, st
}

// TestGenerateDeterministic: the same seed gives the same bytes, another
// seed other bytes.
func TestGenerateDeterministic(t *testing.T) {
	a, _, _ := generateBytes(t, smallConfig())
	b, _, _ := generateBytes(t, smallConfig())
	if sha256.Sum256(a) != sha256.Sum256(b) {
		t.Fatal("two runs with seed 1 differ")
	}
	c := smallConfig()
	c.Seed = 2
	d, _, _ := generateBytes(t, c)
	if bytes.Equal(a, d) {
		t.Fatal("seeds 1 and 2 give the same trace")
	}
}

// TestGenerateShape checks the trace against its description and its
// manifest: time order, frame sizes, Open flows at once, every flow
// listed once with its packets, bytes and digest, unique client
// addresses, TCP flows opening with a SYN, both directions, a heavy
// tail.
func TestGenerateShape(t *testing.T) {
	cfg := smallConfig()
	raw, flows, st := generateBytes(t, cfg)
	if st.Flows != cfg.Flows || len(flows) != cfg.Flows {
		t.Fatalf("%d flows, %d in the manifest, want %d", st.Flows, len(flows), cfg.Flows)
	}
	if st.MaxOpen != cfg.Open {
		t.Errorf("at most %d flows open at once, want %d", st.MaxOpen, cfg.Open)
	}
	byClient := make(map[[16]byte]int, len(flows))
	for i := range flows {
		if _, dup := byClient[flows[i].Client]; dup {
			t.Fatalf("client %v in two flows", flows[i].Client)
		}
		byClient[flows[i].Client] = i
	}
	seen := make([]Flow, len(flows))
	digests := make([]hashState, len(flows))
	var prev int64
	packets := 0
	forEachRecord(t, raw, func(ts int64, frame []byte) {
		packets++
		if ts < prev {
			t.Fatalf("packet %d at %d before %d", packets, ts, prev)
		}
		prev = ts
		if len(frame) > 1514 || len(frame) < 54 {
			t.Fatalf("packet %d: %d bytes", packets, len(frame))
		}
		client, dir := clientOf(frame)
		i, ok := byClient[client]
		if !ok {
			t.Fatalf("packet %d: no flow for client %v", packets, client)
		}
		s := &seen[i]
		if s.Packets[0]+s.Packets[1] == 0 && flows[i].Proto == 6 && (dir != 0 || frame[tcpFlagsOffset(frame)] != tcpSYN) {
			t.Fatalf("flow %d does not open with the client's SYN", flows[i].ID)
		}
		s.Packets[dir]++
		s.Bytes[dir] += uint64(len(frame))
		digests[i].add(ts, frame)
	})
	if packets != st.Packets {
		t.Fatalf("%d packets in the pcap, stats say %d", packets, st.Packets)
	}
	var total uint64
	sizes := make([]uint64, len(flows))
	for i := range flows {
		f := &flows[i]
		if seen[i].Packets != f.Packets || seen[i].Bytes != f.Bytes {
			t.Fatalf("flow %d: pcap has %v packets %v bytes, manifest %v %v", f.ID, seen[i].Packets, seen[i].Bytes, f.Packets, f.Bytes)
		}
		if !bytes.Equal(digests[i].sum(), f.Digest) {
			t.Fatalf("flow %d: digest differs from the manifest", f.ID)
		}
		if f.Packets[0] == 0 || f.Packets[1] == 0 {
			t.Fatalf("flow %d is one-way: %v", f.ID, f.Packets)
		}
		sizes[i] = f.Bytes[0] + f.Bytes[1]
		total += sizes[i]
	}
	// Heavy tail: the largest 1 % of the flows carry a fifth of the bytes
	// or more.
	top := topShare(sizes, len(sizes)/100)
	if float64(top) < 0.2*float64(total) {
		t.Errorf("top 1%% of flows carry %.2f of the bytes, want a heavy tail (>= 0.2)", float64(top)/float64(total))
	}
}

// TestChecksum: the ones' complement sum in 32-bit words equals the
// RFC 1071 example.
func TestChecksum(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := fold(checksum(0, b)); got != ^uint16(0xddf2) {
		t.Fatalf("checksum %#04x, want %#04x", got, ^uint16(0xddf2))
	}
}

// forEachRecord walks the records of a classic little-endian µs pcap.
func forEachRecord(t testing.TB, raw []byte, fn func(ts int64, frame []byte)) {
	t.Helper()
	if binary.LittleEndian.Uint32(raw) != 0xa1b2c3d4 {
		t.Fatal("not a little-endian microsecond pcap")
	}
	for off := 24; off < len(raw); {
		sec := int64(binary.LittleEndian.Uint32(raw[off:]))
		usec := int64(binary.LittleEndian.Uint32(raw[off+4:]))
		n := int(binary.LittleEndian.Uint32(raw[off+8:]))
		fn(sec*1e9+usec*1e3, raw[off+16:off+16+n])
		off += 16 + n
	}
}

// clientOf returns the client address of a generated frame and the
// packet's direction (0: from the client).
func clientOf(frame []byte) ([16]byte, int) {
	var a [16]byte
	if frame[12] == 0x86 && frame[13] == 0xdd {
		src, dst := frame[22:38], frame[38:54]
		if bytes.Equal(src[:6], []byte{0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0c}) {
			copy(a[:], src)
			return a, 0
		}
		copy(a[:], dst)
		return a, 1
	}
	src, dst := frame[26:30], frame[30:34]
	if src[0] == 10 {
		copy(a[:], src)
		return a, 0
	}
	copy(a[:], dst)
	return a, 1
}

// tcpFlagsOffset is where a generated TCP frame holds its flags.
func tcpFlagsOffset(frame []byte) int {
	if frame[12] == 0x86 {
		return ethLen + ipv6Len + 13
	}
	return ethLen + ipv4Len + 13
}

// hashState is a flow digest being recomputed.
type hashState struct{ h []byte }

func (s *hashState) add(ts int64, frame []byte) {
	if s.h == nil {
		s.h = make([]byte, 0, 256)
	}
	// Keep the stream and hash once at the end: small traces only.
	var hdr [12]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(ts))
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(frame)))
	s.h = append(append(s.h, hdr[:]...), frame...)
}

func (s *hashState) sum() []byte {
	d := sha256.Sum256(s.h)
	return d[:]
}

// topShare sums the n largest values.
func topShare(v []uint64, n int) uint64 {
	c := slices.Clone(v)
	slices.Sort(c)
	var s uint64
	for _, x := range c[max(0, len(c)-n):] {
		s += x
	}
	return s
}
