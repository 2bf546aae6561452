//go:build linux

package capture

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapir-sensor/tapir/internal/netnstest"
)

// trafgenUDP is a trafgen packet configuration: 200-byte broadcast UDP
// frames from 192.0.2.2 to 198.51.100.X, source port 0x30YY to 53, with
// one random byte in the destination address and one in the source port:
// 65,536 flows.
const trafgenUDP = `{
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
  0x08, 0x00,
  0x45, 0x00, const16(186), const16(0), 0x40, 0x00, 0x40, 0x11, csumip(14, 33),
  192, 0, 2, 2,
  198, 51, 100, drnd(),
  0x30, drnd(), const16(53),
  const16(166), const16(0),
  fill(0x61, 158),
}
`

// trafgen sends n packets of trafgenUDP out of iface in ns, pinned to CPU
// 1, as fast as it goes, and returns how many it sent.
func trafgen(t *testing.T, ns, iface string, n int) int {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "udp.cfg")
	if err := os.WriteFile(conf, []byte(trafgenUDP), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := netnstest.Exec(ns, "trafgen", "--dev", iface, "--conf", conf, "-n", strconv.Itoa(n), "--cpus", "1", "-q")
	if err != nil {
		t.Fatalf("trafgen: %v: %s", err, out)
	}
	return n
}

// cpuTime is the user plus system CPU time of this process.
func cpuTime(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLiveReadCost measures the live read path alone: trafgen sends
// TAPIR_LIVE_COST_PACKETS (default 3,000,000) 200-byte UDP packets of
// 65,536 flows over a veth pair at its limit, once read by a LiveSource
// with a consumer that does nothing, once by `tcpdump -w /dev/null`, and
// logs packets received, drops and CPU ns per received packet of each. It
// runs only with TAPIR_LIVE_COST=1 (it takes the machine for a while).
func TestLiveReadCost(t *testing.T) {
	if os.Getenv("TAPIR_LIVE_COST") != "1" {
		t.Skip("set TAPIR_LIVE_COST=1 to measure the live read path")
	}
	netnstest.Require(t, "trafgen", "tcpdump")
	n := 3_000_000
	if v := os.Getenv("TAPIR_LIVE_COST_PACKETS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	p := netnstest.New(t, netnstest.Options{MTU: 9000})
	for round := 0; round < 2; round++ {
		tapirReadCost(t, p, n)
		tcpdumpReadCost(t, p, n)
	}
}

func tapirReadCost(t *testing.T, p *netnstest.Pair, n int) {
	cfg := DefaultLiveConfig(p.CaptureIf)
	src := openInNS(t, p.CaptureNS, cfg, 1)[0]
	var got atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var k int64
		for {
			_, _, err := src.ReadPacket()
			if err == nil {
				k++
				continue
			}
			if !errors.Is(err, ErrTimeout) {
				t.Error(err)
				break
			}
			got.Store(k)
			select {
			case <-stop:
				return
			default:
			}
		}
		got.Store(k)
	}()
	time.Sleep(200 * time.Millisecond)
	c0, w0 := cpuTime(t), time.Now()
	sent := trafgen(t, p.PeerNS, p.PeerIf, n)
	wall := time.Since(w0)
	waitQuiet(func() int64 { return got.Load() })
	close(stop)
	<-done
	cpu := cpuTime(t) - c0
	st, err := src.Stats()
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	rx := got.Load()
	t.Logf("tapir LiveSource (no-op consumer): sent %d in %v (%.0f pps), received %d, kernel drops %d, freezes %d, CPU %v = %.0f ns/packet",
		sent, wall.Round(time.Millisecond), float64(sent)/wall.Seconds(), rx, st.KernelDrops, st.QueueFreezes, cpu.Round(time.Millisecond), float64(cpu.Nanoseconds())/float64(max(rx, 1)))
}

// waitQuiet returns once count has not moved for half a second.
func waitQuiet(count func() int64) {
	last := int64(-1)
	for quiet := 0; quiet < 5; time.Sleep(100 * time.Millisecond) {
		if n := count(); n == last {
			quiet++
		} else {
			last, quiet = n, 0
		}
	}
}

var tcpdumpCaptured = regexp.MustCompile(`(\d+) packets captured`)
var tcpdumpDropped = regexp.MustCompile(`(\d+) packets dropped by kernel`)

func tcpdumpReadCost(t *testing.T, p *netnstest.Pair, n int) {
	var stderr strings.Builder
	cmd := exec.Command("ip", "netns", "exec", p.CaptureNS, "tcpdump", "-i", p.CaptureIf, "-w", "/dev/null")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && !strings.Contains(stderr.String(), "listening on"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	w0 := time.Now()
	sent := trafgen(t, p.PeerNS, p.PeerIf, n)
	wall := time.Since(w0)
	time.Sleep(time.Second)
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Logf("tcpdump: %v", err)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	rx, drops := 0, 0
	if m := tcpdumpCaptured.FindStringSubmatch(stderr.String()); m != nil {
		rx, _ = strconv.Atoi(m[1])
	}
	if m := tcpdumpDropped.FindStringSubmatch(stderr.String()); m != nil {
		drops, _ = strconv.Atoi(m[1])
	}
	t.Logf("tcpdump -w /dev/null: sent %d in %v (%.0f pps), received %d, kernel drops %d, CPU %v = %.0f ns/packet",
		sent, wall.Round(time.Millisecond), float64(sent)/wall.Seconds(), rx, drops, cpu.Round(time.Millisecond), float64(cpu.Nanoseconds())/float64(max(rx, 1)))
}
