package capture

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestReadRecordMatchesReadPacket: over every shared capture, whole and
// cut inside its records, ReadRecord returns what ReadPacket returns
// (bytes, time, lengths, the error and its text, the packet count), and
// RecordLinkType holds the link type of every packet of a classic pcap
// (none for pcapng).
func TestReadRecordMatchesReadPacket(t *testing.T) {
	classic := 0
	for _, path := range testenv.Captures(t) {
		raw, err := os.ReadFile(testenv.Plain(t, path))
		if err != nil {
			t.Fatal(err)
		}
		name := testenv.Rel(t, path)
		for _, cut := range []int{len(raw), len(raw) * 2 / 3, len(raw) - 3} {
			if cut < 24 {
				continue
			}
			if compareReadRecord(t, fmt.Sprintf("%s:%d", name, cut), raw[:cut]) && cut == len(raw) {
				classic++
			}
		}
	}
	if classic == 0 {
		t.Fatal("no classic pcap among the shared captures")
	}
}

// compareReadRecord reads b with both methods and reports whether it is a
// classic pcap.
func compareReadRecord(t *testing.T, name string, b []byte) bool {
	t.Helper()
	a, errA := OpenReader(name, bytes.NewReader(b))
	r, errR := OpenReader(name, bytes.NewReader(b))
	if errA != nil || errR != nil {
		return false
	}
	link, isClassic := r.RecordLinkType()
	for i := 0; ; i++ {
		data, ci, err := a.ReadPacket()
		rdata, ts, caplen, length, rerr := r.ReadRecord()
		if fmt.Sprint(err) != fmt.Sprint(rerr) {
			t.Fatalf("%s packet %d: ReadPacket error %v, ReadRecord %v", name, i, err, rerr)
		}
		if err != nil {
			break
		}
		if !bytes.Equal(data, rdata) || ci.Timestamp != ts || ci.CaptureLength != caplen || ci.Length != length {
			t.Fatalf("%s packet %d: ReadPacket %+v, ReadRecord ts %d caplen %d len %d", name, i, ci, ts, caplen, length)
		}
		if isClassic && (ci.LinkType != link || ci.InterfaceIndex != 0) {
			t.Fatalf("%s packet %d: link type %d interface %d, RecordLinkType %d", name, i, ci.LinkType, ci.InterfaceIndex, link)
		}
	}
	sa, _ := a.Stats()
	sr, _ := r.Stats()
	if sa != sr {
		t.Fatalf("%s: stats %+v and %+v", name, sa, sr)
	}
	return isClassic
}

// TestReadRecordsMatchesReadPacket: over every shared capture, whole,
// cut inside its records and with a record's length corrupted in the
// middle, ReadRecords in batches of 1, 3 and 64 returns the packets
// ReadPacket returns one by one (bytes, times, lengths, all of a batch
// still valid when it is complete), then the same error, and the same
// packet count.
func TestReadRecordsMatchesReadPacket(t *testing.T) {
	batched := 0
	for _, path := range testenv.Captures(t) {
		raw, err := os.ReadFile(testenv.Plain(t, path))
		if err != nil {
			t.Fatal(err)
		}
		name := testenv.Rel(t, path)
		inputs := map[string][]byte{"whole": raw, "cut": raw[:len(raw)*2/3], "cut3": raw[:max(0, len(raw)-3)]}
		if c := corruptMiddleRecord(raw); c != nil {
			inputs["corrupt"] = c
		}
		for kind, b := range inputs {
			for _, size := range []int{1, 3, 64} {
				if compareReadRecords(t, fmt.Sprintf("%s:%s:%d", name, kind, size), b, size) {
					batched++
				}
			}
		}
	}
	if batched == 0 {
		t.Fatal("no batch of more than one packet among the shared captures")
	}
}

// corruptMiddleRecord returns a copy of a little-endian classic pcap
// whose middle record claims a captured length above its original length,
// or nil for other files.
func corruptMiddleRecord(raw []byte) []byte {
	if len(raw) < 24 || !bytes.Equal(raw[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}) {
		return nil
	}
	var offs []int
	for off := 24; off+16 <= len(raw); {
		offs = append(offs, off)
		off += 16 + int(uint32(raw[off+8])|uint32(raw[off+9])<<8|uint32(raw[off+10])<<16|uint32(raw[off+11])<<24)
	}
	if len(offs) < 3 {
		return nil
	}
	c := bytes.Clone(raw)
	at := offs[len(offs)/2]
	c[at+12], c[at+13], c[at+14], c[at+15] = 0, 0, 0, 0 // original length 0
	c[at+8] |= 1                                        // captured length > 0
	return c
}

// compareReadRecords reads b with ReadPacket and with ReadRecords in
// batches of size and reports whether a batch held more than one packet.
func compareReadRecords(t *testing.T, name string, b []byte, size int) bool {
	t.Helper()
	a, errA := OpenReader(name, bytes.NewReader(b))
	r, errR := OpenReader(name, bytes.NewReader(b))
	if errA != nil || errR != nil {
		return false
	}
	if _, ok := r.RecordLinkType(); !ok {
		return false
	}
	recs := make([]Record, size)
	multi := false
	for i := 0; ; {
		n, rerr := r.ReadRecords(recs)
		if n > 1 {
			multi = true
		}
		if (n == 0) != (rerr != nil) || n > size {
			t.Fatalf("%s packet %d: ReadRecords returned %d, %v", name, i, n, rerr)
		}
		for j := range n {
			data, ci, err := a.ReadPacket()
			if err != nil {
				t.Fatalf("%s packet %d: ReadPacket error %v, ReadRecords a packet", name, i, err)
			}
			got := recs[j]
			if !bytes.Equal(data, got.Data) || ci.Timestamp != got.Timestamp || ci.CaptureLength != got.CaptureLength || ci.Length != got.Length {
				t.Fatalf("%s packet %d: ReadPacket %+v, ReadRecords %+v", name, i, ci, got)
			}
			i++
		}
		if rerr != nil {
			_, _, err := a.ReadPacket()
			if fmt.Sprint(err) != fmt.Sprint(rerr) {
				t.Fatalf("%s packet %d: ReadPacket error %v, ReadRecords %v", name, i, err, rerr)
			}
			break
		}
	}
	sa, _ := a.Stats()
	sr, _ := r.Stats()
	if sa != sr {
		t.Fatalf("%s: stats %+v and %+v", name, sa, sr)
	}
	return multi
}
