package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// tsharkFrame is one packet as tshark reports it.
type tsharkFrame struct {
	ts          int64
	length, cap int
	iface       int
	encap       string
}

// tsharkFrames runs tshark on path and returns the frames it printed and
// whether it read the whole file without error.
func tsharkFrames(t *testing.T, tshark, path string) ([]tsharkFrame, bool, string) {
	t.Helper()
	cmd := exec.Command(tshark, "-r", path, "-T", "fields",
		"-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.interface_id", "-e", "frame.encap_type")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var frames []tsharkFrame
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 5 {
			t.Fatalf("tshark line %q", line)
		}
		if f[4] == "" {
			continue // not a packet: a pcapng custom block shown as a record
		}
		var fr tsharkFrame
		fr.ts = parseEpochNS(t, f[0])
		fr.length, _ = strconv.Atoi(f[1])
		fr.cap, _ = strconv.Atoi(f[2])
		fr.encap = f[4]
		if len(f) > 3 && f[3] != "" {
			fr.iface, _ = strconv.Atoi(f[3])
		}
		frames = append(frames, fr)
	}
	return frames, err == nil, stderr.String()
}

// parseEpochNS parses tshark's "sec.fraction" epoch exactly into nanoseconds.
func parseEpochNS(t *testing.T, s string) int64 {
	t.Helper()
	if s == "" { // no timestamp (pcapng simple packet block)
		return 0
	}
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		t.Fatalf("epoch %q: %v", s, err)
	}
	frac = (frac + "000000000")[:9]
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		t.Fatalf("epoch %q: %v", s, err)
	}
	return secs*1e9 + ns
}

// capinfosCount returns capinfos -c's packet count, or -1 if it cannot read
// the file.
func capinfosCount(path string) int {
	out, err := exec.Command("capinfos", "-M", "-c", path).Output()
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.Contains(k, "Number of packets") {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err == nil {
				return n
			}
		}
	}
	return -1
}

type readPacket struct {
	info CaptureInfo
	data []byte
}

// readAll reads a capture until the end, recovering a panic as a failure.
func readAll(t *testing.T, path string) (pkts []readPacket, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic reading %s: %v", path, r)
		}
	}()
	src, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	for {
		data, ci, err := src.ReadPacket()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			st, _ := src.Stats()
			if st.Packets != uint64(len(pkts)) {
				t.Errorf("Stats().Packets = %d, read %d", st.Packets, len(pkts))
			}
			return pkts, err
		}
		if len(data) != ci.CaptureLength {
			t.Fatalf("%s packet %d: len(data)=%d CaptureLength=%d", path, len(pkts), len(data), ci.CaptureLength)
		}
		pkts = append(pkts, readPacket{ci, bytes.Clone(data)})
	}
}

func TestFileMatchesTshark(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	testenv.Tool(t, "capinfos")
	for _, path := range testenv.Captures(t) {
		name, _ := filepath.Rel(testenv.Pcaps(t), path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok, stderr := tsharkFrames(t, tshark, path)
			got, err := readAll(t, path)
			if !ok {
				// tshark rejects the file: we must not panic, and must agree
				// on what tshark did read.
				t.Logf("tshark cannot read it (%s); we read %d packets, error %v", strings.TrimSpace(stderr), len(got), err)
				if len(got) < len(want) {
					t.Fatalf("read %d packets, tshark printed %d before failing", len(got), len(want))
				}
				got = got[:len(want)]
			} else {
				if err != nil {
					t.Fatalf("tshark reads it, we fail after %d packets: %v", len(got), err)
				}
				if c := capinfosCount(path); c >= 0 && c != len(got) {
					t.Errorf("capinfos -c says %d packets, read %d", c, len(got))
				}
			}
			if len(got) != len(want) {
				t.Fatalf("read %d packets, tshark %d", len(got), len(want))
			}
			isNg := false
			if src, err := OpenFile(path); err == nil {
				isNg = src.ng != nil
				src.Close()
			}
			// Packets under one tshark encapsulation share one link type of
			// ours, and different encapsulations have different link types.
			encapToLink := map[string]uint16{}
			linkToEncap := map[uint16]string{}
			for i := range want {
				lt, enc := got[i].info.LinkType, want[i].encap
				if l, ok := encapToLink[enc]; ok && l != lt {
					t.Fatalf("packet %d: encap %s has link types %d and %d", i+1, enc, l, lt)
				}
				if e, ok := linkToEncap[lt]; ok && e != enc {
					t.Fatalf("packet %d: link type %d for encaps %s and %s", i+1, lt, e, enc)
				}
				encapToLink[enc], linkToEncap[lt] = lt, enc
				g, w := got[i].info, want[i]
				if g.Timestamp != w.ts || g.Length != w.length || g.CaptureLength != w.cap {
					t.Fatalf("packet %d: got ts=%d len=%d cap=%d, tshark ts=%d len=%d cap=%d",
						i+1, g.Timestamp, g.Length, g.CaptureLength, w.ts, w.length, w.cap)
				}
				if isNg && g.InterfaceIndex != w.iface {
					t.Fatalf("packet %d: interface %d, tshark %d", i+1, g.InterfaceIndex, w.iface)
				}
			}
		})
	}
}

// TestFileTruncated cuts real captures at several offsets: the packets
// before the cut come out intact, then an ErrTruncated error.
func TestFileTruncated(t *testing.T) {
	root := testenv.Pcaps(t)
	files := []string{
		filepath.Join(root, "zeek", "wikipedia.pcap"),
		filepath.Join(root, "zeek", "pcapng-multi-interface.pcapng"),
		filepath.Join(root, "zeek", "echo-connections.pcap.gz"),
		filepath.Join(root, "gopacket", "pcapgo-tests", "be", "test010.pcapng"),
	}
	for _, path := range files {
		whole, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		full, err := readAll(t, path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		gz := strings.HasSuffix(path, ".gz")
		var boundaries map[int]bool
		if !gz {
			boundaries = recordBoundaries(t, whole)
		}
		for _, frac := range []float64{0.001, 0.13, 0.5, 0.77, 0.999} {
			for _, delta := range []int{0, 1, 7} {
				cut := int(float64(len(whole))*frac) + delta
				if cut >= len(whole) {
					continue
				}
				name := fmt.Sprintf("%s@%d", filepath.Base(path), cut)
				t.Run(name, func(t *testing.T) {
					src, err := OpenReader(name, bytes.NewReader(whole[:cut]))
					if err != nil {
						if !errors.Is(err, ErrTruncated) {
							t.Fatalf("open: %v, want ErrTruncated", err)
						}
						return
					}
					n := 0
					for {
						data, ci, err := src.ReadPacket()
						if err == nil {
							if n >= len(full) || !bytes.Equal(data, full[n].data) || ci != full[n].info {
								t.Fatalf("packet %d differs from the whole file's", n)
							}
							n++
							continue
						}
						if err == io.EOF && !gz && boundaries[cut] {
							return // cut between records: a sound, shorter file
						}
						if !errors.Is(err, ErrTruncated) {
							t.Fatalf("after %d packets: %v, want ErrTruncated", n, err)
						}
						if !strings.Contains(err.Error(), fmt.Sprintf("after %d packets", n)) {
							t.Fatalf("error %q does not name the packet count %d", err, n)
						}
						if _, _, err2 := src.ReadPacket(); !errors.Is(err2, ErrTruncated) {
							t.Fatalf("second read after damage: %v", err2)
						}
						break
					}
					if n >= len(full) {
						t.Fatalf("read all %d packets from a truncated file", n)
					}
				})
			}
		}
	}
}

// TestFileStdin reads a gzip-compressed capture from standard input.
func TestFileStdin(t *testing.T) {
	path := filepath.Join(testenv.Pcaps(t), "zeek", "echo-connections.pcap.gz")
	want, err := readAll(t, path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	src, err := OpenFile("-")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	for {
		_, ci, err := src.ReadPacket()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ci != want[n].info {
			t.Fatalf("packet %d: %+v, want %+v", n, ci, want[n].info)
		}
		n++
	}
	if n != len(want) {
		t.Fatalf("read %d packets from stdin, %d from the file", n, len(want))
	}
}

func TestFileNotACapture(t *testing.T) {
	for _, content := range []string{"", "hello world, not a capture", "\x1f\x8b"} {
		_, err := OpenReader("x", strings.NewReader(content))
		if err == nil {
			t.Errorf("%q: no error", content)
		}
	}
}

// recordBoundaries returns the offsets at which a pcap or pcapng file can be
// cut into a sound shorter file: the ends of records or blocks.
func recordBoundaries(t *testing.T, b []byte) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	u32 := func(p []byte, be bool) int {
		if be {
			return int(binary.BigEndian.Uint32(p))
		}
		return int(binary.LittleEndian.Uint32(p))
	}
	if binary.BigEndian.Uint32(b) == 0x0a0d0d0a {
		be := false
		for off := 0; off+12 <= len(b); {
			if binary.BigEndian.Uint32(b[off:]) == 0x0a0d0d0a {
				be = binary.BigEndian.Uint32(b[off+8:]) == 0x1a2b3c4d
			}
			n := u32(b[off+4:], be)
			if n < 12 {
				t.Fatalf("block length %d at %d", n, off)
			}
			off += n
			out[off] = true
		}
		return out
	}
	be := binary.BigEndian.Uint32(b) == 0xa1b2c3d4 || binary.BigEndian.Uint32(b) == 0xa1b23c4d
	for off := 24; off+16 <= len(b); {
		off += 16 + u32(b[off+8:], be)
		out[off] = true
	}
	return out
}
