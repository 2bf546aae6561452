package e2e

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
)

// frame is one packet as tshark (metadata, flow membership) and tcpdump or
// tshark (bytes) read it.
type frame struct {
	num      int
	epoch    string // frame.time_epoch as tshark prints it
	length   int    // frame.len
	capLen   int    // frame.cap_len
	cid      string // Community ID of the flow it belongs to ("" = not IP)
	tuple    string // the 5-tuple, for messages
	nonFirst bool   // a non-first IP fragment (joined to its datagram's flow)
	data     []byte
}

func (f *frame) String() string {
	return fmt.Sprintf("#%d %s len %d caplen %d", f.num, f.epoch, f.length, f.capLen)
}

// tsharkMeta reads every frame's metadata and flow membership from
// tsharkoracle.Frames (see there for the rules). ok is false when tshark
// failed (a damaged file): the frames it printed before the damage are
// returned.
func tsharkMeta(t testing.TB, path string) (frames []frame, ok bool) {
	t.Helper()
	oracle, ok := tsharkoracle.Frames(t, path)
	frames = make([]frame, len(oracle))
	for i := range oracle {
		o := &oracle[i]
		frames[i] = frame{num: o.Number, epoch: o.Epoch, length: o.Len, capLen: o.CapLen, nonFirst: o.NonFirst}
		if o.IP {
			frames[i].cid, frames[i].tuple = o.CommunityID(), o.Tuple.String()
		}
	}
	return frames, ok
}

// frameBytes returns every frame's captured bytes in file order, from
// tcpdump -xx, or from tshark's raw frame (-T ek -x) for files tcpdump
// cannot read (pcapng with several link types). want is the frame count
// tshark reported.
func frameBytes(t testing.TB, path string, want int) [][]byte {
	t.Helper()
	out, _ := exec.Command(testenv.Tool(t, "tcpdump"), "-r", path, "-nn", "-tt", "-xx").Output()
	if got := parseTcpdumpHex(out); len(got) == want {
		return got
	}
	out, _ = exec.Command(testenv.Tool(t, "tshark"), "-r", path, "-T", "ek", "-x", "-j", "frame").Output()
	var res [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var doc struct {
			Layers struct {
				FrameRaw string `json:"frame_raw"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil || !strings.Contains(sc.Text(), `"layers"`) {
			continue
		}
		b, err := hex.DecodeString(doc.Layers.FrameRaw)
		if err != nil {
			t.Fatalf("tshark frame_raw of %s: %v", path, err)
		}
		res = append(res, b)
	}
	return res
}

// parseTcpdumpHex collects the hex lines ("\t0x0010:  0040 df8e ...")
// of tcpdump -xx output; a line starting with a timestamp starts a packet.
func parseTcpdumpHex(out []byte) [][]byte {
	var res [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if line[0] >= '0' && line[0] <= '9' {
			res = append(res, []byte{})
			continue
		}
		if !strings.HasPrefix(line, "\t0x") || len(res) == 0 {
			continue
		}
		_, hexPart, ok := strings.Cut(line, ":  ")
		if !ok {
			continue
		}
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(hexPart), " ", ""))
		if err != nil {
			return nil
		}
		res[len(res)-1] = append(res[len(res)-1], b...)
	}
	return res
}

// readFrames returns the frames of a capture with metadata and bytes.
func readFrames(t testing.TB, path string) ([]frame, bool) {
	t.Helper()
	frames, ok := tsharkMeta(t, path)
	data := frameBytes(t, path, len(frames))
	if len(data) < len(frames) {
		t.Errorf("%s: tshark read %d frames, the byte dump %d", path, len(frames), len(data))
		frames = frames[:len(data)]
	}
	for i := range frames {
		frames[i].data = data[i]
	}
	return frames, ok
}
