package flowinput

import (
	"errors"
	"fmt"
	"testing"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// TestNotTemplateMiss checks that only errors made of template misses
// alone are dropped, however goflow2 nests its joins, and that a join
// holding anything else is kept whole.
func TestNotTemplateMiss(t *testing.T) {
	miss := netflow.ErrorTemplateNotFound
	other := errors.New("bad flowset")
	wrap := func(err error) error { return &netflow.DecoderError{Decoder: "IPFIX", Err: err} }
	cases := []struct {
		name string
		err  error
		keep bool
	}{
		{"nil", nil, false},
		{"miss", miss, false},
		{"wrapped miss", fmt.Errorf("set: %w", miss), false},
		{"other", other, true},
		{"join of misses", wrap(errors.Join(miss, miss)), false},
		// errors.Join(err, lerr) as goflow2 does it, one flowset at a time.
		{"nested joins of misses", wrap(wrap(errors.Join(errors.Join(errors.Join(miss), miss), miss))), false},
		{"join with other", wrap(errors.Join(miss, other)), true},
		{"nested join with other", wrap(errors.Join(errors.Join(miss, other), miss)), true},
		{"nested join with other only", errors.Join(errors.Join(miss, other)), true},
	}
	for _, c := range cases {
		got := notTemplateMiss(c.err)
		if c.keep && got != c.err {
			t.Errorf("%s: notTemplateMiss = %v, want the error kept", c.name, got)
		}
		if !c.keep && got != nil {
			t.Errorf("%s: notTemplateMiss = %v, want nil", c.name, got)
		}
	}
}
