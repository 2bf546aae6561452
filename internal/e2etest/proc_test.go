package e2etest

import (
	"strings"
	"testing"
	"time"
)

func TestProc(t *testing.T) {
	p := Start(t, "sh", "-c", "echo out; echo err >&2; exit 3")
	if code, ok := p.Wait(10 * time.Second); !ok || code != 3 {
		t.Fatalf("Wait = %d, %v; want 3, true", code, ok)
	}
	if got := p.Log.String(); !strings.Contains(got, "out\n") || !strings.Contains(got, "err\n") {
		t.Errorf("log %q lacks stdout or stderr", got)
	}
	if !p.Exited() || p.ExitCode() != 3 {
		t.Errorf("Exited %v, ExitCode %d after exit 3", p.Exited(), p.ExitCode())
	}

	slow := Start(t, "sleep", "30")
	if slow.Exited() || slow.ExitCode() != -1 {
		t.Fatal("sleep 30 reported ended at once")
	}
	start := time.Now()
	if code, ok := slow.Wait(50 * time.Millisecond); ok || code != -1 {
		t.Errorf("Wait on a running process = %d, %v; want -1, false", code, ok)
	}
	if !slow.Exited() || time.Since(start) > 10*time.Second {
		t.Error("Wait did not kill the process when its time ran out")
	}

	term := Start(t, "sleep", "30")
	term.Stop(10 * time.Second)
	if !term.Exited() {
		t.Error("Stop left the process running")
	}
}

func TestLastLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{{"a\nb\nc\n", 2, "b\nc"}, {"a\nb", 5, "a\nb"}, {"", 3, ""}, {"a\nb\nc", 1, "c"}} {
		if got := LastLines(c.in, c.n); got != c.want {
			t.Errorf("LastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
