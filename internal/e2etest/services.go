package e2etest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ModuleRoot returns the directory holding go.mod above the working
// directory ("." when there is none). It needs no test, for TestMain.
func ModuleRoot() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "."
		}
		dir = parent
	}
}

// Build builds the main packages pkgs (such as "./cmd/tapir-sensor") of
// the module at ModuleRoot into a new temporary directory named after
// prefix, which it returns (also on a build error) for the caller to
// remove.
func Build(prefix string, pkgs ...string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = ModuleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return dir, fmt.Errorf("go build: %w: %s", err, out)
	}
	return dir, nil
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitLog waits up to d until the process's log contains s; it fails the
// test when the process exits or d passes first.
func (p *Proc) WaitLog(t testing.TB, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Log.String(), s) {
			return
		}
		if p.Exited() {
			t.Fatalf("%s exited (%d):\n%s", filepath.Base(p.Cmd.Path), p.ExitCode(), p.Log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not log %q:\n%s", filepath.Base(p.Cmd.Path), s, p.Log.String())
}

// WaitMetric waits up to d until the metric (as Metric sums it) served at
// addr reaches at least v, and reports whether it did.
func WaitMetric(addr, name, labels string, v float64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got, err := Metric(addr, name, labels); err == nil && got >= v {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Services are private instances of services started with the scripts
// deploy/<name>/start.sh of the module at ModuleRoot, their data and logs
// in a test's temporary directory.
type Services struct {
	t   testing.TB
	env []string
	// Dir is the scripts' TAPIR_SERVICES_DIR.
	Dir string
}

// StartServices starts the named services (such as "kafka", "hbase") in
// order, with env added to the scripts' environment. t.Cleanup stops them
// in reverse order, first logging the last lines of deploy/<name>'s log
// <name>/<name>.log when the test failed.
func StartServices(t testing.TB, env []string, names ...string) *Services {
	t.Helper()
	s := &Services{t: t, Dir: t.TempDir()}
	s.env = append(append(os.Environ(), "TAPIR_SERVICES_DIR="+s.Dir), env...)
	t.Cleanup(func() { s.stop(names) })
	for _, n := range names {
		s.MustScript(n + "/start.sh")
	}
	return s
}

// stop logs the services' last log lines when the test failed and stops
// them in reverse order.
func (s *Services) stop(names []string) {
	if s.t.Failed() {
		for _, n := range names {
			f := n + "/" + n + ".log"
			if b, err := os.ReadFile(filepath.Join(s.Dir, f)); err == nil {
				s.t.Logf("last lines of %s:\n%s", f, LastLines(string(b), 30))
			}
		}
	}
	for i := len(names) - 1; i >= 0; i-- {
		_, _ = s.Script(names[i] + "/stop.sh")
	}
}

// Script runs deploy/<name> with args (five minutes at most) and returns
// its combined output.
func (s *Services) Script(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(ModuleRoot(), "deploy", name), args...)
	cmd.Env = s.env
	return cmd.CombinedOutput()
}

// MustScript runs Script and fails the test when the script fails.
func (s *Services) MustScript(name string, args ...string) {
	s.t.Helper()
	if out, err := s.Script(name, args...); err != nil {
		s.t.Fatalf("deploy/%s %v: %v\n%s", name, args, err, out)
	}
}
