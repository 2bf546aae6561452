// Package ipfixtest holds test helpers shared by the IPFIX exporter's
// tests and the system tests that read its export back with the
// collector's flow input: the sensor's records of a shared capture and a
// UDP socket that keeps every datagram. It is for tests only.
package ipfixtest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/sensor/engine"
	"github.com/tapir-sensor/tapir/sensor/engine/enginetest"
)

// Captures are shared captures with TCP, UDP, ICMP, SCTP, IPv4 and IPv6 flows.
var Captures = []string{
	"zeek/wikipedia.pcap",
	"zeek/ssh.pcap",
	"community-id-spec/combined.pcap.gz",
	"suricata-verify/community-id-ipv6/input.pcap",
}

// SensorRecords runs the sensor engine over a shared capture and returns
// every record it emitted (updates included).
func SensorRecords(t testing.TB, rel string) []flow.Record {
	t.Helper()
	cfg := engine.DefaultConfig()
	cfg.SensorID = "ipfix-test"
	cfg.Blocks.Disabled = true
	recs, err := enginetest.Records(testenv.Plain(t, testenv.Pcap(t, rel)), cfg)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: no flow records", rel)
	}
	return recs
}

// UDPSink is a UDP socket on 127.0.0.1 keeping every datagram.
type UDPSink struct {
	c    *net.UDPConn
	mu   sync.Mutex
	dgs  [][]byte
	done chan struct{}
}

// ListenUDP opens a UDPSink, closed at the test's cleanup.
func ListenUDP(t *testing.T) *UDPSink {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	u := &UDPSink{c: c, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.dgs = append(u.dgs, append([]byte(nil), buf[:n]...))
			u.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close() })
	return u
}

// Addr is the socket's address.
func (u *UDPSink) Addr() string { return u.c.LocalAddr().String() }

// Datagrams waits until n datagrams arrived (or a second passed) and
// returns them.
func (u *UDPSink) Datagrams(n uint64) [][]byte {
	deadline := time.Now().Add(time.Second)
	for {
		u.mu.Lock()
		got := len(u.dgs)
		u.mu.Unlock()
		if uint64(got) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([][]byte(nil), u.dgs...)
}

// Finals returns the final records of IP flows: what the exporter sends
// by default.
func Finals(recs []flow.Record) []flow.Record {
	var out []flow.Record
	for _, r := range recs {
		if r.Reason.Final() && (r.Tuple.Family == flow.FamilyIPv4 || r.Tuple.Family == flow.FamilyIPv6) {
			out = append(out, r)
		}
	}
	return out
}
