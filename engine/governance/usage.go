package governance

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/hours"
)

// usage computes usage(meterID) for every customer of w's kind: each
// customer's usage over its own current period (customer.periodStart),
// before rounding, as the billing worker computes it: from the usage kept
// per closed hour (engine/hours), every customer at once, never a query
// per customer.
func (e *Evaluator) usage(ctx context.Context, cs map[string]*customer, now time.Time, meterID string) (map[string]float64, error) {
	m, err := e.Meters.Get(ctx, meterID)
	if err != nil {
		return nil, fmt.Errorf("governance: usage(%q): %w", meterID, err)
	}
	price := m.Latest().StripePriceID
	starts := make(map[string]time.Time, len(cs))
	from := now
	for id, c := range cs {
		st := c.periodStart(price, now)
		starts[id] = st
		if st.Before(from) {
			from = st
		}
	}
	if earliest := now.Add(-backtest.MaxSpan + time.Hour); from.Before(earliest) {
		from = earliest
	}
	out := map[string]float64{}
	if !from.Before(now) {
		return out, nil
	}
	for id, st := range starts {
		if !st.After(from) {
			delete(starts, id) // from the window's start: nothing to say
		}
	}
	if e.Hours == nil {
		e.Hours = hours.New(e.Store)
	}
	groups, err := e.Hours.Totals(ctx, hours.Request{Meter: m, From: from, To: now, GroupFrom: starts, Now: now})
	if err != nil {
		return nil, fmt.Errorf("governance: usage(%q): %w", meterID, err)
	}
	for _, g := range groups {
		if g.Value != nil {
			out[g.Key] = *g.Value
		}
	}
	return out, nil
}
