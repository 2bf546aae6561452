package appmeta

import (
	"testing"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// seedPayloads adds the payloads of real captures, chosen by keep, to f.
func seedPayloads(f *testing.F, rels []string, keep func(payloadPacket) bool) {
	for _, rel := range rels {
		for _, pp := range readPayloads(f, testenv.Pcap(f, rel)) {
			if keep(pp) {
				f.Add(pp.payload)
			}
		}
	}
}

// feed runs data through an Extractor as one payload and as two segments.
func feed(data []byte, tcp bool, sport, dport uint16) {
	x, _ := New(DefaultConfig())
	f := x.NewFlow(tcp)
	x.Packet(f, true, 7, data, sport, dport)
	x.Packet(f, false, 9, data, dport, sport)
	if tcp && len(data) > 1 {
		g := x.NewFlow(tcp)
		x.Packet(g, true, 7, data[:len(data)/2], sport, dport)
		x.Packet(g, true, 7+uint32(len(data)/2), data[len(data)/2:], sport, dport)
		x.Release(g)
	}
	x.Release(f)
	_ = f.Meta()
}

func FuzzDNS(f *testing.F) {
	seedPayloads(f, dnsCaptures, func(pp payloadPacket) bool { return isDNSPort(pp.sport) || isDNSPort(pp.dport) })
	f.Fuzz(func(t *testing.T, data []byte) {
		var m flow.DNSMeta
		_, _ = ParseDNS(data, &m, 16)
		if len(m.Answers) > 16 {
			t.Fatalf("%d answers kept", len(m.Answers))
		}
		feed(data, false, 5353, 53)
		feed(data, true, 40000, 53)
	})
}

func FuzzTLS(f *testing.F) {
	seedPayloads(f, tlsCaptures, func(pp payloadPacket) bool { return pp.tcp && len(pp.payload) > 0 && pp.payload[0] == 22 })
	f.Fuzz(func(t *testing.T, data []byte) {
		var scratch []byte
		if typ, body, err := firstHandshake(data, &scratch); err == nil {
			var h ClientHello
			if typ == hsClientHello && ParseClientHello(body, &h) == nil {
				if ja4 := h.JA4(false); len(ja4) != 36 {
					t.Fatalf("JA4 %q", ja4)
				}
				_ = h.JA3()
			}
			var s ServerHello
			_ = ParseServerHello(body, &s)
		}
		feed(data, true, 40000, 443)
	})
}

func FuzzHTTP(f *testing.F) {
	seedPayloads(f, []string{"zeek/get.pcap", "zeek/wikipedia.pcap"}, func(pp payloadPacket) bool { return pp.tcp && (pp.sport == 80 || pp.dport == 80) })
	f.Fuzz(func(t *testing.T, data []byte) {
		var m flow.HTTPMeta
		_ = ParseHTTPRequest(data, &m)
		_ = ParseHTTPResponse(data, &m)
		if len(m.Method) > maxField || len(m.URI) > maxField || len(m.Host) > maxField || len(m.UserAgent) > maxField {
			t.Fatal("field longer than maxField")
		}
		feed(data, true, 40000, 80)
	})
}

func FuzzSSH(f *testing.F) {
	seedPayloads(f, []string{"zeek/ssh.pcap"}, func(pp payloadPacket) bool { return pp.tcp && len(pp.payload) > 4 && string(pp.payload[:4]) == "SSH-" })
	f.Fuzz(func(t *testing.T, data []byte) {
		if id, err := ParseSSHIdent(data); err == nil && len(id) > maxField {
			t.Fatalf("ident of %d bytes", len(id))
		}
		feed(data, true, 40000, 22)
	})
}
