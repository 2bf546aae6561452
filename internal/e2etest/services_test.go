package e2etest

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitLog(t *testing.T) {
	p := Start(t, "sh", "-c", "sleep 0.1; echo ready; exec sleep 30")
	p.WaitLog(t, "ready", 10*time.Second)
	if p.Exited() {
		t.Error("WaitLog returned after the process ended")
	}
}

func TestWaitMetric(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "tapir_x_total{result=\"ok\"} %d\n", n.Add(1))
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	if !WaitMetric(addr, "tapir_x_total", `result="ok"`, 3, 10*time.Second) {
		t.Error("WaitMetric did not see the counter reach 3")
	}
	if WaitMetric(addr, "tapir_x_total", `result="bad"`, 1, 100*time.Millisecond) {
		t.Error("WaitMetric reported a metric that is not served")
	}
}

func TestModuleRootAndFreePort(t *testing.T) {
	if _, err := os.Stat(filepath.Join(ModuleRoot(), "go.mod")); err != nil {
		t.Fatalf("ModuleRoot %q holds no go.mod: %v", ModuleRoot(), err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", FreePort(t)))
	if err != nil {
		t.Fatalf("FreePort returned a port in use: %v", err)
	}
	_ = ln.Close()
}
