package e2etest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Binaries are tapir's binaries built for a test package by Main.
type Binaries struct {
	// Dir holds the binaries.
	Dir string
	// Collector, Sensor and Tapir are the paths of tapir-collector,
	// tapir-sensor and tapir in Dir (whether Main built them or not).
	Collector, Sensor, Tapir string
	// Err is the build's error: the tests that need the binaries fail
	// with it (Need).
	Err error
}

// Need fails the test when the binaries could not be built.
func (b *Binaries) Need(t testing.TB) {
	t.Helper()
	if b.Err != nil {
		t.Fatal(b.Err)
	}
}

// Main is a test package's TestMain: it builds the main packages pkgs
// (such as "./cmd/tapir-collector") into a temporary directory named
// after prefix, sets *b, runs the tests and exits with their code once
// it removed the directory. A failed build fails the tests that Need the
// binaries, not the others.
func Main(m *testing.M, b *Binaries, prefix string, pkgs ...string) {
	os.Exit(runBuilt(m, b, prefix, pkgs))
}

// runBuilt builds pkgs, runs m and returns its exit code.
func runBuilt(m *testing.M, b *Binaries, prefix string, pkgs []string) int {
	dir, err := Build(prefix, pkgs...)
	if dir == "" {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*b = Binaries{Dir: dir, Collector: filepath.Join(dir, "tapir-collector"), Sensor: filepath.Join(dir, "tapir-sensor"),
		Tapir: filepath.Join(dir, "tapir"), Err: err}
	return m.Run()
}
