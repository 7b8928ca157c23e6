package server

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRetriesCountOnceWhateverTheirTime: the README's CloudEvent has no
// time, so each retry arrives with another arrival time; a Moesif client may
// resend a transaction_id with another request.time. Either way the retry
// is a duplicate (the first copy wins) and a sum meter bills it once.
func TestRetriesCountOnceWhateverTheirTime(t *testing.T) {
	var mu sync.Mutex
	now := testNow
	h := newHarness(t, func(c *Config) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	later := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	ce := `{"specversion":"1.0","id":"evt-1","source":"billing-demo","type":"tokens","subject":"acme","data":{"tokens":1200}}`
	for i, want := range []string{`{"accepted":1,"duplicates":0}`, `{"accepted":0,"duplicates":1}`, `{"accepted":0,"duplicates":1}`} {
		a := h.do("POST", "/api/v1/events", strings.NewReader(ce), "Authorization", "Bearer "+testIngest,
			"Content-Type", "application/cloudevents+json")
		if a.status != 200 || strings.TrimSpace(string(a.body)) != want {
			t.Fatalf("CloudEvent without time, send %d: %d %s, want %s", i+1, a.status, a.body, want)
		}
		later(90 * time.Second)
	}
	first := testNow.Add(-time.Hour)
	moesif := strings.Replace(event("txn-7", -3600), `"tokens":5`, `"tokens":7`, 1)
	if m := h.ingest("/v1/events", moesif).json(t); m["accepted"] != float64(1) {
		t.Fatalf("Moesif event: %v", m)
	}
	for _, offset := range []int{-60, -7200, 0} { // the same transaction_id, other request times
		if m := h.ingest("/v1/events/batch", batch(event("txn-7", offset))).json(t); m["duplicates"] != float64(1) || m["accepted"] != float64(0) {
			t.Fatalf("txn-7 again at %+ds: %v, want a duplicate", offset, m)
		}
	}
	if n := h.count(); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
	win := window(testNow.Add(-3*time.Hour), testNow.Add(time.Hour), "hour")
	tokens := `"filter":"true","aggregation":"sum","value":"float(metadata.tokens)"`
	if got := decodeResult(t, h.adminDo("POST", "/v1/backtest", `{`+tokens+`,`+win+`}`)); got.Total == nil || *got.Total != 1207 {
		t.Fatalf("sum of tokens %s, want 1207 (1200 once, 7 once)", got.summary())
	}
	// The copies kept are the first ones: txn-7 at its first request time,
	// evt-1 at its first arrival.
	times := map[string]string{}
	for _, e := range h.admin("/v1/events?limit=10").json(t)["events"].([]any) {
		m := e.(map[string]any)
		times[m["external_id"].(string)] = m["time"].(string)
	}
	if want := first.Format("2006-01-02T15:04:05.000Z"); times["txn-7"] != want {
		t.Errorf("txn-7 stored at %s, want the first copy's time %s", times["txn-7"], want)
	}
	if want := testNow.Format("2006-01-02T15:04:05.000Z"); times["evt-1"] != want {
		t.Errorf("evt-1 stored at %s, want its first arrival %s (events: %v)", times["evt-1"], want, times)
	}
}
