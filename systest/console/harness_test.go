package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/api"
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

// binaries builds tapir, tapir-collector and tapir-sensor into dir.
func binaries(tb testing.TB, dir string) {
	tb.Helper()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/tapir", "./cmd/tapir-collector", "./cmd/tapir-sensor")
	cmd.Dir = testenv.RepoRoot(tb)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
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
	bin := filepath.Join(e.dir, "bin")
	binaries(tb, bin)
	certs := filepath.Join(e.dir, "certs")
	e.bin, e.certs = bin, certs
	run(tb, filepath.Join(bin, "tapir"), "certs", "init", "-dir", certs)
	run(tb, filepath.Join(bin, "tapir"), "certs", "server", "-dir", certs, "localhost", "127.0.0.1")
	e.writeTokens(tb)
	e.startCollector(tb, bin, certs)
	// Timelines for every flow, in 10 ms intervals: the captures' flows
	// last well under the default minimum of 10 s.
	sensorCfg := e.sensorConfig()
	if err := os.WriteFile(sensorCfg, []byte("timeline:\n  interval: 10ms\n  min_duration: 0s\nmetrics:\n  listen: \"\"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	for i, c := range captures {
		id := fmt.Sprintf("console-sensor-%d", i+1)
		run(tb, filepath.Join(bin, "tapir"), "certs", "sensor", "-dir", certs, id)
		run(tb, filepath.Join(bin, "tapir-sensor"), "--config", sensorCfg, "-r", e.pcaps[c], "--sensor-id", id, "--collector", e.ingest,
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

func (e *env) writeTokens(tb testing.TB) {
	var b strings.Builder
	for name, roles := range tokenRoles {
		raw := make([]byte, 24)
		if _, err := rand.Read(raw); err != nil {
			tb.Fatal(err)
		}
		e.tokens[name] = hex.EncodeToString(raw)
		fmt.Fprintf(&b, "%q:\n  subject: console-%s\n  roles: %s\n", api.HashToken(e.tokens[name]), name, roles)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "tokens.yaml"), []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
}

var listening = regexp.MustCompile(`msg="(ingest|api) listening" (?:component=\S+ )?addr=(\S+)`)

func (e *env) startCollector(tb testing.TB, bin, certs string) {
	tb.Helper()
	e.audit = filepath.Join(e.dir, "audit.jsonl")
	tls := fmt.Sprintf("{ca: %s, cert: %s, key: %s}", filepath.Join(certs, "ca.pem"),
		filepath.Join(certs, "server.pem"), filepath.Join(certs, "server-key.pem"))
	// Retention by age is off: the shared captures are years old.
	cfg := fmt.Sprintf(`store:
  dir: %s
retention:
  max_age: 0s
ingest:
  listen: 127.0.0.1:0
  tls: %s
api:
  listen: 127.0.0.1:0
  tls: %s
  tokens_file: %s
  audit_file: %s
  audit_sync: false
metrics:
  listen: 127.0.0.1:0
`, filepath.Join(e.dir, "store"), tls, tls, filepath.Join(e.dir, "tokens.yaml"), e.audit)
	path := filepath.Join(e.dir, "collector.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	e.coll = e2etest.Start(tb, filepath.Join(bin, "tapir-collector"), "--config", path, "--log-level", "info")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		addrs := map[string]string{}
		for _, m := range listening.FindAllStringSubmatch(e.coll.Log.String(), -1) {
			addrs[m[1]] = m[2]
		}
		if addrs["api"] != "" && addrs["ingest"] != "" {
			e.base = "https://" + addrs["api"]
			e.ingest = addrs["ingest"]
			return
		}
		if e.coll.Exited() {
			break
		}
	}
	tb.Fatalf("collector did not start:\n%s", e.coll.Log.String())
}
