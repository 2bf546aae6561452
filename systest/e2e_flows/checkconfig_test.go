package e2eflows

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// TestCheckConfigRefusesSharedListener runs `tapir-collector
// check-config` on a flow_input whose NetFlow and sFlow listeners share
// an address: exit 2 naming both (before: "configuration ok", and the
// sFlow listener never opened). Distinct ports pass.
func TestCheckConfigRefusesSharedListener(t *testing.T) {
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/tapir-collector")
	build.Dir = testenv.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "tapir-collector")
	for _, tc := range []struct {
		sflow string
		code  int
		want  string
	}{
		{":2055", 2, `netflow and sflow listen on the same address (":2055", ":2055")`},
		{"0.0.0.0:2055", 2, "same address"},
		{":6343", 0, "configuration ok"},
	} {
		cfg := filepath.Join(dir, "collector.yaml")
		yaml := "ingest:\n  tls:\n    insecure: true\napi:\n  tls:\n    insecure: true\nflow_input:\n  enabled: true\n  netflow: \":2055\"\n  sflow: \"" + tc.sflow + "\"\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(bin, "check-config", "--config", cfg)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("sflow %q: exit %d, %q; want exit %d and %q", tc.sflow, code, out.String(), tc.code, tc.want)
		}
	}
}
