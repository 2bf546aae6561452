package testenv

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
)

// Packet is one record of a capture file: its capture information and
// bytes.
type Packet struct {
	Info gopacket.CaptureInfo
	Data []byte
}

// ReadPcap returns the link type and every record of a classic pcap
// file, in file order; it fails the test on an error.
func ReadPcap(t testing.TB, path string) (uint16, []Packet) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []Packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return uint16(r.LinkType()), out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, Packet{Info: ci, Data: data})
	}
}

// Frames returns the bytes of every record of a classic pcap file.
func Frames(t testing.TB, path string) [][]byte {
	t.Helper()
	_, pkts := ReadPcap(t, path)
	out := make([][]byte, len(pkts))
	for i, p := range pkts {
		out[i] = p.Data
	}
	return out
}
