package tunnels

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/flow"
	"github.com/tapir-sensor/tapir/internal/encaptest"
	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/sensor/capture"
	"github.com/tapir-sensor/tapir/sensor/engine"
)

// nullSink drops what the engine emits.
type nullSink struct{}

func (*nullSink) AddRecord(*flow.Record) error { return nil }
func (*nullSink) AddBlock([]byte) error        { return nil }

// engineMetrics runs the sensor engine over path with a registry and
// returns it.
func engineMetrics(t *testing.T, path string) *prometheus.Registry {
	t.Helper()
	return engineMetricsWith(t, path, nil)
}

// engineMetricsWith is engineMetrics with the engine configuration
// changed by set (nil: the defaults).
func engineMetricsWith(t *testing.T, path string, set func(*engine.Config)) *prometheus.Registry {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	reg := prometheus.NewRegistry()
	cfg := engine.DefaultConfig()
	cfg.SensorID = "tunnels"
	if set != nil {
		set(&cfg)
	}
	e, err := engine.New(cfg, engine.Dependencies{Sources: []capture.Source{src}, Sink: &nullSink{}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	if err := e.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestTunnelMetrics: the decoder's tunnel counters reach the sensor's
// Prometheus metrics: zeek/vxlan.pcap has 8 ICMP packets inside VXLAN and
// 2 ARP frames (opaque: keyed on the tunnel); a built VXLAN-in-GRE
// capture counts both levels per packet.
func TestTunnelMetrics(t *testing.T) {
	reg := engineMetrics(t, testenv.Pcap(t, "zeek/vxlan.pcap"))
	vxlan := prometheus.Labels{"type": "vxlan"}
	for name, want := range map[string]float64{"tapir_sensor_tunnel_opaque_total": 2, "tapir_sensor_tunnel_depth_limit_total": 0,
		"tapir_sensor_tunnel_fragments_total": 0} {
		if got := gather(t, reg, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := gather(t, reg, "tapir_sensor_tunnels_total", vxlan); got != 8 {
		t.Errorf("tunnels_total{type=vxlan} = %v, want 8", got)
	}
	path := t.TempDir() + "/vxlan-gre.pcap"
	wrapped, _, err := encaptest.File(encaptest.VXLANInGR, testenv.Pcap(t, "community-id-spec/tcp.pcap"), path)
	if err != nil {
		t.Fatal(err)
	}
	reg = engineMetrics(t, path)
	for _, typ := range []string{"gre", "vxlan"} {
		if got := gather(t, reg, "tapir_sensor_tunnels_total", prometheus.Labels{"type": typ}); got != float64(wrapped) {
			t.Errorf("tunnels_total{type=%s} = %v, want %d", typ, got, wrapped)
		}
	}
}

// gather returns the value of the metric name with the given labels.
func gather(t *testing.T, reg *prometheus.Registry, name string, labels prometheus.Labels) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s%v not exported", name, labels)
	return 0
}
