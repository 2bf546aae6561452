package appmeta

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

var tlsCaptures = []string{
	"suricata-verify/community-id-ipv4/input.pcap",
	"suricata-verify/community-id-ipv6/input.pcap",
	"zeek/tls-conn-with-extensions.pcap",
	"arkime/curl-enabled-tls13.pcap",
}

func hex16(t *testing.T, s string) uint16 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return uint16(v)
}

// maxVersion is the highest non-GREASE version tshark lists, or the
// legacy version when there is no supported_versions extension.
func maxVersion(t *testing.T, supported, legacy string) uint16 {
	var v uint16
	for _, s := range split(supported) {
		if x := hex16(t, s); !isGREASE(x) && x > v {
			v = x
		}
	}
	if v == 0 {
		v = hex16(t, split(legacy)[0])
	}
	return v
}

// TestTLSMatchesTshark checks SNI, ALPN, the offered and chosen versions,
// the chosen cipher and JA3 of every TLS flow against tshark.
func TestTLSMatchesTshark(t *testing.T) {
	n := 0
	for _, rel := range tlsCaptures {
		t.Run(rel, func(t *testing.T) {
			path := testenv.Pcap(t, rel)
			got, _ := extract(t, path, DefaultConfig())
			seen := map[string]bool{}
			for _, r := range tsharkRows(t, path, "tls.handshake.type == 1", "tls.handshake.extensions_server_name",
				"tls.handshake.ja3", "tls.handshake.extensions_alpn_str", "tls.handshake.extensions.supported_version", "tls.handshake.version") {
				if seen[r.key] {
					continue
				}
				seen[r.key] = true
				m := got[r.key]
				if m == nil || m.TLS == nil {
					t.Errorf("%s: no TLS metadata", r.key)
					continue
				}
				n++
				tl := m.TLS
				if tl.ServerName != r.vals["tls.handshake.extensions_server_name"] {
					t.Errorf("%s: SNI %q, tshark %q", r.key, tl.ServerName, r.vals["tls.handshake.extensions_server_name"])
				}
				if tl.JA3 != r.vals["tls.handshake.ja3"] {
					t.Errorf("%s: JA3 %s, tshark %s", r.key, tl.JA3, r.vals["tls.handshake.ja3"])
				}
				if want := split(r.vals["tls.handshake.extensions_alpn_str"]); !slices.Equal(tl.ALPN, want) && len(want)+len(tl.ALPN) > 0 {
					t.Errorf("%s: ALPN %q, tshark %q", r.key, tl.ALPN, want)
				}
				if v := maxVersion(t, r.vals["tls.handshake.extensions.supported_version"], r.vals["tls.handshake.version"]); tl.ClientVersion != v {
					t.Errorf("%s: client version %#x, tshark %#x", r.key, tl.ClientVersion, v)
				}
				if tl.JA4 == "" || tl.JA4[0] != 't' {
					t.Errorf("%s: JA4 %q", r.key, tl.JA4)
				}
			}
			servers := 0
			for _, r := range tsharkRows(t, path, "tls.handshake.type == 2", "tls.handshake.ciphersuite",
				"tls.handshake.extensions.supported_version", "tls.handshake.version", "tls.handshake.extensions_alpn_str") {
				m := got[r.key]
				if m == nil || m.TLS == nil || seen[r.key+" server"] {
					continue
				}
				seen[r.key+" server"] = true
				servers++
				if c := hex16(t, r.vals["tls.handshake.ciphersuite"]); m.TLS.Cipher != c {
					t.Errorf("%s: cipher %#x, tshark %#x", r.key, m.TLS.Cipher, c)
				}
				if v := maxVersion(t, r.vals["tls.handshake.extensions.supported_version"], r.vals["tls.handshake.version"]); m.TLS.ServerVersion != v {
					t.Errorf("%s: server version %#x, tshark %#x", r.key, m.TLS.ServerVersion, v)
				}
				if m.TLS.NextProtocol != r.vals["tls.handshake.extensions_alpn_str"] {
					t.Errorf("%s: next protocol %q, tshark %q", r.key, m.TLS.NextProtocol, r.vals["tls.handshake.extensions_alpn_str"])
				}
			}
			if len(seen) == 0 || servers == 0 {
				t.Fatalf("tshark found %d ClientHello flows, %d ServerHello flows", len(seen), servers)
			}
		})
	}
	if n == 0 && !t.Failed() {
		t.Fatal("no TLS flow compared")
	}
}

// arkimeTLS reads the TLS fields Arkime expects from a .test file.
func arkimeTLS(t *testing.T, rel string) (ja4, ja4r, ja3, ja3string, host string) {
	t.Helper()
	b, err := os.ReadFile(testenv.Pcap(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sessions []struct {
			Body struct {
				TLS *struct {
					JA4       []string `json:"ja4"`
					JA4R      []string `json:"ja4_r"`
					JA3       []string `json:"ja3"`
					JA3String []string `json:"ja3string"`
				} `json:"tls"`
				Host struct {
					Host []string `json:"host"`
				} `json:"host"`
			} `json:"body"`
		} `json:"sessions3"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Sessions {
		if tl := s.Body.TLS; tl != nil {
			if len(s.Body.Host.Host) > 0 {
				host = s.Body.Host.Host[0]
			}
			return tl.JA4[0], tl.JA4R[0], tl.JA3[0], tl.JA3String[0], host
		}
	}
	t.Fatal("no tls session in " + rel)
	return
}

// TestJA4MatchesArkime checks JA4 (and JA3) against Arkime's expectations
// for the same capture.
func TestJA4MatchesArkime(t *testing.T) {
	ja4, ja4r, ja3, ja3s, host := arkimeTLS(t, "arkime/curl-enabled-tls13.test")
	got, _ := extract(t, testenv.Pcap(t, "arkime/curl-enabled-tls13.pcap"), DefaultConfig())
	var tl *flow.TLSMeta
	for _, m := range got {
		if m.TLS != nil {
			tl = m.TLS
		}
	}
	if tl == nil {
		t.Fatal("no TLS metadata")
	}
	if tl.JA4 != ja4 {
		t.Errorf("JA4 %s, Arkime %s (raw %s)", tl.JA4, ja4, ja4r)
	}
	if tl.JA3 != ja3 {
		t.Errorf("JA3 %s, Arkime %s", tl.JA3, ja3)
	}
	if host != "" && tl.ServerName != host {
		t.Errorf("SNI %s, Arkime host %s", tl.ServerName, host)
	}
	// the JA3 string too, from the parsed hello
	pp := clientHelloPayload(t, "arkime/curl-enabled-tls13.pcap")
	_, body, err := firstHandshake(pp, new([]byte))
	if err != nil {
		t.Fatal(err)
	}
	var h ClientHello
	if err := ParseClientHello(body, &h); err != nil {
		t.Fatal(err)
	}
	if h.JA3String() != ja3s {
		t.Errorf("JA3 string %s, Arkime %s", h.JA3String(), ja3s)
	}
	if !strings.HasPrefix(ja4r, ja4[:10]) {
		t.Fatalf("Arkime's raw JA4 %s does not start like %s", ja4r, ja4)
	}
}

// clientHelloPayload returns the first client TCP payload of the capture
// that starts a TLS handshake record.
func clientHelloPayload(t *testing.T, rel string) []byte {
	t.Helper()
	for _, pp := range readPayloads(t, testenv.Pcap(t, rel)) {
		if pp.tcp && pp.fromClient && len(pp.payload) > 5 && pp.payload[0] == 22 {
			return pp.payload
		}
	}
	t.Fatal("no ClientHello in " + rel)
	return nil
}

// TestClientHelloSplit feeds real ClientHellos cut into 2, 3 and many
// TCP segments (with a retransmission) and expects the same metadata as
// from the whole segment.
func TestClientHelloSplit(t *testing.T) {
	for _, rel := range tlsCaptures {
		hello := clientHelloPayload(t, rel)
		x, _ := New(DefaultConfig())
		whole := x.NewFlow(true)
		x.Packet(whole, true, 1000, hello, 40000, 443)
		if tlsOf(whole) == nil || tlsOf(whole).JA4 == "" {
			t.Fatalf("%s: whole hello not parsed", rel)
		}
		for _, parts := range []int{2, 3, 4, 7, len(hello)} {
			f := x.NewFlow(true)
			step := (len(hello) + parts - 1) / parts
			seq := uint32(1000)
			for off := 0; off < len(hello); off += step {
				seg := hello[off:min(off+step, len(hello))]
				x.Packet(f, true, seq+uint32(off), seg, 40000, 443)
				if off > 0 { // a retransmission of the previous segment changes nothing
					x.Packet(f, true, seq+uint32(off-step), hello[off-step:off], 40000, 443)
				}
			}
			if 2*parts-1 > DefaultConfig().MaxPackets { // retransmissions count too
				if tlsOf(f) != nil {
					t.Errorf("%s: %d segments: parsed beyond max_packets", rel, parts)
				}
				continue
			}
			if !tlsEqual(tlsOf(f), tlsOf(whole)) {
				t.Errorf("%s: %d segments: %+v, whole %+v", rel, parts, tlsOf(f), tlsOf(whole))
			}
		}
		// a gap stops the direction without a result
		f := x.NewFlow(true)
		x.Packet(f, true, 1000, hello[:10], 40000, 443)
		x.Packet(f, true, 1020, hello[20:], 40000, 443)
		if tlsOf(f) != nil || x.Stats().Gaps == 0 {
			t.Errorf("%s: gap not detected", rel)
		}
	}
}

func tlsEqual(a, b *flow.TLSMeta) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.ALPN, y.ALPN = nil, nil
	return reflect.DeepEqual(x, y) && slices.Equal(a.ALPN, b.ALPN)
}

// tlsOf is the flow's TLS metadata, nil when it has none (f.meta is nil
// until the protocol is recognised).
func tlsOf(f *Flow) *flow.TLSMeta {
	if f.meta == nil {
		return nil
	}
	return f.meta.TLS
}
