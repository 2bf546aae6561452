package output_test

import (
	"reflect"
	"testing"

	"github.com/tapir-sensor/tapir/sensor/ebpf"
	"github.com/tapir-sensor/tapir/sensor/engine"
	"github.com/tapir-sensor/tapir/sensor/output"
)

// TestOneSinkInterface: the engine's sink and the eBPF merge's sink are
// output.Sink itself, not copies of its methods.
func TestOneSinkInterface(t *testing.T) {
	want := reflect.TypeFor[output.Sink]()
	deps, _ := reflect.TypeFor[engine.Dependencies]().FieldByName("Sink")
	for name, got := range map[string]reflect.Type{
		"engine.Sink":                  reflect.TypeFor[engine.Sink](),
		"engine.Dependencies.Sink":     deps.Type,
		"ebpf.NewMergeSink's argument": reflect.TypeOf(ebpf.NewMergeSink).In(0),
	} {
		if got != want {
			t.Errorf("%s is %v, want %v", name, got, want)
		}
	}
	var _ output.Sink = (*ebpf.MergeSink)(nil)
	var _ output.Sink = output.Multi(nil)
}
