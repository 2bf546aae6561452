package capture

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"

	"github.com/gopacket/gopacket/pcapgo"
)

// echoPcap gunzips zeek/echo-connections.pcap.gz to a temp file.
func echoPcap(b *testing.B) string {
	b.Helper()
	return testenv.Plain(b, filepath.Join(testenv.Pcaps(b), "zeek", "echo-connections.pcap.gz"))
}

// BenchmarkFileSource reads echo-connections with FileSource.ReadPacket;
// ns/op is per packet.
func BenchmarkFileSource(b *testing.B) { benchFileSource(b, echoPcap(b)) }

// BenchmarkFileSourceGzip reads echo-connections.pcap.gz as shipped (gzip
// decompression included); ns/op is per packet.
func BenchmarkFileSourceGzip(b *testing.B) {
	benchFileSource(b, filepath.Join(testenv.Pcaps(b), "zeek", "echo-connections.pcap.gz"))
}

// benchFileSource reads b.N packets of path with FileSource, reopening it
// at its end.
func benchFileSource(b *testing.B, path string) {
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for n < b.N {
		src, err := OpenFile(path)
		if err != nil {
			b.Fatal(err)
		}
		for n < b.N {
			if _, _, err := src.ReadPacket(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n++
		}
		src.Close()
	}
}

// BenchmarkPcapgoReadPacketData is the baseline: pcapgo's copying reader.
func BenchmarkPcapgoReadPacketData(b *testing.B) {
	path := echoPcap(b)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for n < b.N {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r, err := pcapgo.NewReader(f)
		if err != nil {
			b.Fatal(err)
		}
		for n < b.N {
			if _, _, err := r.ReadPacketData(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n++
		}
		f.Close()
	}
}
