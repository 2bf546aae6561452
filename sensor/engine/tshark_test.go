package engine_test

import (
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/internal/tsharkoracle"
)

// tsharkConvs sums tshark's IP frames by tsharkoracle.Key. damaged says
// the file is known to be damaged: tshark's exit status is then ignored
// and what it printed before the damage is used.
func tsharkConvs(t *testing.T, path string, damaged bool) map[tsharkoracle.Key]tsharkoracle.Sum {
	t.Helper()
	frames, ok := tsharkoracle.Frames(t, path)
	if !ok && !damaged {
		t.Fatalf("tshark failed on %s", path)
	}
	return tsharkoracle.Sums(frames)
}

// TestFlowTotalsMatchTshark runs every shared capture through the sensor
// engine and compares packets and bytes per 5-tuple with tshark's.
func TestFlowTotalsMatchTshark(t *testing.T) {
	testenv.Tool(t, "tshark")
	var compared atomic.Int32
	t.Run("captures", func(t *testing.T) {
		for _, path := range testenv.Captures(t) {
			rel := testenv.Rel(t, path)
			t.Run(rel, func(t *testing.T) {
				plain := testenv.Plain(t, path)
				if !testenv.TsharkReadable(t, plain) {
					t.Skipf("tshark cannot read %s (pcapng conformance case); no oracle", rel)
				}
				t.Parallel()
				sink, st, runErr := runFile(t, plain, longTimeouts())
				if runErr != nil {
					// A damaged file: tshark must find it damaged too, and
					// both must agree on what came before the damage.
					if exec.Command(testenv.Tool(t, "tshark"), "-r", plain).Run() == nil {
						t.Fatalf("sensor failed on a file tshark reads: %v", runErr)
					}
					t.Logf("damaged file, as tshark agrees: %v", runErr)
				}
				got := tsharkoracle.RecordSums(sink.finals())
				want := tsharkConvs(t, plain, runErr != nil)
				var diffs []string
				for k, w := range want {
					if g := got[k]; g != w {
						diffs = append(diffs, fmt.Sprintf("%s: tapir %d pkts %d bytes, tshark %d pkts %d bytes", k, g.Packets, g.Bytes, w.Packets, w.Bytes))
					}
				}
				for k, g := range got {
					if _, ok := want[k]; !ok {
						diffs = append(diffs, fmt.Sprintf("%s: tapir %d pkts %d bytes, tshark none", k, g.Packets, g.Bytes))
					}
				}
				sort.Strings(diffs)
				if len(diffs) > 0 {
					t.Errorf("%d of %d conversations differ:\n%s", len(diffs), len(want), strings.Join(diffs, "\n"))
				}
				if st.Packets == 0 && len(want) > 0 {
					t.Error("engine read no packets")
				}
				compared.Add(1)
			})
		}
	})
	t.Logf("compared %d captures", compared.Load())
	if compared.Load() < 60 {
		t.Errorf("only %d captures compared", compared.Load())
	}
}
