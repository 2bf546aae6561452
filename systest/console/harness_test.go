package console

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/e2etest"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// Captures the console tests search, each streamed by its own sensor.
const (
	capHTTP = "zeek/get.pcap"                  // one HTTP/1.1 flow: packets, Follow Stream, pcap
	capTLS  = "arkime/curl-enabled-tls13.pcap" // TLS 1.3 with SNI enabled.tls13.com
	capDNS  = "arkime/dns-udp.pcap"            // DNS over UDP: www.github.com
	capWiki = "zeek/wikipedia.pcap"            // a browser's DNS and HTTP flows: fuller pages
	sniName = "enabled.tls13.com"
	dnsName = "www.github.com"
)

// captures are streamed in this order by sensors console-sensor-1, -2, ...
var captures = []string{capHTTP, capTLS, capDNS, capWiki}

// Roles of the tokens the tests sign in with.
var tokenRoles = map[string]string{
	"investigator": "[flows:read, pcap:read]",
	"viewer":       "[flows:read]",
	"admin":        "[admin]",
}

// env is a running collector fed with the captures, and the tokens to
// reach its API.
type env struct {
	dir     string
	bin     string // the binaries
	certs   string // the development CA (tapir certs)
	base    string // https://127.0.0.1:PORT
	ingest  string // the collector's ingest address
	audit   string // the collector's audit log
	tokens  map[string]string
	pcaps   map[string]string // capture name -> path
	sensors []string
	coll    *e2etest.Proc
}

var bin e2etest.Binaries

func TestMain(m *testing.M) {
	e2etest.Main(m, &bin, "tapir-console-bin-", "./cmd/tapir", "./cmd/tapir-collector", "./cmd/tapir-sensor")
}

// run runs a command to completion, failing the test on error.
func run(tb testing.TB, name string, args ...string) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// startEnv builds the binaries, makes a development CA, starts a
// collector (embedded store, mTLS ingest, TLS API with three tokens,
// audit log) and streams each capture to it with tapir-sensor -r.
func startEnv(tb testing.TB) *env {
	tb.Helper()
	e := &env{dir: tb.TempDir(), tokens: map[string]string{}, pcaps: map[string]string{}}
	for _, c := range captures {
		e.pcaps[c] = testenv.Pcap(tb, c)
	}
	bin.Need(tb)
	certs := filepath.Join(e.dir, "certs")
	e.bin, e.certs = bin.Dir, certs
	run(tb, bin.Tapir, "certs", "init", "-dir", certs)
	run(tb, bin.Tapir, "certs", "server", "-dir", certs, "localhost", "127.0.0.1")
	e.startCollector(tb, certs)
	// Timelines for every flow, in 10 ms intervals: the captures' flows
	// last well under the default minimum of 10 s.
	sensorCfg := e.sensorConfig()
	if err := os.WriteFile(sensorCfg, []byte("timeline:\n  interval: 10ms\n  min_duration: 0s\nmetrics:\n  listen: \"\"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	for i, c := range captures {
		id := fmt.Sprintf("console-sensor-%d", i+1)
		run(tb, bin.Tapir, "certs", "sensor", "-dir", certs, id)
		run(tb, bin.Sensor, "--config", sensorCfg, "-r", e.pcaps[c], "--sensor-id", id, "--collector", e.ingest,
			"--tls-dir", certs, "--spool-dir", filepath.Join(e.dir, "spool-"+id), "--log-level", "warn")
		e.sensors = append(e.sensors, id)
	}
	return e
}

// sensorConfig is the sensors' configuration file.
func (e *env) sensorConfig() string { return filepath.Join(e.dir, "sensor.yaml") }

// liveSensor starts a sensor capturing live on the loopback interface,
// only UDP to port, streaming to the collector until the test ends.
func (e *env) liveSensor(tb testing.TB, id string, port int) *e2etest.Proc {
	tb.Helper()
	testenv.Root(tb)
	run(tb, filepath.Join(e.bin, "tapir"), "certs", "sensor", "-dir", e.certs, id)
	p := e2etest.Start(tb, filepath.Join(e.bin, "tapir-sensor"), "--config", e.sensorConfig(), "-i", "lo",
		"--filter", fmt.Sprintf("udp dst port %d", port), "--sensor-id", id, "--collector", e.ingest,
		"--tls-dir", e.certs, "--spool-dir", filepath.Join(e.dir, "spool-"+id), "--log-level", "info")
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(p.Log.String(), "connected to collector"); {
		if p.Exited() || time.Now().After(deadline) {
			tb.Fatalf("live sensor did not connect:\n%s", p.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Cleanup(func() { p.Stop(10 * time.Second) })
	return p
}

// startCollector starts the collector with a token for each of
// tokenRoles (subject console-NAME).
func (e *env) startCollector(tb testing.TB, certs string) {
	tb.Helper()
	roles := map[string]string{}
	for name, r := range tokenRoles {
		roles["console-"+name] = r
	}
	c := e2etest.StartCollector(tb, bin.Collector, e2etest.CollectorOptions{Dir: e.dir, TLSDir: certs, Tokens: roles})
	for name := range tokenRoles {
		e.tokens[name] = c.Tokens["console-"+name]
	}
	e.coll, e.audit, e.base, e.ingest = c.Proc, c.Audit, "https://"+c.API, c.Ingest
}
