//go:build linux

package capture

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tapir-sensor/tapir/internal/netnstest"
)

// collector reads sources until stopped, keeping copies of every frame.
type collector struct {
	srcs  []*LiveSource
	mu    sync.Mutex
	pkts  [][][]byte // per source
	infos [][]CaptureInfo
	errs  []error
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startCollector(srcs []*LiveSource) *collector {
	c := &collector{srcs: srcs, pkts: make([][][]byte, len(srcs)), infos: make([][]CaptureInfo, len(srcs)), stop: make(chan struct{})}
	for i, s := range srcs {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case <-c.stop:
					return
				default:
				}
				data, ci, err := s.ReadPacket()
				if errors.Is(err, ErrTimeout) {
					continue
				}
				if err != nil {
					c.mu.Lock()
					c.errs = append(c.errs, err)
					c.mu.Unlock()
					return
				}
				if len(data) != ci.CaptureLength {
					c.mu.Lock()
					c.errs = append(c.errs, fmt.Errorf("len(data) %d != CaptureLength %d", len(data), ci.CaptureLength))
					c.mu.Unlock()
				}
				c.mu.Lock()
				c.pkts[i] = append(c.pkts[i], bytes.Clone(data))
				c.infos[i] = append(c.infos[i], ci)
				c.mu.Unlock()
			}
		}()
	}
	return c
}

func (c *collector) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.pkts {
		n += len(p)
	}
	return n
}

// finish waits until want packets arrived or the count stops moving, then
// stops the readers and closes the sources.
func (c *collector) finish(t *testing.T, want int) {
	t.Helper()
	last, still := -1, 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		n := c.total()
		if n >= want && want > 0 {
			break
		}
		if n == last {
			if still++; still > 20 {
				break
			}
		} else {
			last, still = n, 0
		}
	}
	time.Sleep(200 * time.Millisecond) // anything extra would show up now
	close(c.stop)
	c.wg.Wait()
	for _, err := range c.errs {
		t.Error(err)
	}
}

func openInNS(t *testing.T, ns string, cfg LiveConfig, workers int) []*LiveSource {
	t.Helper()
	var srcs []*LiveSource
	err := netnstest.Do(ns, func() (err error) {
		srcs, err = OpenLiveGroup(cfg, workers)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range srcs {
			s.Close()
		}
	})
	return srcs
}

// fileFrames reads every frame of a capture.
func fileFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	pkts, err := readAll(t, path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(pkts))
	for i, p := range pkts {
		out[i] = p.data
	}
	return out
}

func frameCounts(frames [][]byte) map[[32]byte]int {
	m := map[[32]byte]int{}
	for _, f := range frames {
		m[sha256.Sum256(f)]++
	}
	return m
}

// flowKey is a direction-free key of an IP packet's addresses, protocol
// and ports, "" for non-IP frames.
func flowKey(data []byte) string {
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
	nl := p.NetworkLayer()
	if nl == nil {
		return ""
	}
	a, b := nl.NetworkFlow().Endpoints()
	ea, eb := a.String(), b.String()
	if tl := p.TransportLayer(); tl != nil {
		pa, pb := tl.TransportFlow().Endpoints()
		ea, eb = ea+":"+pa.String(), eb+":"+pb.String()
	}
	if ea > eb {
		ea, eb = eb, ea
	}
	return ea + "|" + eb
}

func TestLiveReplayFanout(t *testing.T) {
	root := testenv.Pcaps(t)
	for _, name := range []string{"zeek/wikipedia.pcap", "zeek/echo-connections.pcap.gz"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			testenv.Tool(t, "tcpdump")
			file := filepath.Join(root, name)
			if strings.HasSuffix(file, ".gz") {
				file = testenv.Plain(t, file)
			}
			want := fileFrames(t, file)
			p := netnstest.New(t, netnstest.Options{MTU: 9000})
			cfg := DefaultLiveConfig(p.CaptureIf)
			cfg.NumBlocks = 16
			cfg.FanoutGroup = 4242
			srcs := openInNS(t, p.CaptureNS, cfg, 2)
			c := startCollector(srcs)
			res, err := netnstest.Replay(t, p.PeerNS, p.PeerIf, file, 20000, 0)
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != 0 || res.Sent != len(want) {
				t.Fatalf("tcpreplay sent %d failed %d of %d\n%s", res.Sent, res.Failed, len(want), res.Output)
			}
			c.finish(t, res.Sent)
			var drops, kernel uint64
			for i, s := range srcs {
				st, err := s.Stats()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("socket %d: %+v", i, st)
				drops += st.KernelDrops
				kernel += st.KernelPackets
				if st.Packets != uint64(len(c.pkts[i])) {
					t.Errorf("socket %d: Stats.Packets %d, read %d", i, st.Packets, len(c.pkts[i]))
				}
			}
			got := c.total()
			if got != res.Sent || drops != 0 {
				t.Fatalf("captured %d packets (kernel %d, drops %d), tcpreplay sent %d", got, kernel, drops, res.Sent)
			}
			// Same frames, byte for byte.
			all := append(append([][]byte{}, c.pkts[0]...), c.pkts[1]...)
			wantCounts, gotCounts := frameCounts(want), frameCounts(all)
			for h, n := range wantCounts {
				if gotCounts[h] != n {
					t.Fatalf("a frame of the file was captured %d times, present %d times in the file", gotCounts[h], n)
				}
			}
			// Each flow on one socket.
			owner := map[string]int{}
			for i := range c.pkts {
				for _, f := range c.pkts[i] {
					k := flowKey(f)
					if k == "" {
						continue
					}
					if o, ok := owner[k]; ok && o != i {
						t.Fatalf("flow %s on sockets %d and %d", k, o, i)
					}
					owner[k] = i
				}
			}
			t.Logf("%d flows, socket packet counts %d/%d", len(owner), len(c.pkts[0]), len(c.pkts[1]))
			if len(owner) > 4 && (len(c.pkts[0]) == 0 || len(c.pkts[1]) == 0) {
				t.Errorf("fanout left a socket idle over %d flows", len(owner))
			}
		})
	}
}

// TestLiveFilter checks that "tcp port 80" passes exactly the frames that
// tshark's display filter selects from the same file, in order.
func TestLiveFilter(t *testing.T) {
	tshark := testenv.Tool(t, "tshark")
	testenv.Tool(t, "tcpdump")
	file := filepath.Join(testenv.Pcaps(t), "zeek", "wikipedia.pcap")
	out, err := exec.Command(tshark, "-r", file, "-Y", "tcp.port == 80 && !icmp && !icmpv6", "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		t.Fatal(err)
	}
	frames := fileFrames(t, file)
	var want [][]byte
	for _, f := range strings.Fields(string(out)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, frames[n-1])
	}
	if len(want) == 0 || len(want) == len(frames) {
		t.Fatalf("tshark selected %d of %d frames: not a useful filter test", len(want), len(frames))
	}
	p := netnstest.New(t, netnstest.Options{MTU: 9000})
	cfg := DefaultLiveConfig(p.CaptureIf)
	cfg.NumBlocks = 8
	cfg.Filter = "tcp port 80"
	srcs := openInNS(t, p.CaptureNS, cfg, 1)
	c := startCollector(srcs)
	res, err := netnstest.Replay(t, p.PeerNS, p.PeerIf, file, 20000, 0)
	if err != nil || res.Sent != len(frames) {
		t.Fatalf("tcpreplay sent %d of %d: %v", res.Sent, len(frames), err)
	}
	c.finish(t, len(want))
	got := c.pkts[0]
	if len(got) != len(want) {
		t.Fatalf("filter passed %d frames, tshark selects %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs from tshark's selection", i)
		}
	}
}

func TestLiveBadFilter(t *testing.T) {
	testenv.Tool(t, "tcpdump")
	p := netnstest.New(t, netnstest.Options{})
	cfg := DefaultLiveConfig(p.CaptureIf)
	cfg.Filter = "tcp prt 80"
	err := netnstest.Do(p.CaptureNS, func() error {
		_, err := OpenLive(cfg)
		return err
	})
	if !errors.Is(err, ErrBadFilter) || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("bad filter: %v", err)
	}
}

// TestLiveIdleTimeout: an idle interface yields ErrTimeout, not a hang.
func TestLiveIdleTimeout(t *testing.T) {
	p := netnstest.New(t, netnstest.Options{})
	cfg := DefaultLiveConfig(p.CaptureIf)
	cfg.NumBlocks = 4
	cfg.PollTimeout = 200 * time.Millisecond
	srcs := openInNS(t, p.CaptureNS, cfg, 1)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 3; i++ {
			if _, _, err := srcs[0].ReadPacket(); err != ErrTimeout {
				done <- fmt.Errorf("read %d on an idle interface: %v, want ErrTimeout", i, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ReadPacket hangs on an idle interface")
	}
}

// TestLiveVLAN replays VLAN-tagged captures (802.1Q, priority-tagged VID 0,
// Q-in-Q, triple tags) onto the veth: the kernel moves the outer tag out of
// the frame on receive, and the source must put it back, so every captured
// frame equals the file's with the same VLAN IDs. The stripped tag's
// priority bits and TPID are not reported by afpacket, so those bits are
// masked in the comparison (and logged when they differ).
func TestLiveVLAN(t *testing.T) {
	root := testenv.Pcaps(t)
	for _, off := range []bool{false, true} {
		for _, name := range []string{"zeek/http-vlan-0.pcap", "zeek/q-in-q.pcap", "suricata-verify/eve-flow-vlan-02/input.pcap", "zeek/mixed-vlan-mpls.pcap"} {
			t.Run(fmt.Sprintf("%s/offloads-off=%v", name, off), func(t *testing.T) {
				if off {
					testenv.Tool(t, "ethtool")
				}
				file := filepath.Join(root, name)
				want := fileFrames(t, file)
				p := netnstest.New(t, netnstest.Options{MTU: 9000, OffloadsOff: off})
				cfg := DefaultLiveConfig(p.CaptureIf)
				cfg.NumBlocks = 4
				srcs := openInNS(t, p.CaptureNS, cfg, 1)
				c := startCollector(srcs)
				res, err := netnstest.Replay(t, p.PeerNS, p.PeerIf, file, 1000, 0)
				if err != nil || res.Sent != len(want) {
					t.Fatalf("tcpreplay sent %d of %d: %v", res.Sent, len(want), err)
				}
				c.finish(t, len(want))
				got := c.pkts[0]
				if len(got) != len(want) {
					t.Fatalf("captured %d frames, sent %d", len(got), len(want))
				}
				tagged, masked := 0, 0
				for i := range want {
					w, g := want[i], got[i]
					if ci := c.infos[0][i]; ci.CaptureLength != len(g) || ci.Length != len(w) {
						t.Fatalf("frame %d: info %+v, file frame %d bytes", i, ci, len(w))
					}
					if len(g) != len(w) {
						t.Fatalf("frame %d: %d bytes, sent %d", i, len(g), len(w))
					}
					outer := len(w) >= 16 && (w[12] == 0x81 && w[13] == 0x00 || w[12] == 0x88 && w[13] == 0xa8)
					if outer {
						tagged++
						if !bytes.Equal(g[:12], w[:12]) || g[14]&0x0f != w[14]&0x0f || g[15] != w[15] || !bytes.Equal(g[16:], w[16:]) {
							t.Fatalf("frame %d: tagged frame differs\n got %x\nwant %x", i, g[:min(32, len(g))], w[:min(32, len(w))])
						}
						if !bytes.Equal(g[12:15], w[12:15]) {
							masked++
						}
						continue
					}
					if !bytes.Equal(g, w) {
						t.Fatalf("frame %d differs", i)
					}
				}
				if tagged == 0 {
					t.Fatal("no tagged frames in the test capture")
				}
				t.Logf("%d frames, %d tagged, %d with priority/TPID bits lost", len(want), tagged, masked)
			})
		}
	}
}

// TestLiveGSO: veth passes GSO super-packets larger than the MTU; the
// default ring captures them whole, and every payload byte sent arrives.
func TestLiveGSO(t *testing.T) {
	p := netnstest.New(t, netnstest.Options{MTU: 1500})
	cfg := DefaultLiveConfig(p.CaptureIf)
	cfg.NumBlocks = 16
	srcs := openInNS(t, p.CaptureNS, cfg, 1)
	var ln net.Listener
	if err := netnstest.Do(p.CaptureNS, func() (err error) {
		ln, err = net.Listen("tcp4", "192.0.2.1:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, conn)
			conn.Close()
		}
	}()
	c := startCollector(srcs)
	const total = 4 << 20
	if err := netnstest.Do(p.PeerNS, func() error {
		conn, err := net.Dial("tcp4", "192.0.2.1:8080")
		if err != nil {
			return err
		}
		buf := make([]byte, 256<<10)
		for sent := 0; sent < total; sent += len(buf) {
			if _, err := conn.Write(buf); err != nil {
				return err
			}
		}
		return conn.Close()
	}); err != nil {
		t.Fatal(err)
	}
	c.finish(t, 0)
	// Every byte sent toward the server must be covered by captured
	// segments (retransmissions may repeat some).
	type span struct{ from, to int64 }
	var spans []span
	var isn int64 = -1
	biggest := 0
	for i, f := range c.pkts[0] {
		ci := c.infos[0][i]
		if ci.CaptureLength != ci.Length {
			t.Fatalf("frame %d truncated: %d of %d bytes", i, ci.CaptureLength, ci.Length)
		}
		biggest = max(biggest, ci.Length)
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && tcp.DstPort == 8080 {
			if tcp.SYN {
				isn = int64(tcp.Seq) + 1
			} else if len(tcp.Payload) > 0 && isn >= 0 {
				from := (int64(tcp.Seq) - isn) & 0xffffffff
				spans = append(spans, span{from, from + int64(len(tcp.Payload))})
			}
		}
	}
	t.Logf("%d frames, largest %d bytes", len(c.pkts[0]), biggest)
	if isn < 0 {
		t.Fatal("no SYN captured")
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
	var covered int64
	for _, sp := range spans {
		if sp.from > covered {
			t.Fatalf("bytes %d..%d of the stream not captured", covered, sp.from)
		}
		covered = max(covered, sp.to)
	}
	if covered != total {
		t.Fatalf("captured stream bytes 0..%d, sent %d", covered, total)
	}
	if biggest <= 1514 {
		t.Logf("no super-packet seen (GSO off on this kernel?)")
	}
}
