//go:build linux

package ebpf_test

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/netnstest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/ebpf"
	"github.com/tapir-sensor/tapir/sensor/engine"
)

// memSink keeps copies of final records.
type memSink struct {
	mu   sync.Mutex
	recs []flow.Record
}

func (s *memSink) AddRecord(r *flow.Record) error {
	if !r.Reason.Final() {
		return nil
	}
	s.mu.Lock()
	s.recs = append(s.recs, *r)
	s.mu.Unlock()
	return nil
}
func (s *memSink) AddBlock([]byte) error { return nil }

func (s *memSink) byFlow() map[string]flow.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]flow.Record{}
	for _, r := range s.recs {
		m[fmt.Sprintf("%s %s", r.CommunityID, r.Tuple)] = r
	}
	return m
}

// rig is one capture end with two sensors on it in the same run: the
// kernel path (the eBPF program on its socket, MergeSink) and
// the userspace fallback (a plain socket, the same budget in the flow
// table).
type rig struct {
	pair          *netnstest.Pair
	dp            *ebpf.Datapath
	kern, user    *engine.Engine
	kernSink      *memSink
	userSink      *memSink
	kernSrc, uSrc *capture.LiveSource
}

func engineConfig(budget int64, pins *ebpf.Pins, mirrorPort uint16) engine.Config {
	c := engine.DefaultConfig()
	if mirrorPort != 0 {
		c.Decoders = map[string]*decode.Options{"": {Mirror: decode.Mirror{Type: flow.TunnelVXLAN, Port: mirrorPort}}}
	}
	c.Flows.IdleTimeout = time.Hour
	c.Flows.ActiveTimeout = time.Hour
	c.Flows.UpdateInterval = -1
	c.Flows.BudgetBytes = budget
	c.Flows.BudgetExempt = pins.Match
	return c
}

func newRig(t *testing.T, budget int64, cfg ebpf.Config, opts netnstest.Options) *rig {
	t.Helper()
	return newMirrorRig(t, budget, cfg, opts, 0)
}

// newMirrorRig is newRig on a VXLAN mirror interface on mirrorPort (0:
// not a mirror interface), both sensors decoding with the mirror.
func newMirrorRig(t *testing.T, budget int64, cfg ebpf.Config, opts netnstest.Options, mirrorPort uint16) *rig {
	t.Helper()
	r := &rig{pair: netnstest.New(t, opts), kernSink: &memSink{}, userSink: &memSink{}}
	var err error
	cfg.Enable = true
	r.dp, err = ebpf.New(cfg, ebpf.Params{BudgetBytes: budget, MirrorVXLANPort: mirrorPort}, ebpf.Dependencies{})
	if err != nil {
		t.Fatal(err)
	}
	if err := netnstest.Do(r.pair.CaptureNS, func() error {
		if err := r.dp.Start([]string{r.pair.CaptureIf}); err != nil {
			return err
		}
		lc := capture.DefaultLiveConfig(r.pair.CaptureIf)
		lc.NumBlocks = 16
		if r.uSrc, err = capture.OpenLive(lc); err != nil {
			return err
		}
		lc.EBPFFilter = r.dp.SocketFilterFD()
		r.kernSrc, err = capture.OpenLive(lc)
		return err
	}); err != nil {
		if r.uSrc != nil {
			r.uSrc.Close()
		}
		_ = r.dp.Stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.kernSrc.Close()
		r.uSrc.Close()
		_ = r.dp.Stop()
	})
	pins := r.dp.Pins()
	r.kern, err = engine.New(engineConfig(budget, pins, mirrorPort), engine.Dependencies{
		Sources: []capture.Source{r.kernSrc}, Sink: r.dp.WrapSink(r.kernSink)})
	if err != nil {
		t.Fatal(err)
	}
	r.user, err = engine.New(engineConfig(budget, pins, mirrorPort), engine.Dependencies{
		Sources: []capture.Source{r.uSrc}, Sink: r.userSink})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.kern.Start(); err != nil {
		t.Fatal(err)
	}
	if err := r.user.Start(); err != nil {
		t.Fatal(err)
	}
	return r
}

// stop waits until the fallback sensor read want packets (the packets
// sent), then stops both sensors.
func (r *rig) stop(t *testing.T, want uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for r.user.Stats().Packets < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the cut-off sensor's ring
	if err := r.kern.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.user.Stop(); err != nil {
		t.Fatal(err)
	}
}

// compare checks that both paths gave the same final records: packets,
// bytes, stored packets and bytes, TCP flags per direction, budget cuts.
func compare(t *testing.T, kern, user map[string]flow.Record) {
	t.Helper()
	if len(kern) != len(user) {
		t.Errorf("kernel path %d flows, userspace path %d", len(kern), len(user))
	}
	keys := make([]string, 0, len(user))
	for k := range user {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		u, g := user[k], kern[k]
		type view struct {
			src, dst [4]uint64
			sf, df   uint8
			cut      uint64
		}
		v := func(r flow.Record) view {
			return view{[4]uint64{r.Source.Packets, r.Source.Bytes, r.Source.StoredPackets, r.Source.StoredBytes},
				[4]uint64{r.Destination.Packets, r.Destination.Bytes, r.Destination.StoredPackets, r.Destination.StoredBytes},
				r.Source.TCPFlags, r.Destination.TCPFlags, r.BudgetCut}
		}
		if v(u) != v(g) {
			if bad++; bad <= 10 {
				t.Errorf("%s:\n  kernel    %+v\n  userspace %+v", k, v(g), v(u))
			}
		}
	}
}

func sumPackets(m map[string]flow.Record) (pkts, stored uint64) {
	for _, r := range m {
		pkts += r.Source.Packets + r.Destination.Packets
		stored += r.Source.StoredPackets + r.Destination.StoredPackets
	}
	return
}

// TestCutoffReplayMatchesUserspace replays shared captures through a veth
// with a 2 KiB budget: the kernel path's merged records equal the
// userspace fallback's, both count every packet tcpreplay sent, and the
// cut-off kept packets from reaching the first sensor.
func TestCutoffReplayMatchesUserspace(t *testing.T) {
	testenv.Root(t)
	netnstest.Require(t, "tcpreplay")
	for _, name := range []string{"zeek/ssh.pcap", "zeek/wikipedia.pcap", "zeek/mixed-vlan-mpls.pcap"} {
		t.Run(name, func(t *testing.T) {
			file := testenv.Plain(t, testenv.Pcap(t, name))
			r := newRig(t, 2048, ebpf.DefaultConfig(), netnstest.Options{MTU: 9000})
			res, err := netnstest.Replay(t, r.pair.PeerNS, r.pair.PeerIf, file, 20000, 0)
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != 0 {
				t.Fatalf("tcpreplay failed %d packets", res.Failed)
			}
			r.stop(t, uint64(res.Sent))
			kc, _ := r.dp.Counters()
			ks, us := r.kern.Stats(), r.user.Stats()
			t.Logf("sent %d; kernel path read %d, userspace path read %d; kernel: %+v", res.Sent, ks.Packets, us.Packets, kc)
			kern, user := r.kernSink.byFlow(), r.userSink.byFlow()
			up, _ := sumPackets(user)
			kp, _ := sumPackets(kern)
			if up != uint64(res.Sent) || kp != uint64(res.Sent) {
				t.Errorf("flow records count %d (kernel path) and %d (userspace) packets; tcpreplay sent %d", kp, up, res.Sent)
			}
			if (us.StoredPackets < us.Packets) != (kc.CutPackets > 0) || ks.Packets+kc.CutPackets != us.Packets {
				t.Errorf("cut-off dropped %d packets; kernel path read %d, userspace path %d", kc.CutPackets, ks.Packets, us.Packets)
			}
			if kc.MapFull != 0 {
				t.Errorf("map full %d", kc.MapFull)
			}
			compare(t, kern, user)
		})
	}
}

// TestCutoffReplayMirrorMatchesUserspace replays a shared capture
// wrapped in VXLAN, as AWS or Azure traffic mirroring delivers it, to a
// VXLAN mirror interface with a 300-byte budget: the kernel strips the
// mirror encapsulation and cuts the mirrored flows past the budget, and
// the kernel path's merged records equal the userspace fallback's. Before,
// the program left every mirrored frame untracked: nothing was cut.
func TestCutoffReplayMirrorMatchesUserspace(t *testing.T) {
	testenv.Root(t)
	netnstest.Require(t, "tcpreplay")
	file := filepath.Join(t.TempDir(), "mirror.pcap")
	if _, _, err := encaptest.File(encaptest.VXLAN, testenv.Plain(t, testenv.Pcap(t, "zeek/wikipedia.pcap")), file); err != nil {
		t.Fatal(err)
	}
	r := newMirrorRig(t, 300, ebpf.DefaultConfig(), netnstest.Options{MTU: 9000}, decode.PortVXLAN)
	res, err := netnstest.Replay(t, r.pair.PeerNS, r.pair.PeerIf, file, 20000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 {
		t.Fatalf("tcpreplay failed %d packets", res.Failed)
	}
	r.stop(t, uint64(res.Sent))
	kc, _ := r.dp.Counters()
	ks, us := r.kern.Stats(), r.user.Stats()
	t.Logf("sent %d; kernel path read %d, userspace path read %d; kernel: %+v", res.Sent, ks.Packets, us.Packets, kc)
	kern, user := r.kernSink.byFlow(), r.userSink.byFlow()
	if kc.CutPackets == 0 || ks.Packets+kc.CutPackets != us.Packets {
		t.Errorf("cut-off dropped %d mirrored packets (want some); kernel path read %d, userspace path %d", kc.CutPackets, ks.Packets, us.Packets)
	}
	compare(t, kern, user)
}

// iperf runs an iperf3 server in the capture namespace and a client in
// the peer namespace sending bytes to port.
func iperf(t *testing.T, p *netnstest.Pair, port int, bytes string) {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", p.CaptureNS, "iperf3", "-s", "-1", "-p", fmt.Sprint(port))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Wait() }()
	addr := strings.Split(p.CaptureAddr, "/")[0]
	var out []byte
	var err error
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		out, err = netnstest.Exec(p.PeerNS, "iperf3", "-c", addr, "-p", fmt.Sprint(port), "-n", bytes)
		if err == nil {
			return
		}
	}
	_ = srv.Process.Kill()
	t.Fatalf("iperf3 client: %v: %s", err, out)
}

// TestCutoffBulkTransfer sends two bulk transfers with iperf3 across the
// veth, one to a pinned port: with a 64 KiB budget the first sensor is
// handed only the budgeted packets of the unpinned data flow while its
// record reports the same totals as the fallback, which saw every
// packet; the pinned flow arrives whole on both.
func TestCutoffBulkTransfer(t *testing.T) {
	netnstest.Require(t, "iperf3")
	cfg := ebpf.DefaultConfig()
	cfg.Pins.Ports = []uint16{5202}
	r := newRig(t, 64<<10, cfg, netnstest.Options{MTU: 1500, OffloadsOff: true})
	iperf(t, r.pair, 5201, "20M")
	iperf(t, r.pair, 5202, "5M")
	time.Sleep(300 * time.Millisecond)
	r.stop(t, 0)
	kc, _ := r.dp.Counters()
	ks, us := r.kern.Stats(), r.user.Stats()
	t.Logf("kernel path read %d packets, userspace path %d; kernel: %+v", ks.Packets, us.Packets, kc)
	kern, user := r.kernSink.byFlow(), r.userSink.byFlow()
	compare(t, kern, user)
	var bulk, pinned int
	for k, rec := range kern {
		d := rec.Source
		if rec.Destination.Bytes > d.Bytes {
			d = rec.Destination
		}
		switch {
		case rec.Tuple.DstPort == 5201 && d.Bytes > 10<<20:
			bulk++
			if d.StoredBytes > 64<<10+9000 || d.StoredBytes < 64<<10 {
				t.Errorf("%s: stored %d bytes of %d with a 64 KiB budget", k, d.StoredBytes, d.Bytes)
			}
			if all, kept := rec.Source.Packets+rec.Destination.Packets, rec.Source.StoredPackets+rec.Destination.StoredPackets; kept*5 > all {
				t.Errorf("%s: stored %d of %d packets", k, kept, all)
			}
		// iperf3's server closes the data connection as soon as the
		// client reports the end of the test, and the RST cuts whatever
		// was still in flight, so the wire carries less than the 5 MB
		// asked for (3 MB seen under load). Any data flow of over 1 MiB
		// (16 times the budget) shows whether the pin kept it whole.
		case rec.Tuple.DstPort == 5202 && d.Bytes > 1<<20:
			pinned++
			if rec.Source.StoredBytes != rec.Source.Bytes || rec.Destination.StoredBytes != rec.Destination.Bytes || rec.BudgetCut != 0 {
				t.Errorf("%s: pinned flow stored %+v / %+v, %d cut", k, rec.Source, rec.Destination, rec.BudgetCut)
			}
		}
	}
	if bulk != 1 || pinned != 1 {
		for k, rec := range kern {
			t.Logf("record %s: src %+v dst %+v reason %v", k, rec.Source, rec.Destination, rec.Reason)
		}
		t.Errorf("found %d bulk and %d pinned data flows in %d records", bulk, pinned, len(kern))
	}
	if kc.CutPackets == 0 || ks.Packets+kc.CutPackets != us.Packets {
		t.Errorf("the cut-off sensor read %d packets, the fallback %d, the kernel cut %d", ks.Packets, us.Packets, kc.CutPackets)
	}
}

// TestMapFullCounted floods the capture end with UDP packets to 4000
// distinct ports while the kernel flow map holds 1024 flows: the map
// stays bounded, every packet of a flow that found no room is counted as
// map-full, and the sensor still receives (and counts) every packet.
func TestMapFullCounted(t *testing.T) {
	cfg := ebpf.DefaultConfig()
	cfg.MaxFlows = 1024
	r := newRig(t, 512, cfg, netnstest.Options{MTU: 1500})
	const flows = 4000
	dst := strings.Split(r.pair.CaptureAddr, "/")[0]
	if err := netnstest.Do(r.pair.PeerNS, func() error {
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		payload := make([]byte, 100)
		for i := 0; i < flows; i++ {
			if _, err := c.WriteToUDP(payload, &net.UDPAddr{IP: net.ParseIP(dst), Port: 20000 + i}); err != nil {
				return err
			}
			if i%200 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	r.stop(t, 0)
	if _, err := r.dp.Drain(); err != nil {
		t.Fatal(err)
	}
	kc, _ := r.dp.Counters()
	t.Logf("kernel: %+v", kc)
	user := r.userSink.byFlow()
	var udp, kudp uint64
	for _, rec := range user {
		if rec.Tuple.Proto == flow.ProtoUDP && rec.Tuple.DstPort >= 20000 {
			udp += rec.Source.Packets
		}
	}
	for _, rec := range r.kernSink.byFlow() {
		if rec.Tuple.Proto == flow.ProtoUDP && rec.Tuple.DstPort >= 20000 {
			kudp += rec.Source.Packets
		}
	}
	if udp != flows || kudp != flows {
		t.Errorf("sensors counted %d (kernel path) and %d (userspace) of %d flood packets", kudp, udp, flows)
	}
	if kc.NewFlows > uint64(cfg.MaxFlows) {
		t.Errorf("kernel created %d entries in a %d-entry map", kc.NewFlows, cfg.MaxFlows)
	}
	// Each flood packet without an entry is counted once: one program,
	// one lookup per packet.
	if kc.MapFull != flows-uint64(cfg.MaxFlows) {
		t.Errorf("map full counted %d times; want %d", kc.MapFull, flows-cfg.MaxFlows)
	}
}
