//go:build linux

package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tapir-sensor/tapir/internal/netnstest"
)

// readAvailable reads src until it times out twice in a row and returns
// how many packets it read.
func readAvailable(t *testing.T, src *LiveSource) int {
	t.Helper()
	n, idle := 0, 0
	for idle < 2 {
		_, _, err := src.ReadPacket()
		switch {
		case err == nil:
			n, idle = n+1, 0
		case errors.Is(err, ErrTimeout):
			idle++
		default:
			t.Fatal(err)
		}
	}
	return n
}

// TestLiveDropCountersExact fills a two-block ring that nobody reads with
// trafgen, then reads what the ring holds: every packet sent is either
// read or counted as a kernel drop, the kernel's received count is what
// was sent, the ring froze, and the counters survive Close.
func TestLiveDropCountersExact(t *testing.T) {
	netnstest.Require(t, "trafgen")
	p := netnstest.New(t, netnstest.Options{MTU: 1500})
	cfg := DefaultLiveConfig(p.CaptureIf)
	cfg.SnapLen = 256
	cfg.BlockSize = 64 << 10
	cfg.FrameSize = 2048
	cfg.NumBlocks = 2
	src := openInNS(t, p.CaptureNS, cfg, 1)[0]
	const sent = 5000
	trafgen(t, p.PeerNS, p.PeerIf, sent)
	time.Sleep(100 * time.Millisecond) // the block timer retires the last block
	read := readAvailable(t, src)
	st, err := src.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d, read %d, stats %+v", sent, read, st)
	if st.Packets != uint64(read) {
		t.Errorf("Stats.Packets %d, read %d", st.Packets, read)
	}
	if st.KernelPackets != sent || st.KernelPackets != st.Packets+st.KernelDrops {
		t.Errorf("kernel received %d, dropped %d, read %d: want received = %d sent = read + dropped", st.KernelPackets, st.KernelDrops, st.Packets, sent)
	}
	if st.KernelDrops == 0 || st.QueueFreezes == 0 {
		t.Errorf("a two-block ring left unread took %d packets without drops (%d) or freezes (%d)", sent, st.KernelDrops, st.QueueFreezes)
	}
	// More traffic after the reader caught up: nothing more is lost.
	trafgen(t, p.PeerNS, p.PeerIf, 100)
	time.Sleep(50 * time.Millisecond)
	read += readAvailable(t, src)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := src.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if after.KernelPackets != sent+100 || after.KernelDrops != st.KernelDrops || after.Packets != uint64(read) {
		t.Errorf("after close: %+v; want %d received, %d dropped, %d read", after, sent+100, st.KernelDrops, read)
	}
}

// vlanFrame is an Ethernet frame carrying UDP in the given tags, outer
// first, each {TPID, TCI}.
func vlanFrame(t *testing.T, tags [][2]uint16, port uint16) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(192, 0, 2, 2), DstIP: net.IPv4(192, 0, 2, 1)}
	udp := &layers.UDP{SrcPort: layers.UDPPort(port), DstPort: 9}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ip, udp, gopacket.Payload(bytes.Repeat([]byte{'x'}, 32))); err != nil {
		t.Fatal(err)
	}
	inner := buf.Bytes()
	frame := append([]byte{}, eth.DstMAC...)
	frame = append(frame, eth.SrcMAC...)
	for _, tag := range tags {
		frame = binary.BigEndian.AppendUint16(frame, tag[0])
		frame = binary.BigEndian.AppendUint16(frame, tag[1])
	}
	frame = binary.BigEndian.AppendUint16(frame, 0x0800)
	return append(frame, inner...)
}

// TestLiveVLANTagExact: the tag the kernel strips (veth untags on
// receive) comes back whole: priority and DEI bits, and an 802.1ad TPID.
func TestLiveVLANTagExact(t *testing.T) {
	frames := [][]byte{
		vlanFrame(t, [][2]uint16{{0x8100, 0xa00a}}, 1000),                   // PCP 5, VID 10
		vlanFrame(t, [][2]uint16{{0x8100, 0x3fff}}, 1001),                   // PCP 1, DEI, VID 4095
		vlanFrame(t, [][2]uint16{{0x88a8, 0x6014}, {0x8100, 0xe005}}, 1002), // QinQ: S-tag PCP 3 VID 20, C-tag PCP 7 VID 5
		vlanFrame(t, nil, 1003),
	}
	file := filepath.Join(t.TempDir(), "vlan.pcap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, int64(i)*1000), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	p := netnstest.New(t, netnstest.Options{MTU: 1500})
	cfg := DefaultLiveConfig(p.CaptureIf)
	cfg.NumBlocks = 4
	c := startCollector(openInNS(t, p.CaptureNS, cfg, 1))
	if res, err := netnstest.Replay(t, p.PeerNS, p.PeerIf, file, 1000, 0); err != nil || res.Sent != len(frames) {
		t.Fatalf("tcpreplay sent %d of %d: %v", res.Sent, len(frames), err)
	}
	c.finish(t, len(frames))
	got := c.pkts[0]
	if len(got) != len(frames) {
		t.Fatalf("captured %d frames, sent %d", len(got), len(frames))
	}
	for i, want := range frames {
		if !bytes.Equal(got[i], want) {
			t.Errorf("frame %d:\n got %x\nwant %x", i, got[i][:20], want[:20])
		}
		if ci := c.infos[0][i]; ci.Length != len(want) || ci.CaptureLength != len(want) {
			t.Errorf("frame %d: lengths %d/%d, want %d", i, ci.CaptureLength, ci.Length, len(want))
		}
	}
}

// TestLiveFilterFromFirstPacket opens a filtered source while traffic
// that the filter rejects is flowing: the filter is attached before the
// socket is bound, so not one rejected packet reaches the ring (nothing
// to discard in userspace).
func TestLiveFilterFromFirstPacket(t *testing.T) {
	netnstest.Require(t, "tcpdump")
	p := netnstest.New(t, netnstest.Options{MTU: 1500})
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- netnstest.Do(p.PeerNS, func() error {
			c, err := net.ListenUDP("udp4", nil)
			if err != nil {
				return err
			}
			defer c.Close()
			msg := make([]byte, 64)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return nil
				default:
				}
				if _, err := c.WriteToUDP(msg, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 53 + i%2}); err != nil {
					return err
				}
				if i%64 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		})
	}()
	time.Sleep(200 * time.Millisecond)
	cfg := DefaultLiveConfig(p.CaptureIf)
	cfg.NumBlocks = 8
	cfg.Filter = "udp dst port 53"
	c := startCollector(openInNS(t, p.CaptureNS, cfg, 1))
	time.Sleep(500 * time.Millisecond)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.finish(t, 0)
	got := c.pkts[0]
	if len(got) == 0 {
		t.Fatal("nothing captured")
	}
	for i, f := range got {
		if len(f) < 38 || binary.BigEndian.Uint16(f[36:]) != 53 {
			t.Fatalf("frame %d of %d passed the filter: %x", i, len(got), f[:min(len(f), 40)])
		}
	}
	st, err := c.srcs[0].Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Discarded != 0 {
		t.Errorf("%d packets reached the ring unfiltered", st.Discarded)
	}
	t.Logf("%d frames to port 53 captured, stats %+v", len(got), st)
}

// TestLiveWaitParksInPoller: a reader waiting for the ring's next block is
// parked in the runtime's network poller ("IO wait"), not blocked in a
// poll(2) system call, which made the runtime hand its P to another
// thread and keep its monitor thread waking every 20 us (a tenth of the
// sensor's CPU live); the wait still ends at the poll timeout.
func TestLiveWaitParksInPoller(t *testing.T) {
	p := netnstest.New(t, netnstest.Options{})
	cfg := DefaultLiveConfig(p.CaptureIf)
	cfg.NumBlocks = 4
	cfg.PollTimeout = 3 * time.Second
	srcs := openInNS(t, p.CaptureNS, cfg, 1)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := srcs[0].ReadPacket()
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	var reader string
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "(*LiveSource).ReadPacket") {
			reader = g
		}
	}
	if !strings.Contains(reader, "[IO wait") {
		t.Errorf("the waiting reader is not parked in the network poller:\n%s", reader)
	}
	if err := <-done; !errors.Is(err, ErrTimeout) {
		t.Fatalf("ReadPacket on an idle interface: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < cfg.PollTimeout-100*time.Millisecond {
		t.Fatalf("ReadPacket timed out after %v, before the poll timeout %v", d, cfg.PollTimeout)
	}
}
