package tunnels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/netnstest"
)

// startLive runs tapir-sensor live on the pair's capture end with args
// and returns its log once it says whether the eBPF data path loaded.
func startLive(t *testing.T, pair *netnstest.Pair, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	base := []string{"netns", "exec", pair.CaptureNS, sensor(t), "-i", pair.CaptureIf, "--sensor-id", "ebpf-mirror",
		"--flows-out", filepath.Join(dir, "flows.json"), "--ebpf", "--budget", "1000"}
	p := e2etest.Start(t, "ip", append(base, args...)...)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !p.Exited() {
		log := p.Log.String()
		if strings.Contains(log, "eBPF data path loaded") || strings.Contains(log, "eBPF data path off") {
			p.Stop(10 * time.Second)
			return log
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Stop(10 * time.Second)
	t.Fatalf("tapir-sensor %v did not say whether eBPF loaded:\n%s", args, e2etest.LastLines(p.Log.String(), 10))
	return ""
}

// TestEBPFOnMirrorInterfaces: tapir-sensor --ebpf on a VXLAN mirror
// interface (--mirror vxlan: AWS and Azure traffic mirroring) loads the
// cut-off with the mirror's port, so that the kernel strips the mirror
// encapsulation as the decoder does (sensor/ebpf's
// TestCutoffReplayMirrorMatchesUserspace replays such traffic). On an
// ERSPAN mirror interface, or with a UDP tunnel port the program does
// not know (it would cut the flows inside that tunnel), it turns the
// cut-off off, saying why, and runs the budget in userspace. Before, it
// loaded everywhere and cut nothing on a mirror interface.
func TestEBPFOnMirrorInterfaces(t *testing.T) {
	pair := netnstest.New(t, netnstest.Options{})
	if log := startLive(t, pair); !strings.Contains(log, "eBPF data path loaded") {
		netnstest.SkipOrFail(t, "the eBPF data path does not load here: "+e2etest.LastLines(log, 3))
	}
	if log := startLive(t, pair, "--mirror", "vxlan"); !strings.Contains(log, "eBPF data path loaded") || !strings.Contains(log, "mirror_vxlan_port=4789") {
		t.Errorf("--mirror vxlan: want the eBPF data path loaded with mirror_vxlan_port=4789; log:\n%s", e2etest.LastLines(log, 5))
	}
	for name, c := range map[string]struct {
		yaml, want string
	}{
		"erspan mirror": {"decode:\n  mirror:\n    - {interface: " + pair.CaptureIf + ", encapsulation: erspan}\n",
			"interface " + pair.CaptureIf + " has the mirror encapsulation erspan"},
		"vxlan_ports": {"decode:\n  tunnels:\n    vxlan_ports: [4789, 8472]\n", "vxlan_ports has port 8472"},
	} {
		cfg := filepath.Join(t.TempDir(), "sensor.yaml")
		if err := os.WriteFile(cfg, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		log := startLive(t, pair, "--config", cfg)
		if !strings.Contains(log, "eBPF data path off") || !strings.Contains(log, c.want) {
			t.Errorf("%s: want the eBPF data path off because %q; log:\n%s", name, c.want, e2etest.LastLines(log, 5))
		}
	}
}
