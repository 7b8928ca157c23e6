package billing

import (
	"math"

	"github.com/meterd/meterd/rules"
)

// roundQty turns a meter's measure into Stripe's whole quantity. The
// measure is first rounded to 9 decimals so that float sums such as
// 0.1+0.2 do not ceil to one unit more than the exact total.
func roundQty(v float64, mode string) int64 {
	v = math.Round(v*1e9) / 1e9
	switch mode {
	case rules.RoundFloor:
		v = math.Floor(v)
	case rules.RoundHalf:
		v = math.Round(v)
	default:
		v = math.Ceil(v)
	}
	return int64(v)
}

// runningQuantities rounds the running total after each bucket and gives
// each bucket the difference, so the quantities always add up to the
// rounded total (no drift from rounding buckets one by one). It returns
// the quantities and the rounded cumulative totals.
func runningQuantities(values []float64, mode string) (qty, cum []int64) {
	qty, cum = make([]int64, len(values)), make([]int64, len(values))
	var total float64
	var prev int64
	for i, v := range values {
		total += v
		r := roundQty(total, mode)
		qty[i], cum[i] = r-prev, r
		prev = r
	}
	return qty, cum
}
