package backtest

import (
	"context"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// Minute buckets (OpenMeter's MINUTE windows): SQL on each store agrees
// with the VM, every bucket starts on a whole minute, and the minutes of
// an hour add up to that hour's bucket.
func TestMinuteBuckets(t *testing.T) {
	ctx := context.Background()
	s := quotedCustomerStores(t, 13)
	m := compile(t, rules.Definition{Filter: `true`, Value: "request.body_size", Aggregation: rules.AggSum})
	// Starts mid-minute: the first bucket is partial.
	w := Window{From: genFrom.Add(2*time.Hour + 30*time.Second), To: genFrom.Add(9 * time.Hour), Bucket: BucketMinute, Top: MaxTop}
	want, err := Run(ctx, s.duck, []Version{{Meter: m}}, w, VM)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Buckets) < 60 {
		t.Fatalf("only %d minute buckets with usage over 7 hours", len(want.Buckets))
	}
	for _, st := range []storage.Store{s.duck, s.ch} {
		if st == nil {
			continue
		}
		got, err := Run(ctx, st, []Version{{Meter: m}}, w, SQL)
		if err != nil {
			t.Fatalf("%s: %v", st.Backend(), err)
		}
		if d := compareResults(got, want, tol{sum: true, total: 1e-6}); d != "" {
			t.Fatalf("%s: %s", st.Backend(), d)
		}
	}
	hourly := w
	hourly.Bucket = BucketHour
	hours, err := Run(ctx, s.duck, []Version{{Meter: m}}, hourly, SQL)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[time.Time]float64{}
	for _, b := range want.Buckets {
		if b.Start.Second() != 0 || b.Start.Nanosecond() != 0 {
			t.Fatalf("bucket starts at %s, not on a minute", b.Start)
		}
		sums[b.Start.Truncate(time.Hour)] += *b.Value
	}
	for _, h := range hours.Buckets {
		if got := sums[h.Start]; got != *h.Value {
			t.Errorf("hour %s: minutes add up to %v, the hour bucket is %v", h.Start, got, *h.Value)
		}
	}
}

// A minute window spans at most MaxMinuteSpan; longer is refused naming
// the bucket.
func TestMinuteWindowSpan(t *testing.T) {
	w := Window{From: genFrom, To: genFrom.Add(MaxMinuteSpan), Bucket: BucketMinute}
	if err := w.Validate(); err != nil {
		t.Fatalf("31 days of minutes: %v", err)
	}
	if n := w.buckets(); n != 44640 {
		t.Fatalf("buckets = %d, want 44640", n)
	}
	w.To = w.To.Add(time.Millisecond)
	if we, ok := w.Validate().(*fault.Error); !ok || we.Code != CodeInvalidWindow || we.Field != "bucket" {
		t.Fatalf("a longer minute window: got %v, want an error on bucket", w.Validate())
	}
}
