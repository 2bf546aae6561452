package output_test

import (
	"bytes"
	"testing"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/sensor/engine"
	"github.com/tapir-sensor/tapir/sensor/engine/enginetest"
	"github.com/tapir-sensor/tapir/sensor/output"
)

// TestFlowsJSONRealCaptures: over the records the engine makes of every
// shared capture (default settings, and long flows with timelines), each
// line --flows-out writes is the ECS object's encoding (ToECS, then the
// ECS encoder that matches encoding/json): the plain records' direct
// encoder writes the same bytes.
func TestFlowsJSONRealCaptures(t *testing.T) {
	compared, plain := 0, 0
	for _, path := range testenv.Captures(t) {
		for _, cfg := range []engine.Config{engine.DefaultConfig(), enginetest.LongFlowConfig()} {
			recs, err := enginetest.Records(testenv.Plain(t, path), cfg)
			if err != nil {
				t.Logf("%s: %v", testenv.Rel(t, path), err)
				continue // a damaged capture: its records are checked where it is read whole
			}
			var buf bytes.Buffer
			f := output.NewFlowsJSON(&buf, nil)
			for i := range recs {
				if err := f.AddRecord(&recs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
			for i := range recs {
				r := &recs[i]
				want, err := r.ToECS().AppendJSON(nil)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(lines[i], append(want, '\n')) {
					t.Fatalf("%s record %d:\n got %s\nwant %s", testenv.Rel(t, path), i, lines[i], want)
				}
				if r.App == nil && r.Timeline == nil && r.Tunnels.Len() == 0 {
					plain++
				}
				compared++
			}
		}
	}
	t.Logf("%d records compared, %d plain", compared, plain)
	if plain < 500 || compared == plain {
		t.Fatalf("%d records compared, %d plain: the captures do not cover both paths", compared, plain)
	}
}
