package tunnels

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// tunnelLevel is one expected level of a chain, direction-free: the pair
// of endpoints in either order.
type tunnelLevel struct {
	typ, proto string
	a, b       string // "ip" or "ip:port"
	id         string // "vni=N", "key=N", "session_id=N", "teid=N" or ""
}

func (l tunnelLevel) String() string {
	return fmt.Sprintf("%s/%s %s<->%s %s", l.typ, l.proto, l.a, l.b, l.id)
}

// levelOf reads a level of a flow line.
func levelOf(t ecsTunnel) tunnelLevel {
	end := func(ip string, port uint16) string {
		if port == 0 {
			return ip
		}
		return netip.AddrPortFrom(netip.MustParseAddr(ip), port).String()
	}
	l := tunnelLevel{typ: t.Type, proto: t.IANANumber, a: end(t.Source.IP, t.Source.Port), b: end(t.Destination.IP, t.Destination.Port)}
	for _, id := range []struct {
		name string
		v    *uint32
	}{{"vni", t.VNI}, {"key", t.Key}, {"session_id", t.SessionID}, {"teid", t.TEID}} {
		if id.v != nil {
			l.id += fmt.Sprintf("%s=%d", id.name, *id.v)
		}
	}
	return l
}

// same compares two levels, endpoints in either order.
func (l tunnelLevel) same(o tunnelLevel) bool {
	if l.a != o.a {
		o.a, o.b = o.b, o.a
	}
	return l == o
}

// builtChain is the chain encaptest wraps a packet of the given inner
// IP version ("ipv4", "ipv6") in.
func builtChain(k encaptest.Kind, inner string) []tunnelLevel {
	s4, d4 := encaptest.OuterSrc4.String(), encaptest.OuterDst4.String()
	s6, d6 := encaptest.OuterSrc6.String(), encaptest.OuterDst6.String()
	port := func(a string, p uint16) string { return netip.AddrPortFrom(netip.MustParseAddr(a), p).String() }
	ipip := "4"
	if inner == "ipv6" {
		ipip = "41"
	}
	key := fmt.Sprintf("key=%d", uint32(encaptest.GREKey))
	session := fmt.Sprintf("session_id=%d", encaptest.SessionID)
	vni := fmt.Sprintf("vni=%d", encaptest.VNI)
	teid := fmt.Sprintf("teid=%d", encaptest.TEID)
	switch k {
	case encaptest.IPIP4:
		return []tunnelLevel{{"ipip", ipip, s4, d4, ""}}
	case encaptest.IPIP6:
		return []tunnelLevel{{"ipip", ipip, s6, d6, ""}}
	case encaptest.GRE, encaptest.GRETEB:
		return []tunnelLevel{{"gre", "47", s4, d4, key}}
	case encaptest.ERSPAN1:
		return []tunnelLevel{{"erspan1", "47", s4, d4, ""}}
	case encaptest.ERSPAN2:
		return []tunnelLevel{{"erspan2", "47", s4, d4, session}}
	case encaptest.ERSPAN3:
		return []tunnelLevel{{"erspan3", "47", s4, d4, session}}
	case encaptest.VXLAN:
		return []tunnelLevel{{"vxlan", "17", port(s4, 49152), port(d4, 4789), vni}}
	case encaptest.VXLAN6:
		return []tunnelLevel{{"vxlan", "17", port(s6, 49152), port(d6, 4789), vni}}
	case encaptest.Geneve:
		return []tunnelLevel{{"geneve", "17", port(s4, 49153), port(d4, 6081), vni}}
	case encaptest.GTPU:
		return []tunnelLevel{{"gtpu", "17", port(s4, 2152), port(d4, 2152), teid}}
	case encaptest.Teredo:
		return []tunnelLevel{{"teredo", "17", port(s4, 3544), port(d4, 49154), ""}}
	case encaptest.VXLANInGR:
		return []tunnelLevel{{"gre", "47", s4, d4, ""}, {"vxlan", "17", port(s4, 49152), port(d4, 4789), vni}}
	case encaptest.GTPUInV6:
		return []tunnelLevel{{"ipip", "4", s6, d6, ""}, {"gtpu", "17", port(s4, 2152), port(d4, 2152), teid}}
	}
	return nil
}

// carriesIP reports whether k carries an IP packet (not a frame): those
// leave tagged frames unwrapped, as Teredo leaves IPv4.
func carriesIP(k encaptest.Kind) bool {
	switch k {
	case encaptest.GRETEB, encaptest.ERSPAN1, encaptest.ERSPAN2, encaptest.ERSPAN3, encaptest.VXLAN, encaptest.VXLAN6, encaptest.Geneve:
		return false
	}
	return true
}

// checkChain compares a flow line's chain with want.
func checkChain(got []ecsTunnel, want []tunnelLevel) error {
	ok := len(got) == len(want)
	var g []string
	for i, l := range got {
		lv := levelOf(l)
		g = append(g, lv.String())
		if ok && !lv.same(want[i]) {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("chain [%s], want %v", strings.Join(g, ", "), want)
	}
	return nil
}

// TestBuiltTunnelsChainInRecords: every inner IP flow of a shared
// capture wrapped in a tunnel carries, in tapir.tunnels, the chain that
// was built (types, outer addresses and UDP ports, VNI, GRE key, ERSPAN
// session ID, TEID), and the flows of the unwrapped originals carry none.
func TestBuiltTunnelsChainInRecords(t *testing.T) {
	built := buildCaptures(t, t.TempDir())
	for _, rel := range builtOriginals {
		for _, r := range runSensor(t, testenv.Pcap(t, rel), 0) {
			if len(r.Tapir.Tunnels) != 0 {
				t.Errorf("%s: untunnelled flow %s -> %s has a chain", rel, r.Source.IP, r.Destination.IP)
			}
		}
		for _, path := range built[rel] {
			kind := encaptest.Kind(path[strings.LastIndex(strings.TrimSuffix(path, ".pcap"), ".")+1 : len(path)-len(".pcap")])
			t.Run(filepath.Base(path), func(t *testing.T) {
				chained, bad, expected := 0, 0, 0
				for _, r := range runSensor(t, path, 0) {
					inner, err := netip.ParseAddr(r.Source.IP)
					if err != nil || isOuter(inner) {
						continue // link-layer pseudo flows, the tunnel's own traffic
					}
					fam := "ipv4"
					if inner.Is6() {
						fam = "ipv6"
					}
					want := builtChain(kind, fam)
					if carriesIP(kind) && r.Tapir.VLAN != 0 || kind == encaptest.Teredo && fam == "ipv4" {
						want = nil // written unwrapped
					}
					if want != nil {
						expected++
					}
					if err := checkChain(r.Tapir.Tunnels, want); err != nil {
						if bad++; bad <= 5 {
							t.Errorf("%s %s -> %s: %v", r.Network.IANANumber, r.Source.IP, r.Destination.IP, err)
						}
						continue
					}
					if want != nil {
						chained++
					}
				}
				if chained == 0 && expected > 0 {
					t.Error("no flow carries the built chain")
				}
				t.Logf("%d flows carry the built chain; %d do not", chained, bad)
			})
		}
	}
}

// isOuter reports whether a is one of encaptest's tunnel endpoints.
func isOuter(a netip.Addr) bool {
	return a == encaptest.OuterSrc4 || a == encaptest.OuterDst4 || a == encaptest.OuterSrc6 || a == encaptest.OuterDst6
}

// TestSharedTunnelChains: the flows of the shared tunnel captures carry
// the chains the captures hold (tshark's reading): zeek/vxlan.pcap's
// ICMP echo inside VXLAN VNI 123 between 192.168.56.11 and .12 (the
// replies come back with another UDP source port: the same chain),
// arkime/gre-erspan.pcap's ICMP inside ERSPAN II session 100 between
// 2.2.2.2 and 1.1.1.1.
func TestSharedTunnelChains(t *testing.T) {
	for _, c := range []struct {
		rel, proto string
		want       []tunnelLevel
	}{
		{"zeek/vxlan.pcap", "1", []tunnelLevel{{"vxlan", "17", "192.168.56.11:48134", "192.168.56.12:4789", "vni=123"}}},
		{"arkime/gre-erspan.pcap", "1", []tunnelLevel{{"erspan2", "47", "2.2.2.2", "1.1.1.1", "session_id=100"}}},
	} {
		t.Run(c.rel, func(t *testing.T) {
			n := 0
			for _, r := range runSensor(t, testenv.Pcap(t, c.rel), 0) {
				if r.Network.IANANumber != c.proto {
					continue
				}
				n++
				if err := checkChain(r.Tapir.Tunnels, c.want); err != nil {
					t.Errorf("%s -> %s: %v", r.Source.IP, r.Destination.IP, err)
				}
			}
			if n == 0 {
				t.Errorf("no flow of IP protocol %s", c.proto)
			}
		})
	}
}
