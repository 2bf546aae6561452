package config

import (
	"fmt"
	"strings"

	"github.com/tapir-sensor/tapir/decode"
	"github.com/tapir-sensor/tapir/flow"
)

// Decode configures the packet decoder: how tunnels are taken apart and
// which sources are mirror interfaces.
type Decode struct {
	// Tunnels sets how deep tunnels are taken apart and the UDP ports of
	// the UDP tunnels.
	Tunnels Tunnels `yaml:"tunnels"`
	// Mirror lists the mirror interfaces: sources that receive mirrored
	// traffic inside an encapsulation (AWS VPC Traffic Mirroring and
	// Azure virtual network TAP: VXLAN; remote SPAN: ERSPAN or GRE). On
	// them the mirror encapsulation is stripped as if the sensor sat on
	// the mirrored port, and its VNI or session ID keeps the mirror
	// sources apart. Empty: no mirror interface.
	Mirror []MirrorSource `yaml:"mirror"`
	// TunnelFilter keeps only the packets whose tunnel chain matches
	// this expression, after decoding, on every source: terms "tunnel
	// TYPE|erspan|any", "tunnel-id N" (VNI, GRE key, ERSPAN session ID,
	// GTP-U TEID), "tunnel-host ADDR" (an outer address at any level),
	// joined with and, or, not and parentheses, as in the query
	// language. It selects what capture.filter (classic BPF) cannot
	// express; the packets it drops are counted in
	// tapir_sensor_tunnel_filtered_total. Empty: every packet is kept.
	TunnelFilter string `yaml:"tunnel_filter"`
}

// Tunnels configures tunnel decapsulation.
type Tunnels struct {
	// Depth is how many nested tunnel levels are taken apart (flows are
	// keyed on the connection inside them): 0 to 4, 0 = none (flows on
	// the outer header). A mirror level does not count. Default 4.
	Depth int `yaml:"depth"`
	// VXLANPorts are the UDP ports VXLAN is recognised on (either
	// source or destination port). Empty: VXLAN is not taken apart.
	VXLANPorts []int `yaml:"vxlan_ports"`
	// GenevePorts are the UDP ports of Geneve. Empty: none.
	GenevePorts []int `yaml:"geneve_ports"`
	// GTPUPorts are the UDP ports of GTP-U. Empty: none.
	GTPUPorts []int `yaml:"gtpu_ports"`
	// TeredoPorts are the UDP ports of Teredo. Empty: none.
	TeredoPorts []int `yaml:"teredo_ports"`
}

// MirrorSource is one mirror interface.
type MirrorSource struct {
	// Interface is the capture interface (as in capture.interfaces), or
	// "*" for every source, the files of -r included.
	Interface string `yaml:"interface"`
	// Encapsulation is vxlan, geneve, gre or erspan (ERSPAN type I, II
	// or III).
	Encapsulation string `yaml:"encapsulation"`
	// Port is the UDP port of a vxlan or geneve mirror; 0 = the standard
	// one (4789, 6081).
	Port int `yaml:"port"`
}

// MirrorAll is the MirrorSource.Interface that applies to every source
// without an entry of its own.
const MirrorAll = "*"

// ParseMirrorFlag parses tapir-sensor's --mirror TYPE[:PORT] into a
// MirrorSource for every source.
func ParseMirrorFlag(s string) (MirrorSource, error) {
	m, err := decode.ParseMirror(s)
	if err != nil {
		return MirrorSource{}, fmt.Errorf("%w: --mirror: %v", ErrInvalid, err)
	}
	name, _, _ := strings.Cut(s, ":")
	return MirrorSource{Interface: MirrorAll, Encapsulation: name, Port: int(m.Port)}, nil
}

// DefaultDecode returns the decoder defaults: 4 levels, standard ports.
func DefaultDecode() Decode {
	return Decode{Tunnels: Tunnels{
		Depth:       decode.DefaultTunnelDepth,
		VXLANPorts:  []int{decode.PortVXLAN},
		GenevePorts: []int{decode.PortGeneve},
		GTPUPorts:   []int{decode.PortGTPU},
		TeredoPorts: []int{decode.PortTeredo},
	}}
}

// Validate checks depth, ports, the tunnel filter and mirror entries.
func (d *Decode) Validate() error {
	t := &d.Tunnels
	if t.Depth < 0 || t.Depth > decode.MaxTunnels {
		return fmt.Errorf("%w: decode.tunnels.depth %d not in [0, %d]", ErrInvalid, t.Depth, decode.MaxTunnels)
	}
	for _, l := range []struct {
		key   string
		ports []int
	}{{"vxlan_ports", t.VXLANPorts}, {"geneve_ports", t.GenevePorts}, {"gtpu_ports", t.GTPUPorts}, {"teredo_ports", t.TeredoPorts}} {
		for _, p := range l.ports {
			if p < 1 || p > 65535 {
				return fmt.Errorf("%w: decode.tunnels.%s: port %d not in [1, 65535]", ErrInvalid, l.key, p)
			}
		}
	}
	if _, err := decode.ParseTunnelFilter(d.TunnelFilter); err != nil {
		return fmt.Errorf("%w: decode.tunnel_filter: %v", ErrInvalid, err)
	}
	seen := make(map[string]bool, len(d.Mirror))
	for i, m := range d.Mirror {
		if m.Interface == "" {
			return fmt.Errorf("%w: decode.mirror[%d]: interface is empty (an interface name, or \"*\" for every source)", ErrInvalid, i)
		}
		if seen[m.Interface] {
			return fmt.Errorf("%w: decode.mirror[%d]: interface %s listed twice", ErrInvalid, i, m.Interface)
		}
		seen[m.Interface] = true
		if _, err := m.parse(); err != nil {
			return fmt.Errorf("%w: decode.mirror[%d] (%s): %v", ErrInvalid, i, m.Interface, err)
		}
	}
	return nil
}

// parse returns the entry as a decode.Mirror.
func (m *MirrorSource) parse() (decode.Mirror, error) {
	if m.Port < 0 || m.Port > 65535 {
		return decode.Mirror{}, fmt.Errorf("port %d not in [1, 65535]", m.Port)
	}
	s := m.Encapsulation
	if m.Port != 0 {
		s = fmt.Sprintf("%s:%d", s, m.Port)
	}
	return decode.ParseMirror(s)
}

// Decoders returns the decoder options per source for engine.Config's
// Decoders: the tunnel settings for every source ("" key), and per
// mirror interface the same with its mirror. d must be valid.
func (d *Decode) Decoders() map[string]*decode.Options {
	base := d.Tunnels.options()
	base.TunnelFilter, _ = decode.ParseTunnelFilter(d.TunnelFilter) // Validate reports errors
	out := map[string]*decode.Options{"": base}
	for i := range d.Mirror {
		m, err := d.Mirror[i].parse()
		if err != nil {
			continue // Validate reports it
		}
		o := *base
		o.Mirror = m
		name := d.Mirror[i].Interface
		if name == MirrorAll {
			name = ""
		}
		out[name] = &o
	}
	return out
}

// options converts the tunnel settings into decode.Options.
func (t *Tunnels) options() *decode.Options {
	o := &decode.Options{TunnelDepth: t.Depth,
		VXLANPorts: ports(t.VXLANPorts), GenevePorts: ports(t.GenevePorts),
		GTPUPorts: ports(t.GTPUPorts), TeredoPorts: ports(t.TeredoPorts)}
	if t.Depth == 0 {
		o.TunnelDepth = -1 // decode.Options: 0 is the default, negative none
	}
	return o
}

// ports converts validated ports, keeping an empty list empty (non-nil:
// no port) as decode.Options reads it.
func ports(in []int) []uint16 {
	out := make([]uint16, len(in))
	for i, p := range in {
		out[i] = uint16(p)
	}
	return out
}

// KernelCutoff says how the eBPF cut-off (bpf/tapir.c) can run beside
// this decoder configuration on the capture interfaces ifaces: the UDP
// port of the VXLAN mirror encapsulation it must strip (0: none), or,
// in conflict, why it cannot run at all ("" when it can). The program
// keys packets on their outer header and leaves the standard UDP tunnel
// ports, GRE and IP-in-IP untracked (captured whole), so that it never
// cuts packets userspace keys on an inner connection. It can strip one
// mirror encapsulation, VXLAN (AWS and Azure mirroring), when every
// capture interface is a mirror interface of it on one port. Otherwise:
//   - a mirror interface of another kind (ERSPAN, GRE, Geneve), or a
//     VXLAN mirror beside interfaces that are not: the program would see
//     only the mirror's outer header, never cut, and key nothing as
//     userspace does;
//   - a UDP tunnel port that is not the standard one (vxlan_ports:
//     [8472]): the program would track that tunnel's outer connection
//     and, past the budget, cut every packet inside it, SYNs and FINs
//     too.
//
// The sensor then runs the same budget in userspace.
func (d *Decode) KernelCutoff(ifaces []string) (mirrorVXLANPort uint16, conflict string) {
	if reason := d.customTunnelPort(); reason != "" {
		return 0, reason
	}
	if len(d.Mirror) == 0 {
		return 0, ""
	}
	decs := d.Decoders()
	var port uint16
	for _, i := range ifaces {
		o := decs[i]
		if o == nil {
			o = decs[""]
		}
		m := o.Mirror
		switch {
		case m.Type == flow.TunnelNone:
			return 0, "interface " + i + " is not a mirror interface beside mirror interfaces (decode.mirror): the kernel cut-off strips a mirror encapsulation on every interface or none"
		case m.Type != flow.TunnelVXLAN:
			return 0, "interface " + i + " has the mirror encapsulation " + m.String() + " (decode.mirror): the kernel cut-off strips only VXLAN mirrors"
		}
		p := m.Port
		if p == 0 {
			p = decode.PortVXLAN
		}
		if port != 0 && p != port {
			return 0, "VXLAN mirror interfaces on two ports (decode.mirror): the kernel cut-off strips one"
		}
		port = p
	}
	return port, ""
}

// customTunnelPort returns why a configured UDP tunnel port keeps the
// kernel cut-off off ("" when every port is a standard one).
func (d *Decode) customTunnelPort() string {
	std := map[int]bool{decode.PortVXLAN: true, decode.PortGeneve: true, decode.PortGTPU: true, decode.PortTeredo: true}
	t := &d.Tunnels
	for _, l := range []struct {
		key   string
		ports []int
	}{{"vxlan_ports", t.VXLANPorts}, {"geneve_ports", t.GenevePorts}, {"gtpu_ports", t.GTPUPorts}, {"teredo_ports", t.TeredoPorts}} {
		for _, p := range l.ports {
			if !std[p] {
				return fmt.Sprintf("decode.tunnels.%s has port %d, which the kernel cut-off does not leave to userspace (it would cut the flows inside that tunnel)", l.key, p)
			}
		}
	}
	return ""
}
