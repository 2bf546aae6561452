package netnstest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPair builds a pair, sends UDP across it from Go code running in each
// namespace, and checks that nothing is left behind afterwards.
func TestPair(t *testing.T) {
	var p *Pair
	t.Run("pair", func(t *testing.T) {
		p = New(t, Options{MTU: 9000})
		var conn *net.UDPConn
		err := Do(p.CaptureNS, func() (err error) {
			conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 9999})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		payload := make([]byte, 8000) // fits the 9000 MTU unfragmented
		err = Do(p.PeerNS, func() error {
			c, err := net.Dial("udp4", "192.0.2.1:9999")
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(payload)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 9000)
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil || n != len(payload) || !from.IP.Equal(net.ParseIP("192.0.2.2")) {
			t.Fatalf("received %d bytes from %v: %v", n, from, err)
		}
		out, err := Exec(p.CaptureNS, "ip", "link", "show", p.CaptureIf)
		if err != nil || !strings.Contains(string(out), "mtu 9000") {
			t.Fatalf("capture end: %v: %s", err, out)
		}
		if _, err := os.Stat("/sys/class/net/" + p.CaptureIf); err == nil {
			t.Fatal("veth end visible in the root namespace")
		}
	})
	if p == nil {
		return
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), p.CaptureNS) || strings.Contains(string(out), p.PeerNS) {
		t.Fatalf("namespaces left behind: %s", out)
	}
}

// TestReplay replays a shared capture; tcpreplay's parsed count must equal
// capinfos' packet count.
func TestReplay(t *testing.T) {
	Require(t, "tcpreplay", "capinfos")
	file := filepath.Join(pcapsDir(t), "zeek", "wikipedia.pcap")
	out, err := exec.Command("capinfos", "-M", "-c", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := -1
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.Contains(k, "Number of packets") {
			want, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	p := New(t, Options{MTU: 9000})
	res, err := Replay(t, p.PeerNS, p.PeerIf, file, 20000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != want || res.Failed != 0 {
		t.Fatalf("tcpreplay sent %d failed %d, capinfos counts %d\n%s", res.Sent, res.Failed, want, res.Output)
	}
	if _, err := ParseReplayOutput([]byte("tcpreplay: error")); err == nil {
		t.Fatal("no error for output without counts")
	}
}

func pcapsDir(t *testing.T) string {
	dir := os.Getenv("TAPIR_PCAPS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "pcaps")
	}
	if _, err := os.Stat(dir); err != nil {
		SkipOrFail(t, "shared pcaps not found (set TAPIR_PCAPS)")
	}
	return dir
}
