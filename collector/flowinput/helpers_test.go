package flowinput

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// recorded reads datagrams saved by TestRecordDatagrams: each is a
// 4-byte big-endian length and the bytes.
func recorded(t testing.TB, name string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("recorded datagrams: %v (regenerate with TAPIR_RECORD_DATAGRAMS=1 go test -run TestRecordDatagrams)", err)
	}
	var out [][]byte
	for len(raw) >= 4 {
		n := int(binary.BigEndian.Uint32(raw))
		if 4+n > len(raw) {
			break
		}
		out = append(out, raw[4:4+n])
		raw = raw[4+n:]
	}
	return out
}

// recordSoftflowd runs softflowd on a capture and returns the datagrams
// it sent to a UDP socket on 127.0.0.1.
func recordSoftflowd(t *testing.T, pcap string, version int) [][]byte {
	bin := testenv.Tool(t, "softflowd")
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	out, err := exec.Command(bin, "-r", pcap, "-n", "127.0.0.1:"+strconv.Itoa(port), "-v", strconv.Itoa(version), "-d").CombinedOutput()
	if err != nil {
		t.Fatalf("softflowd: %v: %s", err, out)
	}
	var dgs [][]byte
	buf := make([]byte, 65535)
	for {
		if err := c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		dgs = append(dgs, append([]byte(nil), buf[:n]...))
	}
	return dgs
}

var loopback = netip.MustParseAddr("127.0.0.1")

func testDecoder() *Decoder {
	cfg := DefaultConfig()
	m, _ := newMetrics(nil)
	return NewDecoder(cfg, NewTemplates(cfg.MaxTemplates), m)
}

// dataOnly strips template and options-template sets from a v9 or IPFIX
// datagram, fixing the header.
func dataOnly(dg []byte) []byte {
	version := binary.BigEndian.Uint16(dg)
	hdr := 20
	if version == 10 {
		hdr = 16
	}
	out := append([]byte(nil), dg[:hdr]...)
	for off := hdr; off+4 <= len(dg); {
		id, l := binary.BigEndian.Uint16(dg[off:]), int(binary.BigEndian.Uint16(dg[off+2:]))
		if l < 4 || off+l > len(dg) {
			break
		}
		if id >= 256 {
			out = append(out, dg[off:off+l]...)
		}
		off += l
	}
	if version == 10 {
		binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	}
	return out
}
