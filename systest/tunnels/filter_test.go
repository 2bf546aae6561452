package tunnels

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
	"github.com/tapir-sensor/tapir/sensor/engine"
)

// runFilterSensor reads path with tapir-sensor --config holding
// decode.tunnel_filter expr and returns the packets stored in its
// --blocks-out directory (every packet kept is stored once).
func runFilterSensor(t *testing.T, path, expr string) int {
	t.Helper()
	dir := t.TempDir()
	cfg, blocks := filepath.Join(dir, "sensor.yaml"), filepath.Join(dir, "blocks")
	yaml := fmt.Sprintf("sensor_id: filter\nflows:\n  idle_timeout: 87600h\n  active_timeout: 87600h\ndecode:\n  tunnel_filter: %q\n", expr)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if log, err := exec.CommandContext(ctx, sensor(t), "--config", cfg, "-r", path, "--blocks-out", blocks).CombinedOutput(); err != nil {
		t.Fatalf("tapir-sensor tunnel_filter %q -r %s: %v: %s", expr, path, err, e2etest.LastLines(string(log), 5))
	}
	if _, err := os.Stat(blocks); err != nil {
		return 0
	}
	return storedPackets(t, blocks)
}

// tsharkCount counts the frames of path that tshark's display filter
// selects.
func tsharkCount(t *testing.T, path, filter string) int {
	t.Helper()
	return len(tsharkoracle.Lines(t, "-n", "-r", path, "-Y", filter, "-T", "fields", "-e", "frame.number"))
}

// mixedTunnels merges wikipedia.pcap as it is with copies wrapped in
// VXLAN, GRE, GTP-U, ERSPAN II and VXLAN inside GRE (mergecap).
func mixedTunnels(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mergecap"); err != nil {
		t.Skip("mergecap not installed")
	}
	orig := testenv.Pcap(t, mirrorOriginal)
	dir := t.TempDir()
	merged := filepath.Join(dir, "mixed.pcap")
	args := []string{"-F", "pcap", "-w", merged, orig}
	for _, k := range []encaptest.Kind{encaptest.VXLAN, encaptest.GRE, encaptest.GTPU, encaptest.ERSPAN2, encaptest.VXLANInGR} {
		p := filepath.Join(dir, string(k)+".pcap")
		if _, _, err := encaptest.File(k, orig, p); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	if out, err := exec.Command("mergecap", args...).CombinedOutput(); err != nil {
		t.Fatalf("mergecap: %v: %s", err, out)
	}
	return merged
}

// TestTunnelFilterSelectsLikeTshark: decode.tunnel_filter keeps exactly
// the packets tshark's display filter on the same tunnel fields selects
// (counted as the packets the sensor stores), on the shared tunnel
// captures and on a merge of plain and tunnelled copies of a shared
// capture: by type at any level, by VNI / ERSPAN session / TEID (ARP over
// VXLAN, which the sensor cannot take apart, included), by outer
// endpoint, negated and combined. Before, the key was unknown and the
// sensor refused the configuration.
func TestTunnelFilterSelectsLikeTshark(t *testing.T) {
	mixed := mixedTunnels(t)
	for _, c := range []struct {
		path, expr, tshark string
	}{
		{testenv.Pcap(t, "zeek/vxlan.pcap"), "tunnel vxlan and tunnel-id 123", "vxlan.vni == 123"},
		{testenv.Pcap(t, "zeek/vxlan.pcap"), "tunnel-id 124", "vxlan.vni == 124"},
		{testenv.Pcap(t, "arkime/gre-erspan.pcap"), "tunnel erspan and tunnel-id 100", "erspan.spanid == 100"},
		{testenv.Pcap(t, "arkime/gre-erspan.pcap"), "not tunnel any", "not gre"},
		{testenv.Pcap(t, "arkime/ipv6-in-ipv4.pcap"), "tunnel ipip", "ip.proto == 41"},
		{mixed, "not tunnel any", "not (vxlan or gre or gtp)"},
		{mixed, "tunnel gtpu and tunnel-id 0x01020304", "gtp.teid == 0x01020304"},
		{mixed, "tunnel vxlan && !tunnel gre", "vxlan and not gre"},
		{mixed, "(tunnel vxlan and tunnel gre) or tunnel erspan2", "(vxlan and gre) or erspan"},
		{mixed, fmt.Sprintf("tunnel-id %d", encaptest.SessionID), fmt.Sprintf("erspan.spanid == %d", encaptest.SessionID)},
		{mixed, "tunnel-host " + encaptest.OuterSrc4.String(), "ip.addr == " + encaptest.OuterSrc4.String() + " and (vxlan or gre or gtp)"},
	} {
		got, want := runFilterSensor(t, c.path, c.expr), tsharkCount(t, c.path, c.tshark)
		if got != want {
			t.Errorf("%s: tunnel_filter %q keeps %d packets, tshark -Y %q selects %d", filepath.Base(c.path), c.expr, got, c.tshark, want)
		} else {
			t.Logf("%s: %q keeps %d packets = tshark's %q", filepath.Base(c.path), c.expr, got, c.tshark)
		}
	}
}

// TestTunnelFilterDropsCounted: the packets decode.tunnel_filter drops
// are counted in tapir_sensor_tunnel_filtered_total.
func TestTunnelFilterDropsCounted(t *testing.T) {
	path := testenv.Pcap(t, "zeek/vxlan.pcap")
	f, err := decode.ParseTunnelFilter("tunnel-id 7")
	if err != nil {
		t.Fatal(err)
	}
	reg := engineMetricsWith(t, path, func(c *engine.Config) {
		c.Decoders = map[string]*decode.Options{"": {TunnelFilter: f}}
	})
	if got, want := gather(t, reg, "tapir_sensor_tunnel_filtered_total", nil), float64(pcapPackets(t, path)); got != want {
		t.Errorf("tapir_sensor_tunnel_filtered_total = %v, want %v (every packet)", got, want)
	}
}

// TestTunnelFilterErrors: a bad expression stops the sensor at start
// with an error naming the key and what is wrong.
func TestTunnelFilterErrors(t *testing.T) {
	for expr, want := range map[string]string{
		"tunnel vxlam":             `tunnel "vxlam"`,
		"tunnel-id 99999999999":    `tunnel-id "99999999999"`,
		"tunnel-host 300.1.1.1":    `tunnel-host "300.1.1.1"`,
		"tunnel vxlan and":         "expression ends",
		"(tunnel gre":              `missing ")"`,
		"tunnel gre tunnel vxlan":  `unexpected "tunnel"`,
		"host 10.0.0.1":            `unknown term "host"`,
		"tunnel-id":                `"tunnel-id" needs an argument`,
		"tunnel vxlan or or gre":   `unknown term "or"`,
		"not not tunnel any and (": "expression ends",
	} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "sensor.yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf("sensor_id: bad\ndecode:\n  tunnel_filter: %q\n", expr)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sensor(t), "--config", cfg, "-r", testenv.Pcap(t, "zeek/vxlan.pcap")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "decode.tunnel_filter") || !strings.Contains(string(out), want) {
			t.Errorf("tunnel_filter %q: %v: %s; want an error with decode.tunnel_filter and %s", expr, err, e2etest.LastLines(string(out), 3), want)
		}
	}
}

// TestTunnelFilterFlag: tapir-sensor --tunnel-filter is
// decode.tunnel_filter on the command line: zeek/vxlan.pcap keeps its 10
// packets with "tunnel-id 123" (tshark: vxlan.vni == 123), none with
// "tunnel-id 124", and a bad expression exits with the reason.
func TestTunnelFilterFlag(t *testing.T) {
	path := testenv.Pcap(t, "zeek/vxlan.pcap")
	for expr, want := range map[string]int{"tunnel-id 123": tsharkCount(t, path, "vxlan.vni == 123"), "tunnel-id 124": 0} {
		blocks := filepath.Join(t.TempDir(), "blocks")
		if out, err := exec.Command(sensor(t), "-r", path, "--tunnel-filter", expr, "--blocks-out", blocks).CombinedOutput(); err != nil {
			t.Fatalf("--tunnel-filter %q: %v: %s", expr, err, e2etest.LastLines(string(out), 3))
		}
		got := 0
		if _, err := os.Stat(blocks); err == nil {
			got = storedPackets(t, blocks)
		}
		if got != want {
			t.Errorf("--tunnel-filter %q: %d packets stored, want %d", expr, got, want)
		}
	}
	out, err := exec.Command(sensor(t), "-r", path, "--tunnel-filter", "tunnel-id x").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `tunnel-id "x"`) {
		t.Errorf("--tunnel-filter 'tunnel-id x': %v: %s", err, out)
	}
}
