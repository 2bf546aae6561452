package decode

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// capPacket is one packet read from a capture file.
type capPacket struct {
	link    LinkType
	data    []byte
	wireLen int
}

// readCapture reads every packet of a pcap, pcap.gz or pcapng file. It
// returns the packets read before any error along with the error.
func readCapture(path string) ([]capPacket, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	var out []capPacket
	r := bufio.NewReader(bytes.NewReader(raw))
	if len(raw) >= 4 && bytes.Equal(raw[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, err
		}
		for {
			data, ci, err := ng.ReadPacketData()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return out, nil
				}
				return out, err
			}
			lt := ng.LinkType()
			if len(ci.AncillaryData) > 0 {
				if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
					lt = l
				}
			}
			out = append(out, capPacket{link: LinkType(lt), data: data, wireLen: ci.Length})
		}
	}
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, err
	}
	for {
		data, ci, err := pr.ReadPacketData()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, capPacket{link: LinkType(pr.LinkType()), data: data, wireLen: ci.Length})
	}
}

type loadedCapture struct {
	path    string // relative to the pcaps folder
	packets []capPacket
	err     error
}

var (
	loadOnce sync.Once
	loaded   []loadedCapture
)

// allCaptures reads every shared capture once per test binary.
func allCaptures(tb testing.TB) []loadedCapture {
	tb.Helper()
	dir := testenv.Pcaps(tb)
	paths := testenv.Captures(tb)
	loadOnce.Do(func() {
		for _, p := range paths {
			pk, err := readCapture(p)
			rel, _ := filepath.Rel(dir, p)
			loaded = append(loaded, loadedCapture{path: rel, packets: pk, err: err})
		}
	})
	return loaded
}
