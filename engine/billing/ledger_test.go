package billing

import (
	"strings"
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

// A request renewed after a definite 5xx goes under its first key with
// the generation appended, keeps its meter event identifier and drops the
// old outcome; folding the ledger, the renewed key stands for the request:
// the 5xx key is not pending, and what the request settled as is its
// newest key's outcome.
func TestRenewedKeys(t *testing.T) {
	first := Report{Key: "meterd-me-abc", Identifier: "meterd-me-abc", Mode: ModeMeterEvents, MeterID: "m", SubscriptionItem: "si",
		Bucket: t0, PeriodStart: t0, Quantity: 4, AttemptAt: t0}
	failed := first
	failed.Status, failed.HTTPStatus, failed.Error, failed.Attempts = StatusFailed, 500, "boom", 3
	if !spent(failed) || spent(Report{Status: StatusFailed}) || spent(Report{Status: StatusRejected, HTTPStatus: 500}) {
		t.Fatal("spent: a failed request with a 5xx answer, only")
	}
	r1 := failed.renewed()
	r2 := r1.renewed()
	if r1.Key != "meterd-me-abc-1" || r2.Key != "meterd-me-abc-2" || r2.Generation != 2 || r2.Identifier != first.Identifier ||
		r1.HTTPStatus != 0 || r1.Error != "" || r1.Attempts != 0 || r2.firstKey() != first.Key {
		t.Fatalf("renewed: %+v then %+v", r1, r2)
	}
	at := func(r Report, status string, sec int) Report {
		r.Status, r.AttemptAt = status, t0.Add(time.Duration(sec)*time.Second)
		return r
	}
	failed2 := r1
	failed2.Status, failed2.HTTPStatus = StatusFailed, 502
	l := foldLedger([]Report{at(first, StatusPending, 1), at(failed, StatusFailed, 2), at(r1, StatusPending, 3), at(failed2, StatusFailed, 4)})
	if p := l.pending(); len(p) != 1 || p[0].Key != r1.Key {
		t.Fatalf("pending %+v, want only the newest key", p)
	}
	l.note(at(r2, StatusPending, 5))
	l.note(at(r2, StatusSent, 6))
	if got, _ := l.latest(first.Key); got.Key != r2.Key || !l.settled(first.Key) || len(l.pending()) != 0 {
		t.Fatalf("after the renewed key was sent: latest %+v, pending %+v", got, l.pending())
	}
}

// Latest lists each report once, at its latest entry, with every entry of
// its request: renewed keys and a listing of its key included.
func TestLatest(t *testing.T) {
	at := 0
	e := func(r Report, status string) Report {
		at++
		r.Status, r.AttemptAt = status, t0.Add(time.Duration(at)*time.Minute)
		return r
	}
	sent := Report{Key: "k1", Customer: "acme"}
	renewed := Report{Key: "k2", Customer: "acme"}
	failed500 := e(renewed, StatusFailed)
	failed500.HTTPStatus, failed500.Error = 500, "boom"
	listed := Report{Key: "k4", Customer: "globex"}
	rs := []Report{
		e(sent, StatusPending), e(renewed, StatusPending), failed500, e(sent, StatusSent),
		e(listed, StatusPending), e(listed, StatusFailed),
		e(renewed.renewed(), StatusPending), e(Report{Key: "k3"}, StatusPending), e(listed, StatusLate), e(renewed.renewed(), StatusSent),
	}
	got := Latest(rs)
	var summary []string
	for _, s := range got {
		var h []string
		for _, x := range s.History {
			h = append(h, x.Key+":"+x.Status)
		}
		summary = append(summary, s.Key+" "+s.Status+" ["+strings.Join(h, " ")+"]")
	}
	want := []string{
		"k2-1 sent [k2:pending k2:failed k2-1:pending k2-1:sent]",
		"k4 late [k4:pending k4:failed k4:late]",
		"k3 pending [k3:pending]",
		"k1 sent [k1:pending k1:sent]",
	}
	if strings.Join(summary, "\n") != strings.Join(want, "\n") {
		t.Fatalf("latest:\n%s\nwant:\n%s", strings.Join(summary, "\n"), strings.Join(want, "\n"))
	}
	if h := got[0].History[1]; h.HTTPStatus != 500 || h.Error != "boom" || !h.At.Equal(failed500.AttemptAt) || got[0].Generation != 1 {
		t.Fatalf("k2's history keeps each entry's answer: %+v", got[0])
	}
}
