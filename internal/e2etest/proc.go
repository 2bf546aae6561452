// Package e2etest holds what the end-to-end tests share to run tapir's
// binaries: child processes with their output captured for assertions
// and failure messages, killed when the test ends, and the reading of
// their Prometheus metrics; the binaries built once for a test package
// (Main, a TestMain); a collector started on the configuration its
// options describe (StartCollector: Pebble or HBase store, Kafka,
// OpenSearch, TLS, API tokens, ports); and private services started with
// the deploy scripts (StartServices).
package e2etest

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for one writer and many readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a child process started by Start.
type Proc struct {
	// Cmd is the running command.
	Cmd *exec.Cmd
	// Log holds its standard output and standard error, interleaved.
	Log  *Buffer
	done chan struct{}
}

// Start starts name with args, stdout and stderr captured together in
// Log. When the test ends the process is killed (SIGKILL) if it still
// runs.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.Command(name, args...), Log: &Buffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Log, p.Log
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.Cmd.Wait() // the exit status is read from Cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	select {
	case <-p.done:
	default:
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Stop sends SIGTERM and waits up to d for the process to end, then
// kills it.
func (p *Proc) Stop(d time.Duration) {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(d):
		p.Kill()
	}
}

// Wait waits up to d for the process to exit and returns its exit code
// and true; when d passes first it kills the process and returns -1 and
// false.
func (p *Proc) Wait(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		p.Kill()
		return -1, false
	}
}

// Exited reports whether the process has ended; ExitCode is valid then.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode returns the exit code of an ended process (-1 while it runs or
// when a signal ended it).
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// LastLines returns the last n lines of s (a log, for failure messages).
func LastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
