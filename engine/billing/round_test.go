package billing

import (
	"testing"

	"github.com/meterd/meterd/rules"
)

func TestRunningQuantitiesAddUpToTheRoundedTotal(t *testing.T) {
	values := []float64{0.4, 0.4, 0.4, 0.1, 0.2, 2.5, 0, 0.3}
	var total float64
	for _, v := range values {
		total += v
	}
	for mode, want := range map[string]int64{rules.RoundCeil: 5, rules.RoundFloor: 4, rules.RoundHalf: 4, "": 5} {
		qty, cum := runningQuantities(values, mode)
		var sum int64
		for i, q := range qty {
			if q < 0 {
				t.Fatalf("%s: bucket %d quantity %d < 0", mode, i, q)
			}
			sum += q
		}
		if sum != want || cum[len(cum)-1] != want || roundQty(total, mode) != want {
			t.Fatalf("%s: buckets add up to %d (cum %v), want %d", mode, sum, cum, want)
		}
	}
	// Rounding each bucket alone would bill 8 (ceil) for a total of 4.3.
	if q, _ := runningQuantities([]float64{0.1, 0.2}, rules.RoundCeil); q[0]+q[1] != 1 {
		t.Fatalf("0.1+0.2 ceils to %d, want 1", q[0]+q[1])
	}
}
