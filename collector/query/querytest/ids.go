// Package querytest holds the query language's test helpers for the
// packages that answer queries (the API, the CLI).
package querytest

import (
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/collector/query"
	"github.com/tapir-sensor/tapir/flow"
)

// MatchingIDs returns the flow IDs of the records expr matches (parsed
// at now, default limits): the answer a search must give, computed by
// Match alone. It fails the test on a parse error.
func MatchingIDs(t testing.TB, recs []flow.Record, expr string, now time.Time) map[string]bool {
	t.Helper()
	q, err := query.Parse(expr, now, query.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for i := range recs {
		if q.Match(&recs[i]) {
			out[recs[i].ID.String()] = true
		}
	}
	return out
}
