package decode

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// requireAll reports whether missing tools or data must fail the test
// instead of skipping it (make test and CI set TAPIR_REQUIRE_ALL=1).
func requireAll() bool { return os.Getenv("TAPIR_REQUIRE_ALL") == "1" }

// skipOrFail skips the test with reason, or fails it under TAPIR_REQUIRE_ALL.
func skipOrFail(tb testing.TB, reason string) {
	tb.Helper()
	if requireAll() {
		tb.Fatalf("TAPIR_REQUIRE_ALL=1 but %s", reason)
	}
	tb.Skip(reason)
}

// requireTool returns the path of an executable or skips (fails under
// TAPIR_REQUIRE_ALL).
func requireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		skipOrFail(tb, name+" not installed")
	}
	return p
}

// pcapsDir locates the shared captures: $TAPIR_PCAPS, else ../shared/pcaps
// relative to the repository root (the directory holding go.mod).
func pcapsDir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("TAPIR_PCAPS"); d != "" {
		if _, err := os.Stat(d); err != nil {
			skipOrFail(tb, "TAPIR_PCAPS="+d+" not found")
		}
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			skipOrFail(tb, "repository root (go.mod) not found")
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "pcaps")
	if _, err := os.Stat(d); err != nil {
		skipOrFail(tb, "shared pcaps not found at "+d)
	}
	return d
}

// capturePaths lists every capture under dir, recursively, sorted.
func capturePaths(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n := d.Name()
		if !d.IsDir() && (strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcap.gz") ||
			strings.HasSuffix(n, ".pcapng")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(out)
	if len(out) == 0 {
		skipOrFail(tb, "no captures under "+dir)
	}
	return out
}

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
	dir := pcapsDir(tb)
	paths := capturePaths(tb, dir)
	loadOnce.Do(func() {
		for _, p := range paths {
			pk, err := readCapture(p)
			rel, _ := filepath.Rel(dir, p)
			loaded = append(loaded, loadedCapture{path: rel, packets: pk, err: err})
		}
	})
	return loaded
}
