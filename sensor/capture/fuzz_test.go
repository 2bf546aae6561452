package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// FuzzFileSource feeds arbitrary bytes to the file reader: it must never
// panic, every error after the header is io.EOF, ErrTruncated or
// ErrCorrupt, and a classic pcap stream reads exactly as with pcapgo.Reader
// (same packets, same final error).
func FuzzFileSource(f *testing.F) {
	{
		root := testenv.Pcaps(f)
		for _, name := range []string{"zeek/wikipedia.pcap", "zeek/pcapng-multi-interface.pcapng", "gopacket/pcapgo-tests/be/test010.pcapng",
			"gopacket/pcapgo-tests/le/test202.pcapng", "tcpdump/gso-ipv6.pcap", "zeek/linux_dlt_sll2.pcap"} {
			b, err := os.ReadFile(filepath.Join(root, name))
			if err != nil {
				f.Fatal(err)
			}
			if len(b) > 8192 {
				b = b[:8192]
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("input of %d bytes takes over 10s: %x", len(data), data[:min(len(data), 64)]))
			}
		}()
		_, _, _ = compareWithPcapgo(t, "fuzz", data)
		src, err := OpenReader("fuzz", bytes.NewReader(data))
		if err != nil {
			return
		}
		src.Interfaces()
		for i := 0; i < 10000; i++ {
			pkt, ci, err := src.ReadPacket()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("unclassified error: %v", err)
				}
				return
			}
			if len(pkt) != ci.CaptureLength {
				t.Fatalf("len %d, CaptureLength %d", len(pkt), ci.CaptureLength)
			}
		}
	})
}

// FuzzPcapGzip gzips a classic pcap stream, cuts the compressed stream at
// cut (when shorter), and requires FileSource to read it exactly as
// pcapgo.Reader does.
func FuzzPcapGzip(f *testing.F) {
	{
		root := testenv.Pcaps(f)
		for _, name := range []string{"zeek/wikipedia.pcap", "tcpdump/gso-ipv6.pcap", "zeek/linux_dlt_sll2.pcap"} {
			b, err := os.ReadFile(filepath.Join(root, name))
			if err != nil {
				f.Fatal(err)
			}
			if len(b) > 8192 {
				b = b[:8192]
			}
			f.Add(b, uint16(len(b)/3))
			f.Add(b, uint16(0xffff))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		gz := gzipBytes(t, data)
		if int(cut) < len(gz) {
			gz = gz[:cut]
		}
		_, _, _ = compareWithPcapgo(t, "fuzz.gz", gz)
	})
}
