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

// TestEBPFOffOnMirrorInterface: the eBPF cut-off keys packets on their
// outer header and leaves mirror encapsulations untracked (see
// bpf.TestMirrorEncapsulationsUntracked), so on a mirror interface it
// would cut and count nothing while reporting itself on. tapir-sensor
// --ebpf turns it off there, saying why, and runs the budget in
// userspace; likewise for a UDP tunnel port the program does not know
// (it would cut the flows inside that tunnel). Without either it loads.
func TestEBPFOffOnMirrorInterface(t *testing.T) {
	pair := netnstest.New(t, netnstest.Options{})
	if log := startLive(t, pair); !strings.Contains(log, "eBPF data path loaded") {
		netnstest.SkipOrFail(t, "the eBPF data path does not load here: "+e2etest.LastLines(log, 3))
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"--mirror vxlan": {[]string{"--mirror", "vxlan"}, "mirror interface"},
		"decode.mirror":  {nil, "interface " + pair.CaptureIf + " is a mirror interface"},
		"vxlan_ports":    {nil, "vxlan_ports has port 8472"},
	} {
		args := c.args
		if args == nil {
			cfg := filepath.Join(t.TempDir(), "sensor.yaml")
			yaml := "decode:\n  mirror:\n    - {interface: " + pair.CaptureIf + ", encapsulation: erspan}\n"
			if name == "vxlan_ports" {
				yaml = "decode:\n  tunnels:\n    vxlan_ports: [4789, 8472]\n"
			}
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			args = []string{"--config", cfg}
		}
		log := startLive(t, pair, args...)
		if !strings.Contains(log, "eBPF data path off") || !strings.Contains(log, c.want) {
			t.Errorf("%s: want the eBPF data path off because %q; log:\n%s", name, c.want, e2etest.LastLines(log, 5))
		}
	}
}
