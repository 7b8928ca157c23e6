package billing

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/rules/registry"
)

// Measured is what a cycle would bill one customer of one meter for a
// period: the rounded running total of its units.
type Measured struct {
	Meter, Customer string
	Total           int64
}

// Measure computes what a cycle computes before it compares with Stripe,
// at now: every meter's units for every customer over its period (by
// billing key), without Stripe ('meterd bench billing' times it). It
// uses the worker's Hours, or with Recompute one query per meter and
// period over all its events.
func (w *Worker) Measure(ctx context.Context, now time.Time, meters []*registry.Meter, periods map[string]stripestate.Period) ([]Measured, error) {
	if w.Hours == nil {
		w.Hours = hours.New(w.Store)
	}
	c := w.newCycle(now)
	var out []Measured
	for _, m := range meters {
		for _, key := range slices.Sorted(maps.Keys(periods)) {
			us, _, err := c.usage(ctx, m, periods[key], key)
			if err != nil {
				return nil, err
			}
			r := Measured{Meter: m.ID, Customer: key}
			if len(us) > 0 {
				r.Total = us[len(us)-1].cum
			}
			out = append(out, r)
		}
	}
	return out, nil
}
