package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/api"
	"github.com/tapir-sensor/tapir/internal/e2etest"
)

// bin holds the paths of the binaries TestMain built.
var bin struct {
	dir                      string
	tapir, collector, sensor string
	err                      error
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "tapir-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin.dir = dir
		bin.err = buildBinaries(dir)
		return m.Run()
	}()
	os.Exit(code)
}

// buildBinaries builds the three commands once into dir.
func buildBinaries(dir string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	bin.tapir = filepath.Join(dir, "tapir")
	bin.collector = filepath.Join(dir, "tapir-collector")
	bin.sensor = filepath.Join(dir, "tapir-sensor")
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./cmd/tapir", "./cmd/tapir-collector", "./cmd/tapir-sensor")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, out)
	}
	return nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found")
		}
		dir = parent
	}
}

// needBinaries fails the test when the build failed.
func needBinaries(t testing.TB) {
	t.Helper()
	if bin.err != nil {
		t.Fatalf("building the binaries failed: %v", bin.err)
	}
}

// pki is a development CA directory made by `tapir certs`.
type pki struct{ dir string }

// newPKI makes a CA with a server certificate for 127.0.0.1 and sensor
// certificates for the given ids.
func newPKI(t testing.TB, dir string, sensors ...string) *pki {
	t.Helper()
	p := &pki{dir: dir}
	mustRun(t, 30*time.Second, bin.tapir, "certs", "init", "-dir", dir)
	mustRun(t, 30*time.Second, bin.tapir, "certs", "server", "-dir", dir, "localhost", "127.0.0.1")
	for _, s := range sensors {
		p.addSensor(t, s)
	}
	return p
}

func (p *pki) addSensor(t testing.TB, id string) {
	t.Helper()
	mustRun(t, 30*time.Second, bin.tapir, "certs", "sensor", "-dir", p.dir, id)
}

func (p *pki) ca() string { return filepath.Join(p.dir, "ca.pem") }

// mustRun runs a command to completion and returns its stdout.
func mustRun(t testing.TB, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstderr: %s", filepath.Base(name), strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// startProc starts argv[0] with the rest as arguments (e2etest.Start).
func startProc(t testing.TB, argv ...string) *e2etest.Proc {
	t.Helper()
	return e2etest.Start(t, argv[0], argv[1:]...)
}

// collector is one tapir-collector with its configuration and API client
// settings.
type collector struct {
	t                 testing.TB
	dir               string
	pki               *pki
	store, audit      string
	ingest, api, mets string // actual addresses
	token             string
	configPath        string
	proc              *e2etest.Proc
	starts            int
	// ns runs the collector and the tapir CLI in a network namespace.
	ns string
	// ingestExtra are more YAML lines of the ingest section (each
	// indented by two spaces), e.g. "  max_streams: 2\n".
	ingestExtra string
	// maxAge is retention.max_age ("": 0s, off).
	maxAge string
}

// newCollector writes the configuration (store, mTLS ingest, token API,
// audit log, metrics) and starts the collector on free loopback ports.
func newCollector(t testing.TB, dir string, p *pki) *collector {
	t.Helper()
	c := prepareCollector(t, dir, p)
	c.start()
	return c
}

// prepareCollector writes the configuration without starting the
// collector; set ingest/api/mets (or leave them for port 0) and call start.
func prepareCollector(t testing.TB, dir string, p *pki) *collector {
	t.Helper()
	needBinaries(t)
	c := &collector{t: t, dir: dir, pki: p, store: filepath.Join(dir, "store"),
		audit: filepath.Join(dir, "audit.jsonl")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tok := make([]byte, 24)
	rand.Read(tok)
	c.token = hex.EncodeToString(tok)
	tokens := fmt.Sprintf("%q:\n  subject: e2e-investigator\n  roles: [flows:read, pcap:read]\n", api.HashToken(c.token))
	if err := os.WriteFile(filepath.Join(dir, "tokens.yaml"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	c.configPath = filepath.Join(dir, "collector.yaml")
	return c
}

func (c *collector) writeConfig(ingest, apiAddr, metrics string) {
	tls := fmt.Sprintf("{ca: %s, cert: %s, key: %s}", c.pki.ca(),
		filepath.Join(c.pki.dir, "server.pem"), filepath.Join(c.pki.dir, "server-key.pem"))
	// Retention by age is off unless maxAge is set: the shared captures
	// are years old.
	maxAge := c.maxAge
	if maxAge == "" {
		maxAge = "0s"
	}
	cfg := fmt.Sprintf(`store:
  dir: %s
retention:
  max_age: %s
ingest:
  listen: %s
  tls: %s
%sapi:
  listen: %s
  tls: %s
  tokens_file: %s
  audit_file: %s
  audit_sync: false
  flows_max_limit: 100000
metrics:
  listen: %s
`, c.store, maxAge, ingest, tls, c.ingestExtra, apiAddr, tls, filepath.Join(c.dir, "tokens.yaml"), c.audit, metrics)
	if err := os.WriteFile(c.configPath, []byte(cfg), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

var listenRE = regexp.MustCompile(`msg="(ingest|api|metrics) listening" (?:component=\S+ )?addr=(\S+)`)

// start starts the collector and waits until its API listens. A restart
// reuses the addresses of the first start.
func (c *collector) start() {
	t := c.t
	t.Helper()
	addr := func(a string) string {
		if a == "" {
			return "127.0.0.1:0"
		}
		return a
	}
	c.writeConfig(addr(c.ingest), addr(c.api), addr(c.mets))
	c.starts++
	var last string
	for attempt := 0; attempt < 20; attempt++ {
		p := startProc(t, c.wrap(bin.collector, "--config", c.configPath, "--log-level", "info")...)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			log := p.Log.String()
			if strings.Contains(log, `msg="api listening"`) && strings.Contains(log, `msg="metrics listening"`) {
				for _, m := range listenRE.FindAllStringSubmatch(log, -1) {
					switch m[1] {
					case "ingest":
						c.ingest = m[2]
					case "api":
						c.api = m[2]
					case "metrics":
						c.mets = m[2]
					}
				}
				c.proc = p
				return
			}
			if p.Exited() {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.Kill()
		last = p.Log.String()
		if !strings.Contains(last, "address already in use") {
			break
		}
		time.Sleep(250 * time.Millisecond) // a restart on the same ports: wait for them
	}
	t.Fatalf("collector did not start:\n%s", last)
}

// wrap prefixes a command line with ip netns exec when c.ns is set.
func (c *collector) wrap(args ...string) []string {
	if c.ns == "" {
		return args
	}
	return append([]string{"ip", "netns", "exec", c.ns}, args...)
}

// sensorArgs are the flags that stream a file to this collector.
func (c *collector) sensorArgs(id, spool string) []string {
	return []string{"--sensor-id", id, "--collector", c.ingest, "--tls-dir", c.pki.dir,
		"--spool-dir", spool, "--log-level", "info"}
}

// tapir runs the tapir CLI against this collector's API with the token.
func (c *collector) tapir(ctx context.Context, args ...string) (stdout, stderr []byte, err error) {
	return c.tapirToken(ctx, c.token, args...)
}

func (c *collector) tapirToken(ctx context.Context, token string, args ...string) (stdout, stderr []byte, err error) {
	full := c.wrap(append([]string{bin.tapir, args[0], "--server", "https://" + c.api, "--ca", c.pki.ca()}, args[1:]...)...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = append(os.Environ(), "TAPIR_TOKEN="+token)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// ecsFlow is the part of a flow record the tests read.
type ecsFlow struct {
	Network struct {
		CommunityID string `json:"community_id"`
		Transport   string `json:"transport"`
		IANANumber  string `json:"iana_number"`
		EtherType   string `json:"ethertype"`
		Type        string `json:"type"`
		Packets     uint64 `json:"packets"`
		Bytes       uint64 `json:"bytes"`
	} `json:"network"`
	Source, Destination struct {
		IP   string `json:"ip"`
		MAC  string `json:"mac"`
		Port uint16 `json:"port"`
	}
	Event struct {
		Start  time.Time `json:"start"`
		End    time.Time `json:"end"`
		Reason string    `json:"reason"`
	} `json:"event"`
	Tapir struct {
		FlowID    string `json:"flow_id"`
		SensorID  string `json:"sensor_id"`
		Segment   uint32 `json:"segment"`
		Final     bool   `json:"final"`
		VLAN      uint16 `json:"vlan"`
		InnerVLAN uint16 `json:"inner_vlan"`
		// TunnelFlow marks the record of a tunnel's own connection
		// (its outer 5-tuple), beside the inner flows.
		TunnelFlow bool `json:"tunnel_flow"`
		Source     struct {
			StoredPackets uint64 `json:"stored_packets"`
		} `json:"source"`
		Destination struct {
			StoredPackets uint64 `json:"stored_packets"`
		} `json:"destination"`
	} `json:"tapir"`
}

func parseFlows(t testing.TB, out []byte) []ecsFlow {
	t.Helper()
	return e2etest.JSONLines[ecsFlow](t, out)
}

// flows lists the records matching a query (limit 100000); a search that
// matched nothing (tapir flows exits 1 saying so, as grep) lists none.
func (c *collector) flows(t testing.TB, query string) []ecsFlow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, stderr, err := c.tapir(ctx, "flows", "--json", "--limit", "100000", "--query", query)
	if e2etest.NoFlowsMatched(err, stderr) {
		return nil
	}
	if err != nil {
		t.Fatalf("tapir flows --query %q: %v\n%s", query, err, stderr)
	}
	if bytes.Contains(stderr, []byte("more flows matched")) {
		t.Fatalf("tapir flows --query %q: listing truncated", query)
	}
	return parseFlows(t, out)
}

// pcap fetches one flow's packets into out.
func (c *collector) pcap(ctx context.Context, flowID, out string, extra ...string) ([]byte, error) {
	args := append([]string{"pcap", "--flow", flowID, "-o", out}, extra...)
	_, stderr, err := c.tapir(ctx, args...)
	if err != nil {
		return stderr, fmt.Errorf("tapir pcap --flow %s: %w: %s", flowID, err, stderr)
	}
	return stderr, nil
}

// metric returns the sum of a Prometheus metric's samples whose label set
// contains labels (e.g. `result="stored"`), from the collector's /metrics.
func (c *collector) metric(t testing.TB, name, labels string) float64 {
	t.Helper()
	if c.ns != "" {
		t.Fatal("metric: not available in a namespace")
	}
	v, err := e2etest.Metric(c.mets, name, labels)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
