package ebpf

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"testing"

	"github.com/tapir-sensor/tapir/bpf"
)

// TestNamesMatchC is the guard that the map and program names and the
// constants the Go side uses are those of bpf/tapir.c and bpf/tapir.h,
// and that the generated bindings hold every map of the C source.
func TestNamesMatchC(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "bpf", "tapir.c"))
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := os.ReadFile(filepath.Join("..", "..", "bpf", "tapir.h"))
	if err != nil {
		t.Fatal(err)
	}
	var cMaps []string
	for _, m := range regexp.MustCompile(`\}\s*(\w+)\s+SEC\("\.maps"\)`).FindAllSubmatch(src, -1) {
		cMaps = append(cMaps, string(m[1]))
	}
	sort.Strings(cMaps)
	goMaps := []string{mapFlows, mapConfig, mapCounters, mapEvents, mapPinNets, mapPinPorts, mapPinFlows, mapFullAt}
	sort.Strings(goMaps)
	if !reflect.DeepEqual(cMaps, goMaps) {
		t.Errorf("maps in tapir.c %v, in names.go %v", cMaps, goMaps)
	}
	var genMaps []string
	ty := reflect.TypeOf(bpf.TapirMaps{})
	for i := 0; i < ty.NumField(); i++ {
		genMaps = append(genMaps, ty.Field(i).Tag.Get("ebpf"))
	}
	sort.Strings(genMaps)
	if !reflect.DeepEqual(cMaps, genMaps) {
		t.Errorf("maps in tapir.c %v, in the generated bindings %v (run make generate)", cMaps, genMaps)
	}
	for _, p := range []string{progCutoff} {
		if !regexp.MustCompile(`int ` + p + `\(`).Match(src) {
			t.Errorf("program %s not in tapir.c", p)
		}
	}
	for name, want := range map[string]int{"CFG_NEW_FLOW_EVENTS": cfgNewFlowEvents, "EVENT_NEW_FLOW": eventNewFlow, "EVENT_MAP_FULL": eventMapFull} {
		m := regexp.MustCompile(`#define ` + name + ` (\d+)`).FindSubmatch(hdr)
		if m == nil || string(m[1]) != itoa(want) {
			t.Errorf("%s in tapir.h %q, Go %d", name, m, want)
		}
	}
}

func itoa(i int) string { return string(rune('0' + i)) }
