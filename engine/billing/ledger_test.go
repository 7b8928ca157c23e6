package billing

import (
	"testing"
	"time"
)

// Folding the ledger: a key sent twice (two workers on one store, both
// answered by Stripe's idempotency) counts once; intents without an
// outcome, and failed meter events, are pending, oldest first.
func TestFoldLedger(t *testing.T) {
	base := Report{Mode: ModeMeterEvents, MeterID: "m", SubscriptionItem: "si", Bucket: t0, PeriodStart: t0}
	r := func(key, status string, qty int64, at int) Report {
		x := base
		x.Key, x.Status, x.Quantity, x.AttemptAt = key, status, qty, t0.Add(time.Duration(at)*time.Second)
		return x
	}
	l := foldLedger([]Report{
		r("k1", StatusPending, 5, 1), r("k1", StatusPending, 5, 2), r("k1", StatusSent, 5, 3), r("k1", StatusSent, 5, 4),
		r("k2", StatusPending, 3, 5), r("k2", StatusFailed, 3, 6),
		r("k3", StatusPending, 2, 7),
	})
	c := &cycle{ledger: l}
	var sum int64
	for _, a := range c.acceptedFor(base) {
		sum += a.Quantity
	}
	if sum != 5 {
		t.Fatalf("accepted events add up to %d, want 5 (k1 once)", sum)
	}
	p := l.pending()
	if len(p) != 2 || p[0].Key != "k2" || p[1].Key != "k3" {
		t.Fatalf("pending %+v, want k2 (a failed meter event) then k3", p)
	}
	if !l.settled("k1") || l.settled("k2") || l.settled("k3") {
		t.Fatal("settled: only k1")
	}
}
