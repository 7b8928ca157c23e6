package governance

import (
	"context"
	"fmt"
	"time"

	"github.com/meterd/meterd/engine"
)

// usage computes usage(meterID) for every customer of w's kind: each
// customer's usage over its own current period (customer.periodStart),
// before rounding, as the billing worker computes it. One query per meter
// (engine.Window.GroupFrom), never one per customer.
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
	if earliest := now.Add(-engine.MaxSpan + time.Hour); from.Before(earliest) {
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
	spans, err := m.Spans(from, now)
	if err != nil || len(spans) == 0 {
		return out, err
	}
	versions := make([]engine.Version, len(spans))
	for i, sp := range spans {
		versions[i] = engine.Version{Meter: sp.Meter, From: sp.From}
	}
	versions[0].From = time.Time{}
	res, err := engine.Usage(ctx, e.Store, versions, engine.Window{From: from, To: now, Bucket: engine.BucketDay,
		AllGroups: true, GroupFrom: starts})
	if err != nil {
		return nil, fmt.Errorf("governance: usage(%q): %w", meterID, err)
	}
	for _, g := range res.Groups {
		if g.Value != nil {
			out[g.Key] = *g.Value
		}
	}
	return out, nil
}
