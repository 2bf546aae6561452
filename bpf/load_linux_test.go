package bpf

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// TestLoad loads the program on the running kernel: the verifier must
// accept it.
func TestLoad(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("TAPIR_REQUIRE_ALL") == "1" {
			t.Fatal("TAPIR_REQUIRE_ALL=1 but loading eBPF needs root")
		}
		t.Skip("loading eBPF needs root")
	}
	var objs TapirObjects
	if err := LoadTapirObjects(&objs, &ebpf.CollectionOptions{}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("load: %+v", ve)
		}
		t.Fatalf("load: %v", err)
	}
	defer objs.Close()
	for name, p := range map[string]*ebpf.Program{"tapir_cutoff": objs.TapirCutoff} {
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		ins, _ := info.Instructions()
		t.Logf("%s: %s, %d instructions", name, p.Type(), len(ins))
	}
}
