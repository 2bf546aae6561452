package e2eflows

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/flowinput"
	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// nfcapd runs nfcapd on 127.0.0.1:port writing into a new directory;
// stop ends it (SIGTERM, which flushes its file) and returns the directory.
func nfcapd(t *testing.T) (port int, stop func() (dir string, seqErrors int)) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port, stop, err := startNfcapd(t)
		if err == nil {
			return port, stop
		}
		if attempt == 2 {
			t.Fatal(err)
		}
		t.Logf("retrying: %v", err)
	}
}

func startNfcapd(t *testing.T) (int, func() (string, int), error) {
	bin := testenv.Tool(t, "nfcapd")
	dir := t.TempDir()
	port := freeUDPPort(t)
	cmd := exec.Command(bin, "-w", dir, "-p", strconv.Itoa(port), "-b", "127.0.0.1")
	var out e2etest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nfcapd: %v", err)
	}
	stopped := false
	stopFn := func() (string, int) {
		if stopped {
			return dir, seqErrs(out.String())
		}
		stopped = true
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Logf("nfcapd stopped: %v", err)
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Logf("nfcapd killed: %v", <-done)
		}
		t.Logf("nfcapd: %s", e2etest.LastLines(out.String(), 3))
		return dir, seqErrs(out.String())
	}
	t.Cleanup(func() { stopFn() })
	if !waitUDPBound(port) {
		stopFn()
		return 0, nil, fmt.Errorf("nfcapd did not bind udp port %d: %s", port, e2etest.LastLines(out.String(), 3))
	}
	return port, stopFn, nil
}

// seqErrs sums the "Sequence Errors: N" nfcapd logs at exit.
func seqErrs(log string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if _, v, ok := strings.Cut(l, "Sequence Errors: "); ok {
			x, _ := strconv.Atoi(strings.TrimRight(strings.SplitN(v, ",", 2)[0], " "))
			n += x
		}
	}
	return n
}

// waitUDPBound waits until a socket is bound to 127.0.0.1:port, as
// /proc/net/udp lists them (probing by binding would race the peer).
func waitUDPBound(port int) bool {
	want := fmt.Sprintf("0100007F:%04X", port)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		raw, _ := os.ReadFile("/proc/net/udp")
		for _, l := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[1] == want {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// nfRow is one flow as nfdump prints it.
type nfRow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            string
	Packets, Bytes   uint64 // forward (ipkt, ibyt)
	RPackets, RBytes uint64 // reverse (opkt, obyt), biflows only
}

func (r nfRow) String() string {
	return fmt.Sprintf("%s %s:%d -> %s:%d pkts %d bytes %d rev %d/%d", r.Proto, r.Src, r.SrcPort, r.Dst, r.DstPort, r.Packets, r.Bytes, r.RPackets, r.RBytes)
}

// nfdump reads every file nfcapd wrote in dir with `nfdump -o csv`.
func nfdump(t *testing.T, dir string) []nfRow {
	t.Helper()
	bin := testenv.Tool(t, "nfdump")
	out, err := exec.Command(bin, "-R", dir, "-o", "csv").CombinedOutput()
	if err != nil {
		t.Fatalf("nfdump: %v: %s", err, out)
	}
	rd := csv.NewReader(bytes.NewReader(out))
	rd.FieldsPerRecord = -1
	recs, err := rd.ReadAll()
	if err != nil {
		t.Fatalf("nfdump csv: %v", err)
	}
	var rows []nfRow
	var col map[string]int
	for _, rec := range recs {
		if len(rec) > 0 && rec[0] == "ts" {
			col = map[string]int{}
			for i, c := range rec {
				col[c] = i
			}
			continue
		}
		if col == nil || len(rec) < len(col) || strings.HasPrefix(rec[0], "Summary") {
			continue
		}
		get := func(k string) string { return strings.TrimSpace(rec[col[k]]) }
		num := func(k string) uint64 { v, _ := strconv.ParseUint(get(k), 10, 64); return v }
		src, err1 := netip.ParseAddr(get("sa"))
		dst, err2 := netip.ParseAddr(get("da"))
		if err1 != nil || err2 != nil {
			continue
		}
		r := nfRow{Src: src, Dst: dst, Proto: get("pr"), Packets: num("ipkt"), Bytes: num("ibyt"), RPackets: num("opkt"), RBytes: num("obyt")}
		r.SrcPort, r.DstPort = nfPort(get("sp")), nfPort(get("dp"))
		rows = append(rows, r)
	}
	if len(rows) == 0 && !strings.Contains(string(out), "No matching flows") {
		t.Fatalf("nfdump printed no flows: %s", e2etest.LastLines(string(out), 5))
	}
	return rows
}

// nfPort parses a port column; ICMP shows "type.code".
func nfPort(s string) uint16 {
	if a, b, ok := strings.Cut(s, "."); ok {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return uint16(x<<8 | y)
	}
	v, _ := strconv.Atoi(s)
	return uint16(v)
}

// protoName renders a protocol number the way nfdump does.
func protoName(p uint8) string {
	switch p {
	case flow.ProtoTCP:
		return "TCP"
	case flow.ProtoUDP:
		return "UDP"
	case flow.ProtoICMP:
		return "ICMP"
	case flow.ProtoICMPv6:
		return "ICMP6"
	case flow.ProtoSCTP:
		return "SCTP"
	case 46:
		return "RSVP"
	case 47:
		return "GRE"
	case 50:
		return "ESP"
	}
	return strconv.Itoa(int(p))
}

// collector is a flowinput.Input on 127.0.0.1 collecting delivered records.
type collector struct {
	in   *flowinput.Input
	port int
	mu   sync.Mutex
	recs []flow.Record
}

func startInput(t *testing.T, templates string) *collector {
	t.Helper()
	c := &collector{}
	cfg := flowinput.DefaultConfig()
	cfg.Enabled = true
	cfg.NetFlow, cfg.IPFIX, cfg.SFlow = "127.0.0.1:0", "", ""
	cfg.TemplatesFile = templates
	cfg.FlushInterval = 50 * time.Millisecond
	in, err := flowinput.New(cfg, flowinput.Dependencies{Deliver: func(_ context.Context, b flowinput.Batch) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i := range b.Records {
			if b.Records[i].SensorID != b.SensorID {
				t.Errorf("record of %s in batch of %s", b.Records[i].SensorID, b.SensorID)
			}
		}
		c.recs = append(c.recs, b.Records...)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	c.in = in
	c.port = in.Addrs()[0].(*net.UDPAddr).Port
	return c
}

// records stops the input (delivering everything pending) and returns
// the records.
func (c *collector) records() []flow.Record {
	c.in.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recs
}

// softflowd exports the capture to every port with NetFlow version v.
func softflowd(t *testing.T, pcap string, version int, ports ...int) {
	t.Helper()
	bin := testenv.Tool(t, "softflowd")
	var dst []string
	for _, p := range ports {
		dst = append(dst, fmt.Sprintf("127.0.0.1:%d", p))
	}
	dir := t.TempDir()
	// -d: stay in the foreground; at the end of the file softflowd
	// expires every flow and sends it. (With -c, softflowd waits on its
	// control socket after reading the file: not given.)
	cmd := exec.Command(bin, "-r", pcap, "-n", strings.Join(dst, ","), "-v", strconv.Itoa(version), "-d")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("softflowd -v %d: %v: %s", version, err, e2etest.LastLines(string(out), 8))
	}
}

// rowKey is the comparison key of a unidirectional flow.
type rowKey struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            string
	Packets, Bytes   uint64
}

func keysOfRows(rows []nfRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprint(rowKey{r.Src, r.Dst, r.SrcPort, r.DstPort, r.Proto, r.Packets, r.Bytes}))
		if r.RPackets > 0 {
			out = append(out, fmt.Sprint(rowKey{r.Dst, r.Src, r.DstPort, r.SrcPort, r.Proto, r.RPackets, r.RBytes}))
		}
	}
	sort.Strings(out)
	return out
}

// portsOf renders a tuple's ports as nfdump does: ICMP type<<8|code in
// the destination port, source port 0.
func portsOf(t *flow.Tuple, icmp6 bool) (uint16, uint16) {
	switch {
	case t.Proto == flow.ProtoICMP || t.Proto == flow.ProtoICMPv6 && icmp6:
		return 0, t.SrcPort<<8 | t.DstPort
	case t.Proto == flow.ProtoICMPv6:
		return 0, 0
	}
	return t.SrcPort, t.DstPort
}

// keysOfRecords renders records as nfdump rows; icmp6 false zeroes
// ICMPv6 type and code, which nfdump does not show for NetFlow v9.
func keysOfRecords(recs []flow.Record, icmp6 bool) []string {
	var out []string
	for i := range recs {
		r := &recs[i]
		src, dst := r.Tuple.Src.Netip(r.Tuple.Family), r.Tuple.Dst.Netip(r.Tuple.Family)
		sp, dp := portsOf(&r.Tuple, icmp6)
		if r.Source.Packets > 0 {
			out = append(out, fmt.Sprint(rowKey{src, dst, sp, dp, protoName(r.Tuple.Proto), r.Source.Packets, r.Source.Bytes}))
		}
		if r.Destination.Packets > 0 {
			rsp, rdp := dp, sp
			if r.Tuple.Proto == flow.ProtoICMP || r.Tuple.Proto == flow.ProtoICMPv6 {
				rsp, rdp = 0, dp // reply type is not known here; compared as exported
			}
			out = append(out, fmt.Sprint(rowKey{dst, src, rsp, rdp, protoName(r.Tuple.Proto), r.Destination.Packets, r.Destination.Bytes}))
		}
	}
	sort.Strings(out)
	return out
}

// diff reports the first differences between two sorted lists.
func diff(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	g, w := map[string]int{}, map[string]int{}
	for _, s := range got {
		g[s]++
	}
	for _, s := range want {
		w[s]++
	}
	n := 0
	for s, c := range w {
		if g[s] != c && n < 10 {
			t.Errorf("%s: %s: oracle has %d, tapir %d", what, s, c, g[s])
			n++
		}
	}
	for s, c := range g {
		if w[s] != c && n < 20 {
			t.Errorf("%s: %s: tapir has %d, oracle %d", what, s, c, w[s])
			n++
		}
	}
	t.Errorf("%s: tapir %d flows, oracle %d", what, len(got), len(want))
}
