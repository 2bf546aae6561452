package engine_test

import (
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/netnstest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/engine"
)

// TestLiveReplayMatchesOffline replays shared captures with tcpreplay at a
// fixed rate into a veth pair in private network namespaces; the sensor,
// capturing with two fanout workers on the other end, must count every
// packet tcpreplay sent, with no kernel drop, and report the same flows
// (packets and bytes per 5-tuple) as an offline run of the same file.
func TestLiveReplayMatchesOffline(t *testing.T) {
	testenv.Root(t)
	netnstest.Require(t, "ip", "tcpreplay", "tcpdump")
	for _, name := range []string{"zeek/wikipedia.pcap", "zeek/echo-connections.pcap.gz"} {
		t.Run(name, func(t *testing.T) {
			file := testenv.Plain(t, testenv.Pcap(t, name))
			offline, _, err := runFile(t, file, longTimeouts())
			if err != nil {
				t.Fatal(err)
			}
			want := tsharkoracle.RecordSums(offline.finals())

			pair := netnstest.New(t, netnstest.Options{MTU: 9000})
			lc := capture.DefaultLiveConfig(pair.CaptureIf)
			lc.NumBlocks = 16
			lc.FanoutGroup = 4343
			var live []*capture.LiveSource
			if err := netnstest.Do(pair.CaptureNS, func() (err error) {
				live, err = capture.OpenLiveGroup(lc, 2)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var srcs []capture.Source
			for _, s := range live {
				srcs = append(srcs, s)
				defer s.Close()
			}
			sink := &memSink{}
			e, err := engine.New(longTimeouts(), engine.Dependencies{Sources: srcs, Sink: sink})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Start(); err != nil {
				t.Fatal(err)
			}
			res, err := netnstest.Replay(t, pair.PeerNS, pair.PeerIf, file, 20000, 0)
			if err != nil {
				if serr := e.Stop(); serr != nil {
					t.Errorf("stop engine: %v", serr)
				}
				t.Fatal(err)
			}
			if res.Failed != 0 {
				t.Fatalf("tcpreplay failed %d packets:\n%s", res.Failed, res.Output)
			}
			deadline := time.Now().Add(15 * time.Second)
			for e.Stats().Packets < uint64(res.Sent) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if err := e.Stop(); err != nil {
				t.Fatal(err)
			}
			st := e.Stats()
			var drops, freezes uint64
			for _, s := range st.Sources {
				drops += s.KernelDrops
				freezes += s.QueueFreezes
			}
			t.Logf("sent %d, sensor read %d, kernel drops %d, freezes %d, records %d, blocks %d",
				res.Sent, st.Packets, drops, freezes, st.Records, st.Blocks)
			if st.Packets != uint64(res.Sent) || drops != 0 {
				t.Fatalf("sensor read %d packets with %d kernel drops; tcpreplay sent %d", st.Packets, drops, res.Sent)
			}
			if st.StoredPackets != st.Packets {
				t.Errorf("stored %d of %d packets", st.StoredPackets, st.Packets)
			}
			got := tsharkoracle.RecordSums(sink.finals())
			if len(got) != len(want) {
				t.Errorf("live run has %d conversations, offline %d", len(got), len(want))
			}
			for k, w := range want {
				if g := got[k]; g != w {
					t.Errorf("%s: live %d pkts %d bytes, offline %d pkts %d bytes", k, g.Packets, g.Bytes, w.Packets, w.Bytes)
				}
			}
		})
	}
}
