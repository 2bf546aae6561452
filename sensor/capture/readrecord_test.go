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
