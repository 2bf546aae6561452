// Package netnstest builds throwaway network namespaces joined by a veth
// pair for tests that capture or inject real traffic, and replays captures
// into them with tcpreplay. Nothing touches the host's interfaces: both
// veth ends live in namespaces of their own, with addresses from the
// documentation ranges (192.0.2.0/24, 198.51.100.0/24) assigned only on
// them, and t.Cleanup deletes the namespaces (and with them the veths)
// even when the test fails.
//
// The helpers need root and the ip tool (iproute2); tcpreplay and ethtool
// where asked for. When one is missing the test is skipped with the reason,
// or fails when TAPIR_REQUIRE_ALL=1. Helpers are safe for use by parallel
// tests: every pair has names derived from the test name and a counter.
package netnstest

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Options configures a Pair.
type Options struct {
	// MTU of both veth ends (default 9000; shared captures hold frames
	// larger than 1500 bytes). Up to 65535 on veth.
	MTU int
	// OffloadsOff turns GRO, GSO, TSO, LRO and VLAN offloads off on both
	// ends with ethtool (required then).
	OffloadsOff bool
	// KeepIPv6 leaves IPv6 enabled; by default it is disabled in both
	// namespaces so that no router or neighbour solicitations appear.
	KeepIPv6 bool
}

// Pair is two namespaces joined by a veth pair.
type Pair struct {
	// CaptureNS holds CaptureIf, the end a sensor captures on.
	CaptureNS, CaptureIf string
	// PeerNS holds PeerIf, the end traffic is injected on.
	PeerNS, PeerIf string
	// CaptureAddr and PeerAddr are the IPv4 addresses (with /24) of the ends.
	CaptureAddr, PeerAddr string
}

var counter atomic.Uint64

// RequireAll reports whether missing prerequisites must fail tests
// (TAPIR_REQUIRE_ALL=1).
func RequireAll() bool { return os.Getenv("TAPIR_REQUIRE_ALL") == "1" }

// SkipOrFail skips t with reason, or fails it when TAPIR_REQUIRE_ALL=1.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if RequireAll() {
		t.Fatalf("TAPIR_REQUIRE_ALL=1 but %s", reason)
	}
	t.Skip(reason)
}

// Require skips (or fails) t unless it runs as root with ip and tools.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root for network namespaces")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			SkipOrFail(t, tool+" not installed")
		}
	}
}

// New creates a namespace pair for t.
func New(t testing.TB, opts Options) *Pair {
	t.Helper()
	tools := []string{}
	if opts.OffloadsOff {
		tools = append(tools, "ethtool")
	}
	Require(t, tools...)
	if opts.MTU == 0 {
		opts.MTU = 9000
	}
	sum := sha1.Sum(fmt.Appendf(nil, "%s/%d/%d", t.Name(), os.Getpid(), counter.Add(1)))
	id := hex.EncodeToString(sum[:4])
	p := &Pair{
		CaptureNS: "tapir-" + id + "-c", CaptureIf: "tp" + id + "c",
		PeerNS: "tapir-" + id + "-p", PeerIf: "tp" + id + "p",
		CaptureAddr: "192.0.2.1/24", PeerAddr: "192.0.2.2/24",
	}
	for _, ns := range []string{p.CaptureNS, p.PeerNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("delete namespace %s: %v: %s", ns, err, out)
			}
		})
	}
	run(t, "ip", "link", "add", p.CaptureIf, "netns", p.CaptureNS, "type", "veth",
		"peer", "name", p.PeerIf, "netns", p.PeerNS)
	for _, end := range []struct{ ns, ifc, addr string }{
		{p.CaptureNS, p.CaptureIf, p.CaptureAddr}, {p.PeerNS, p.PeerIf, p.PeerAddr},
	} {
		if !opts.KeepIPv6 {
			run(t, "ip", "netns", "exec", end.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
			run(t, "ip", "netns", "exec", end.ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
		}
		run(t, "ip", "-n", end.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", end.ns, "link", "set", end.ifc, "mtu", strconv.Itoa(opts.MTU))
		run(t, "ip", "-n", end.ns, "addr", "add", end.addr, "dev", end.ifc)
		if opts.OffloadsOff {
			run(t, "ip", "netns", "exec", end.ns, "ethtool", "-K", end.ifc,
				"gro", "off", "gso", "off", "tso", "off", "rxvlan", "off", "txvlan", "off")
		}
	}
	for _, end := range [][2]string{{p.CaptureNS, p.CaptureIf}, {p.PeerNS, p.PeerIf}} {
		run(t, "ip", "-n", end[0], "link", "set", end[1], "up")
	}
	return p
}

// Exec runs a command inside namespace ns and returns its combined output.
func Exec(ns string, args ...string) ([]byte, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	return cmd.CombinedOutput()
}

// Do runs fn on a thread switched into namespace ns. Sockets fn opens stay
// in ns after Do returns, and may be used from any goroutine.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked if it cannot be switched back, so
		// the runtime retires it with the goroutine.
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", ns, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// ReplayResult is what tcpreplay reported.
type ReplayResult struct {
	Sent, Failed, Truncated, RetriedENOBUFS, RetriedEAGAIN int
	// Output is tcpreplay's full output.
	Output string
}

// Replay sends file out of iface in namespace ns with tcpreplay at pps
// packets per second (or mbps megabits per second when pps is 0) and
// returns tcpreplay's counts. It skips (or fails) t without tcpreplay.
func Replay(t testing.TB, ns, iface, file string, pps int, mbps float64) (ReplayResult, error) {
	t.Helper()
	Require(t, "tcpreplay")
	args := []string{"tcpreplay", "-i", iface}
	switch {
	case pps > 0:
		args = append(args, "--pps", strconv.Itoa(pps))
	case mbps > 0:
		args = append(args, "--mbps", strconv.FormatFloat(mbps, 'f', -1, 64))
	default:
		args = append(args, "--topspeed")
	}
	out, err := Exec(ns, append(args, file)...)
	res, perr := ParseReplayOutput(out)
	res.Output = string(out)
	if err != nil {
		return res, fmt.Errorf("tcpreplay: %w: %s", err, out)
	}
	return res, perr
}

// ParseReplayOutput parses tcpreplay's statistics.
func ParseReplayOutput(out []byte) (ReplayResult, error) {
	var r ReplayResult
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Successful packets":
			r.Sent, found = n, found+1
		case "Failed packets":
			r.Failed, found = n, found+1
		case "Truncated packets":
			r.Truncated = n
		case "Retried packets (ENOBUFS)":
			r.RetriedENOBUFS = n
		case "Retried packets (EAGAIN)":
			r.RetriedEAGAIN = n
		}
	}
	if found < 2 {
		return r, fmt.Errorf("no packet counts in tcpreplay output: %q", out)
	}
	return r, nil
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
