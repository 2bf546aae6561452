package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/sensor/config"
)

// loadDecode loads a config file holding yaml plus an output.
func loadDecode(t *testing.T, yaml string) (config.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sensor.yaml")
	if err := os.WriteFile(path, []byte("output:\n  flows_out: \"-\"\n"+yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		return c, err
	}
	return c, c.Validate(false)
}

func TestDecodeConfigErrorsSayWhat(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"decode:\n  tunnels:\n    depth: 5\n", "decode.tunnels.depth 5 not in [0, 4]"},
		{"decode:\n  tunnels:\n    depth: -1\n", "decode.tunnels.depth -1"},
		{"decode:\n  tunnels:\n    vxlan_ports: [4789, 0]\n", "decode.tunnels.vxlan_ports: port 0 not in [1, 65535]"},
		{"decode:\n  tunnels:\n    geneve_ports: [70000]\n", "decode.tunnels.geneve_ports: port 70000"},
		{"decode:\n  tunnels:\n    gtpu_ports: [-3]\n", "decode.tunnels.gtpu_ports: port -3"},
		{"decode:\n  tunnels:\n    teredo_ports: [65536]\n", "decode.tunnels.teredo_ports: port 65536"},
		{"decode:\n  mirror:\n    - encapsulation: vxlan\n", "decode.mirror[0]: interface is empty"},
		{"decode:\n  mirror:\n    - {interface: eth1, encapsulation: mpls}\n", "decode.mirror[0] (eth1): mirror encapsulation \"mpls\""},
		{"decode:\n  mirror:\n    - {interface: eth1, encapsulation: erspan, port: 4789}\n", "only vxlan and geneve take a port"},
		{"decode:\n  mirror:\n    - {interface: eth1, encapsulation: vxlan, port: 65536}\n", "port 65536 not in [1, 65535]"},
		{"decode:\n  mirror:\n    - {interface: eth1, encapsulation: vxlan}\n    - {interface: eth1, encapsulation: erspan}\n", "decode.mirror[1]: interface eth1 listed twice"},
		{"decode:\n  mirror:\n    - {interface: eth1, encapsulation: vxlan, vni: 3}\n", "field vni not found"},
	} {
		_, err := loadDecode(t, c.yaml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.want)
		}
	}
}

func TestDecodeConfigOptions(t *testing.T) {
	c, err := loadDecode(t, `decode:
  tunnels:
    depth: 2
    vxlan_ports: [4789, 8472]
    geneve_ports: []
  mirror:
    - {interface: eth1, encapsulation: vxlan, port: 4790}
    - {interface: eth2, encapsulation: erspan}
`)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Decode.Decoders()
	base := d[""]
	if base == nil || base.TunnelDepth != 2 || !slices.Equal(base.VXLANPorts, []uint16{4789, 8472}) ||
		base.GenevePorts == nil || len(base.GenevePorts) != 0 || !slices.Equal(base.GTPUPorts, []uint16{decode.PortGTPU}) ||
		base.Mirror != (decode.Mirror{}) {
		t.Fatalf("base options %+v", base)
	}
	if o := d["eth1"]; o == nil || o.Mirror != (decode.Mirror{Type: flow.TunnelVXLAN, Port: 4790}) || o.TunnelDepth != 2 {
		t.Fatalf("eth1 options %+v", o)
	}
	if o := d["eth2"]; o == nil || o.Mirror.String() != "erspan" {
		t.Fatalf("eth2 options %+v", o)
	}
	c, err = loadDecode(t, "decode:\n  tunnels:\n    depth: 0\n  mirror:\n    - {interface: \"*\", encapsulation: gre}\n")
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Decode.Decoders(); len(o) != 1 || o[""].TunnelDepth >= 0 || o[""].Mirror.String() != "gre" {
		t.Fatalf("depth 0 with a mirror for every source: %+v", o[""])
	}
}

func TestDecodeDefaults(t *testing.T) {
	d := config.DefaultConfig().Decode
	o := d.Decoders()[""]
	if o.TunnelDepth != decode.DefaultTunnelDepth || !slices.Equal(o.VXLANPorts, []uint16{4789}) ||
		!slices.Equal(o.GenevePorts, []uint16{6081}) || !slices.Equal(o.TeredoPorts, []uint16{3544}) || len(d.Mirror) != 0 {
		t.Fatalf("defaults %+v", o)
	}
}

func TestParseMirrorFlag(t *testing.T) {
	m, err := config.ParseMirrorFlag("vxlan:4790")
	if err != nil || m != (config.MirrorSource{Interface: "*", Encapsulation: "vxlan", Port: 4790}) {
		t.Fatalf("vxlan:4790: %+v %v", m, err)
	}
	for _, bad := range []string{"", "vxlan:", "vxlan:0", "gre:47", "ipip", "vxlan:x"} {
		if _, err := config.ParseMirrorFlag(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDecodeKernelCutoff(t *testing.T) {
	vx := func(iface string, port int) config.MirrorSource {
		return config.MirrorSource{Interface: iface, Encapsulation: "vxlan", Port: port}
	}
	for _, c := range []struct {
		name     string
		mirror   []config.MirrorSource
		ports    []int
		ifaces   []string
		port     uint16
		conflict string
	}{
		{"no mirror", nil, nil, []string{"eth0"}, 0, ""},
		{"vxlan everywhere", []config.MirrorSource{vx(config.MirrorAll, 0)}, nil, []string{"eth0", "eth1"}, 4789, ""},
		{"vxlan per interface", []config.MirrorSource{vx("eth0", 4790), vx("eth1", 4790)}, nil, []string{"eth0", "eth1"}, 4790, ""},
		{"one not a mirror", []config.MirrorSource{vx("eth0", 0)}, nil, []string{"eth0", "eth1"}, 0, "eth1 is not a mirror interface"},
		{"two ports", []config.MirrorSource{vx("eth0", 0), vx("eth1", 4790)}, nil, []string{"eth0", "eth1"}, 0, "two ports"},
		{"erspan", []config.MirrorSource{{Interface: "eth0", Encapsulation: "erspan"}}, nil, []string{"eth0"}, 0, "encapsulation erspan"},
		{"custom vxlan port", nil, []int{8472}, []string{"eth0"}, 0, "port 8472"},
	} {
		d := config.DefaultDecode()
		d.Mirror = c.mirror
		if c.ports != nil {
			d.Tunnels.VXLANPorts = c.ports
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		port, conflict := d.KernelCutoff(c.ifaces)
		if port != c.port || (c.conflict == "") != (conflict == "") || !strings.Contains(conflict, c.conflict) {
			t.Errorf("%s: port %d conflict %q; want %d and %q", c.name, port, conflict, c.port, c.conflict)
		}
	}
}
