package e2etest

import "testing"

func TestSumSamples(t *testing.T) {
	text := []byte(`# HELP tapir_x_total things
# TYPE tapir_x_total counter
tapir_x_total{sensor="a",kind="k1"} 3
tapir_x_total{sensor="b",kind="k1"} 4.5
tapir_x_total_extra 100
tapir_x 7
tapir_y 1e3
`)
	for _, c := range []struct {
		name, labels string
		want         float64
	}{
		{"tapir_x_total", "", 7.5},
		{"tapir_x_total", `sensor="b"`, 4.5},
		{"tapir_x_total", `kind="k2"`, 0},
		{"tapir_x", "", 7},
		{"tapir_y", "", 1000},
		{"tapir_z", "", 0},
	} {
		if got := SumSamples(text, c.name, c.labels); got != c.want {
			t.Errorf("SumSamples(%s, %q) = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
