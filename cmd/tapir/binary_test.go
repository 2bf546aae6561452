package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// binaries builds tapir, tapir-sensor and tapir-collector once into a
// temporary directory, as `make build` does, for tests that run them the
// way an investigator does.
var binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tapir-cli-bin")
	if err != nil {
		return "", err
	}
	builtDir = dir
	out, err := exec.Command("go", "build", "-ldflags", "-X github.com/tapir-sensor/tapir/internal/version.Version=v9.9.9-test",
		"-o", dir+"/", "github.com/tapir-sensor/tapir/cmd/tapir", "github.com/tapir-sensor/tapir/cmd/tapir-sensor",
		"github.com/tapir-sensor/tapir/cmd/tapir-collector").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
})

// builtDir is the directory binaries made, removed by TestMain.
var builtDir string

// TestMain removes the binaries built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// binary returns the path of one built binary.
func binary(t *testing.T, name string) string {
	t.Helper()
	dir, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// execTapir runs the tapir binary with extra environment entries and
// returns its exit status, stdout and stderr.
func execTapir(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary(t, "tapir"), args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run tapir: %v", err)
	}
	return code, so.String(), se.String()
}

// TestVersion: every binary answers --version with its name, the
// version set at link time, a commit and the Go version, exit 0.
func TestVersion(t *testing.T) {
	for _, name := range []string{"tapir", "tapir-sensor", "tapir-collector"} {
		out, err := exec.Command(binary(t, name), "--version").Output()
		s := string(out)
		if err != nil || !strings.HasPrefix(s, name+" v9.9.9-test (commit ") || !strings.Contains(s, " go1.") {
			t.Errorf("%s --version: %v: %q", name, err, s)
		}
	}
}
