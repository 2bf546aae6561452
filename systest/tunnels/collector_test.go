package tunnels

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// built are tapir, tapir-collector and tapir-sensor, built once for the
// package.
var built e2etest.Binaries

func TestMain(m *testing.M) {
	e2etest.Main(m, &built, "tapir-tunnels-bin-", "./cmd/tapir", "./cmd/tapir-collector", "./cmd/tapir-sensor")
}

// binDir returns the directory of the built binaries.
func binDir(t *testing.T) string {
	t.Helper()
	built.Need(t)
	return built.Dir
}

// run runs a command to completion and returns its stdout.
func run(t *testing.T, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, e2etest.LastLines(stderr.String(), 10))
	}
	return out
}

// runFlows runs `tapir flows` with args; a search that matched nothing
// (exit 1 saying so, as grep) is an empty answer, any other failure fails
// the test.
func runFlows(t *testing.T, token, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "tapir"), append([]string{"flows"}, args...)...)
	cmd.Env = append(os.Environ(), "TAPIR_TOKEN="+token)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if e2etest.NoFlowsMatched(err, stderr.Bytes()) {
		return nil
	}
	if err != nil {
		t.Fatalf("tapir flows %s: %v\n%s", strings.Join(args, " "), err, e2etest.LastLines(stderr.String(), 10))
	}
	return out
}

// startCollector starts a collector (Pebble store under dir, mTLS ingest
// with pki's server certificate, token API) on free loopback ports and
// returns its ingest and API addresses and an API token.
func startCollector(t *testing.T, bin, dir, pki string) (ingest, apiAddr, token string) {
	t.Helper()
	c := e2etest.StartCollector(t, filepath.Join(bin, "tapir-collector"), e2etest.CollectorOptions{Dir: dir, TLSDir: pki,
		Tokens: map[string]string{"tunnels": "[flows:read, pcap:read]"}})
	return c.Ingest, c.API, c.Tokens["tunnels"]
}

// TestCollectorKeepsTunnelChains: a tunnelled capture streamed by
// tapir-sensor to tapir-collector (Pebble store) comes back from
// `tapir flows` with every flow's tunnel chain, as the sensor wrote it
// to --flows-out: zeek/vxlan.pcap, and a shared capture wrapped in VXLAN
// inside GRE (two levels).
func TestCollectorKeepsTunnelChains(t *testing.T) {
	bin, work := binDir(t), t.TempDir()
	pki := filepath.Join(work, "pki")
	run(t, nil, filepath.Join(bin, "tapir"), "certs", "init", "-dir", pki)
	run(t, nil, filepath.Join(bin, "tapir"), "certs", "server", "-dir", pki, "localhost", "127.0.0.1")
	built := filepath.Join(work, "wikipedia.vxlan-gre.pcap")
	if _, _, err := encaptest.File(encaptest.VXLANInGR, testenv.Pcap(t, "zeek/wikipedia.pcap"), built); err != nil {
		t.Fatal(err)
	}
	caps := map[string]string{"vxlan": testenv.Pcap(t, "zeek/vxlan.pcap"), "vxlan-gre": built}
	ingest, apiAddr, token := startCollector(t, bin, work, pki)
	want := map[string]string{} // community ID -> chain, from --flows-out
	var windows []string        // a query window per capture
	for id, path := range caps {
		run(t, nil, filepath.Join(bin, "tapir"), "certs", "sensor", "-dir", pki, id)
		out := filepath.Join(work, id+".flows.json")
		run(t, nil, filepath.Join(bin, "tapir-sensor"), "-r", path, "--sensor-id", id, "--collector", ingest, "--tls-dir", pki,
			"--spool-dir", filepath.Join(work, "spool-"+id), "--flows-out", out, "--drain-timeout", "30s",
			"--idle-timeout", "87600h", "--active-timeout", "87600h")
		from, to := int64(1<<62), int64(0)
		for _, l := range flowLines(t, readFile(t, out)) {
			if l.final && len(l.tunnels) > 0 {
				want[l.cid] = l.tunnels
			}
			from, to = min(from, l.start.Unix()), max(to, l.end.Unix())
		}
		windows = append(windows, fmt.Sprintf("after %d and before %d", from-1, to+1))
	}
	if len(want) == 0 {
		t.Fatal("the sensor wrote no tunnelled flow")
	}
	var got map[string]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = map[string]string{}
		for _, w := range windows {
			out := runFlows(t, token, bin, "--server", "https://"+apiAddr,
				"--ca", filepath.Join(pki, "ca.pem"), "--json", "--limit", "100000", "--query", w)
			for _, l := range flowLines(t, out) {
				if l.final {
					got[l.cid] = l.tunnels
				}
			}
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for cid, w := range want {
		if g := got[cid]; g != w {
			t.Errorf("flow %s: the collector returns tunnels %s, the sensor wrote %s", cid, g, w)
		}
	}
	t.Logf("%d tunnelled flows came back from the collector with their chains", len(want))

	// The query language selects by tunnel: zeek/vxlan.pcap's VNI 123.
	vni := 0
	for _, c := range want {
		if strings.Contains(c, `"vni":123`) {
			vni++
		}
	}
	var n int
	for _, w := range windows {
		out := runFlows(t, token, bin, "--server", "https://"+apiAddr,
			"--ca", filepath.Join(pki, "ca.pem"), "--json", "--limit", "100000", "--query", w+" and tunnel vxlan and tunnel-id 123")
		for _, l := range flowLines(t, out) {
			if !l.final {
				continue
			}
			n++
			if !strings.Contains(l.tunnels, `"vni":123`) {
				t.Errorf("tunnel-id 123 returns flow %s with tunnels %s", l.cid, l.tunnels)
			}
		}
	}
	if n != vni || vni == 0 {
		t.Errorf("tunnel vxlan and tunnel-id 123: %d flows, the sensor wrote %d", n, vni)
	}
}

// flowLine is what TestCollectorKeepsTunnelChains reads of a flow line:
// its Community ID, whether final, and tapir.tunnels as raw JSON.
type flowLine struct {
	cid        string
	final      bool
	tunnels    string
	start, end time.Time
}

func flowLines(t *testing.T, b []byte) []flowLine {
	t.Helper()
	var out []flowLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v struct {
			Network struct {
				CommunityID string `json:"community_id"`
			} `json:"network"`
			Event struct {
				Start time.Time `json:"start"`
				End   time.Time `json:"end"`
			} `json:"event"`
			Tapir struct {
				Final   bool            `json:"final"`
				Tunnels json.RawMessage `json:"tunnels"`
			} `json:"tapir"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("flow line %q: %v", sc.Bytes(), err)
		}
		out = append(out, flowLine{v.Network.CommunityID, v.Tapir.Final, string(v.Tapir.Tunnels), v.Event.Start, v.Event.End})
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
