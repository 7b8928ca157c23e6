package billing_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripefake"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/storage"
)

// billed is Stripe's total for a company: its item's usage records, or
// its customer's meter events (customers() maps acme to cus_0, globex to
// cus_1, the unmapped one to cus_2).
func (w *world) billed(mode string, items map[string]string, co string) int64 {
	if mode == billing.ModeUsageRecords {
		return w.fake.ItemTotal(items[co])
	}
	return w.fake.MeterTotal("api_tokens", map[string]string{"acme": "cus_0", "globex": "cus_1", "": "cus_2"}[co])
}

// setUp is a world in mode with the two companies subscribed, a sum meter
// bound to the price and traffic over the period.
func setUp(t *testing.T, w *world, mode string) (items map[string]string, m func(co string) int64) {
	_, items, meter := w.subscribed(mode)
	return items, func(co string) int64 { return w.expected(meter, co, w.now) }
}

// subscribed is setUp's world: the price, the companies' items and the
// meter.
func (w *world) subscribed(mode string) (price string, items map[string]string, m *registry.Meter) {
	price = w.price(mode)
	items = w.customers(price)
	m = w.meter(price, rules.AggSum)
	w.traffic(1, 600, w.start.Add(-time.Hour), w.now.Add(-2*time.Hour))
	return price, items, m
}

// lastReports is the ledger's latest entry by idempotency key.
func (w *world) lastReports() map[string]billing.Report {
	w.t.Helper()
	rs, err := billing.LoadReports(context.Background(), w.st, time.Time{})
	if err != nil {
		w.t.Fatal(err)
	}
	last := map[string]billing.Report{}
	for _, r := range rs {
		last[r.Key] = r
	}
	return last
}

// settle runs cycles until one sends nothing (at most n).
func settle(t *testing.T, wk *billing.Worker, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if s := cycle(t, wk); s.Sent == 0 && s.Failed == 0 && s.Replayed == 0 {
			return
		}
	}
	t.Fatalf("still sending after %d cycles", n)
}

// The worker paces every Stripe request to the settings' rate_limit, on a
// virtual clock: without faults the requests are exactly 1/rate apart;
// with 429s the backoff only adds to the gap, the retry reuses the
// idempotency key, and the totals come out right.
func TestWorkerPacesRequests(t *testing.T) {
	for _, mode := range []string{billing.ModeMeterEvents, billing.ModeUsageRecords} {
		t.Run(mode, func(t *testing.T) {
			w := newWorld(t, open(t, "duckdb://"+t.TempDir()+"/m.duckdb"), mode)
			w.do("PUT", "/v1/billing/stripe", map[string]any{"rate_limit": 5}, 200, nil)
			const gap = 200 * time.Millisecond
			items, want := setUp(t, w, mode)
			clock := billing.NewVirtualClock(w.now)
			var mu sync.Mutex
			var at []time.Time
			record := func(n int, r *http.Request) stripefake.Fault {
				mu.Lock()
				at = append(at, clock.Now())
				mu.Unlock()
				return stripefake.Fault{}
			}
			w.fake.SetFault(record)
			wk := w.worker()
			wk.Clock = clock
			wk.Retry.Base, wk.Retry.Max = time.Second, 4*time.Second // backoffs longer than the gap
			cycle(t, wk)
			if len(at) < 20 {
				t.Fatalf("only %d requests: nothing to pace", len(at))
			}
			for i := 1; i < len(at); i++ {
				if d := at[i].Sub(at[i-1]); d != gap {
					t.Fatalf("requests %d and %d went %v apart, want %v (rate_limit 5)", i, i+1, d, gap)
				}
			}
			// Every fourth request is answered 429.
			at = nil
			w.fake.SetFault(func(n int, r *http.Request) stripefake.Fault {
				record(n, r)
				if n%4 == 0 {
					return stripefake.Fault{Status: 429}
				}
				return stripefake.Fault{}
			})
			w.traffic(2, 300, w.start, w.now.Add(-2*time.Hour))
			slept := len(clock.Sleeps())
			settle(t, wk, 5)
			if len(at) < 8 {
				t.Fatalf("only %d requests after new traffic", len(at))
			}
			for i := 1; i < len(at); i++ {
				if d := at[i].Sub(at[i-1]); d < gap {
					t.Fatalf("requests %d and %d went %v apart, under the %v pace", i, i+1, d, gap)
				}
			}
			if len(clock.Sleeps()) == slept {
				t.Fatal("no waits after the 429s")
			}
			rs := w.fake.Requests()
			for i, r := range rs {
				if r.Status != 429 || r.Method != http.MethodPost {
					continue
				}
				retried := false
				for _, q := range rs[i+1:] {
					retried = retried || q.IdempotencyKey == r.IdempotencyKey && q.Status == 200
				}
				if !retried {
					t.Fatalf("a 429 (key %s) was never retried with its key", r.IdempotencyKey)
				}
			}
			for _, co := range []string{"acme", "globex"} {
				if got, exp := w.billed(mode, items, co), want(co); got != exp || exp == 0 {
					t.Fatalf("Stripe bills %s %d, the backtest says %d", co, got, exp)
				}
			}
		})
	}
}

// Requests that hang past the client's timeout are retried with the same
// idempotency key, whether Stripe applied them after all or not, and
// Stripe ends with the backtest's totals: also for the price and billing
// meter look-ups of the meter-events mode.
func TestTimeoutsRetryToCorrectTotals(t *testing.T) {
	inEveryWorld(t, func(t *testing.T, w *world, mode string) {
		items, want := setUp(t, w, mode)
		var mu sync.Mutex
		posts := 0
		hung := map[string]bool{}   // idempotency keys of hung writes
		looked := map[string]bool{} // look-ups that hung once
		w.fake.SetFault(func(n int, r *http.Request) stripefake.Fault {
			mu.Lock()
			defer mu.Unlock()
			if r.Method == http.MethodGet {
				if !looked[r.URL.Path] {
					looked[r.URL.Path] = true
					return stripefake.Fault{Hang: time.Hour}
				}
				return stripefake.Fault{}
			}
			posts++
			switch posts {
			case 3, 17: // Stripe applies it once the client has given up
				hung[r.Header.Get("Idempotency-Key")] = true
				return stripefake.Fault{Hang: time.Hour}
			case 8: // never applied
				hung[r.Header.Get("Idempotency-Key")] = true
				return stripefake.Fault{Hang: time.Hour, Status: 500}
			}
			return stripefake.Fault{}
		})
		wk := w.worker()
		wk.Timeout = 250 * time.Millisecond
		settle(t, wk, 5)
		if len(hung) != 3 || mode == billing.ModeMeterEvents && len(looked) != 2 {
			t.Fatalf("%d writes and %d look-ups hung, want 3 and the price and meter's", len(hung), len(looked))
		}
		for key := range hung {
			n := 0
			for _, r := range w.fake.Requests() {
				if r.IdempotencyKey == key && r.Status == 200 {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("the hung write %s never succeeded on a retry with its key", key)
			}
		}
		for _, r := range w.fake.Requests() {
			if r.Status == 400 {
				t.Fatalf("Stripe refused %s %v: a retry changed its parameters?", r.Path, r.Form)
			}
		}
		for _, co := range []string{"acme", "globex"} {
			if got, exp := w.billed(mode, items, co), want(co); got != exp || exp == 0 {
				t.Fatalf("after timeouts Stripe bills %s %d, the backtest says %d", co, got, exp)
			}
		}
		for k, r := range w.lastReports() {
			if r.Status != billing.StatusSent {
				t.Fatalf("report %s ended %s: %s", k, r.Status, r.Error)
			}
		}
	})
}

// A meter that does not add up over hours (max) is reported for the
// whole period, one quantity at its start: Stripe bills each customer the
// rounded-up maximum, and a later, larger maximum corrects it (set in
// usage records, an increase in meter events).
func TestNonAdditiveMeter(t *testing.T) {
	inEveryWorld(t, func(t *testing.T, w *world, mode string) {
		price := w.price(mode)
		items := w.customers(price)
		m := w.meter(price, rules.AggMax)
		w.traffic(1, 300, w.start.Add(-time.Hour), w.now.Add(-2*time.Hour))
		wk := w.worker()
		check := func(when string) {
			t.Helper()
			for _, co := range []string{"acme", "globex"} {
				if got, want := w.billed(mode, items, co), w.expected(m, co, w.now); got != want || want == 0 {
					t.Fatalf("%s: Stripe bills %s %d, the backtest's maximum rounds up to %d", when, co, got, want)
				}
				if mode == billing.ModeUsageRecords {
					if u := w.fake.Usage(items[co]); len(u) != 1 || u[w.start.Unix()] == 0 {
						t.Fatalf("%s: usage records of %s %v, want one at the period start", when, co, u)
					}
				}
			}
		}
		settle(t, wk, 3)
		check("first cycle")
		// A larger maximum for acme inside the period.
		at := w.now.Add(-3 * time.Hour)
		if _, err := w.st.Insert(t.Context(), []storage.Event{{ID: "big", ExternalID: "x", Format: storage.FormatMoesif,
			Time: at, ReceivedAt: at, Verb: "GET", URI: "/v1/search", Route: "/v1/search", HasResponse: true,
			ResponseTime: at, Status: 200, CompanyID: "acme", Weight: 1, Metadata: `{"tokens":7001}`}}); err != nil {
			t.Fatal(err)
		}
		settle(t, wk, 3)
		check("after a larger maximum")
		if got := w.billed(mode, items, "acme"); got != 1001 { // ceil(7001 / 7)
			t.Fatalf("acme billed %d after the larger maximum, want 1001", got)
		}
	})
}

// countingStore counts the engine's queries (Query is only used by it).
type countingStore struct {
	storage.Store
	mu      sync.Mutex
	queries int
}

func (s *countingStore) Query(ctx context.Context, q string, args ...any) (storage.Rows, error) {
	s.mu.Lock()
	s.queries++
	s.mu.Unlock()
	return s.Store.Query(ctx, q, args...)
}

func (s *countingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

// A cycle computes a meter for every customer whose period is the same
// with one query, not one per customer (hour buckets of additive meters,
// period values of the others); customers of another period get their
// own.
func TestCycleQueriesPerMeterAndPeriod(t *testing.T) {
	for _, agg := range []string{rules.AggSum, rules.AggMax, rules.AggUnique} {
		t.Run(agg, func(t *testing.T) {
			cs := &countingStore{Store: open(t, "duckdb://"+t.TempDir()+"/m.duckdb")}
			w := newWorld(t, cs, billing.ModeUsageRecords)
			price := w.fake.AddLegacyPrice()
			items := w.customers(price) // acme and globex share a period
			m := w.meter(price, agg)
			// initech subscribes an hour later: another period.
			if s := w.webhook(w.fake.Customer("cus_7", map[string]string{"company_id": "initech"}), secret); s != 200 {
				t.Fatalf("webhook: %d", s)
			}
			var ev []byte
			_, items["initech"], ev = w.fake.Subscription("cus_7", price, w.start.Add(time.Hour), w.start.Add(time.Hour).AddDate(0, 1, 0), nil)
			if s := w.webhook(ev, secret); s != 200 {
				t.Fatalf("webhook: %d", s)
			}
			w.traffic(1, 600, w.start.Add(-time.Hour), w.now.Add(-2*time.Hour))
			before := cs.count()
			cycle(t, w.worker())
			if n := cs.count() - before; n != 2 {
				t.Fatalf("a cycle over three customers of two periods ran %d queries, want 2", n)
			}
			for co, from := range map[string]time.Time{"acme": w.start, "globex": w.start, "initech": w.start.Add(time.Hour)} {
				exp := w.expectedFrom(m, co, from, w.now)
				if got := w.fake.ItemTotal(items[co]); got != exp || exp == 0 {
					t.Fatalf("Stripe bills %s %d, the backtest says %d", co, got, exp)
				}
			}
		})
	}
}

// Two workers on one store (replicas of 'meterd serve' on ClickHouse, or
// 'meterd billing' next to a serve that runs one) report each customer's
// usage once: the idempotency keys and meter event identifiers they
// derive are the same, and a key both record as sent counts once.
func TestTwoWorkersOnOneStore(t *testing.T) {
	inEveryWorld(t, func(t *testing.T, w *world, mode string) {
		items, want := setUp(t, w, mode)
		a, b := w.worker(), w.worker()
		for round := 0; round < 3; round++ {
			if round == 1 {
				w.traffic(2, 200, w.start, w.now.Add(-2*time.Hour))
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, wk := range []*billing.Worker{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = wk.Cycle(t.Context())
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		settle(t, a, 3)
		for _, co := range []string{"acme", "globex"} {
			if got, exp := w.billed(mode, items, co), want(co); got != exp || exp == 0 {
				t.Fatalf("two workers: Stripe bills %s %d, the backtest says %d", co, got, exp)
			}
		}
		rs, err := billing.LoadReports(t.Context(), w.st, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Status == billing.StatusNeedsAdjustment || r.Status == billing.StatusRejected {
				t.Fatalf("two workers: %s %s", r.Status, r.Note+r.Error)
			}
		}
	})
}

// Stripe saves a 5xx answer under its idempotency key and replays it for
// 24 h, and so does the fake: after a definite 5xx the worker sends the
// request again under its next key (the same usage record set, the same
// meter event identifier), within the send and, after an outage, in the
// next cycle, and Stripe ends with the backtest's totals, each unit
// counted once (a meter event applied before its 5xx is refused as a
// repeated identifier, and read as counted). A key answered 5xx is never
// sent again.
func TestDefinite5xxRenewsTheKey(t *testing.T) {
	inEveryWorld(t, func(t *testing.T, w *world, mode string) {
		items, want := setUp(t, w, mode)
		check := func(when string) {
			t.Helper()
			for _, co := range []string{"acme", "globex"} {
				if got, exp := w.billed(mode, items, co), want(co); got != exp || exp == 0 {
					t.Fatalf("%s: Stripe bills %s %d, the backtest says %d", when, co, got, exp)
				}
			}
		}
		wk := w.worker()
		var mu sync.Mutex
		writes := 0
		w.fake.SetFault(func(n int, r *http.Request) stripefake.Fault {
			if r.Method != http.MethodPost {
				return stripefake.Fault{}
			}
			mu.Lock()
			defer mu.Unlock()
			switch writes++; {
			case writes%5 == 0:
				return stripefake.Fault{Status: 500} // nothing applied
			case writes%7 == 0:
				return stripefake.Fault{Status: 503, After: true} // applied, then 503
			}
			return stripefake.Fault{}
		})
		settle(t, wk, 5)
		check("with 5xx answers")
		// An outage: every write of a cycle answered 500, and saved.
		w.traffic(2, 300, w.start, w.now.Add(-2*time.Hour))
		w.fake.SetFault(func(n int, r *http.Request) stripefake.Fault {
			if r.Method == http.MethodPost {
				return stripefake.Fault{Status: 500}
			}
			return stripefake.Fault{}
		})
		if s := cycle(t, wk); s.Failed == 0 || s.Sent != 0 {
			t.Fatalf("a cycle against 500s: %+v", s)
		}
		w.fake.SetFault(nil)
		settle(t, wk, 3)
		check("after an outage")

		rs := w.fake.Requests()
		renewed := 0
		for i, r := range rs {
			if r.Method != http.MethodPost {
				continue
			}
			gen := regexp.MustCompile(`-\d+$`).MatchString(r.IdempotencyKey)
			if gen && r.Status == 200 {
				renewed++
			}
			if r.Status == 400 && !(gen && mode == billing.ModeMeterEvents) {
				t.Fatalf("Stripe refused %s %v (key %s): only a renewed meter event may meet its own identifier", r.Path, r.Form, r.IdempotencyKey)
			}
			if r.Status < 500 {
				continue
			}
			for _, q := range rs[i+1:] {
				if q.IdempotencyKey == r.IdempotencyKey {
					t.Fatalf("key %s, answered %d, was sent again (answered %d): Stripe replays a 5xx for 24 h", r.IdempotencyKey, r.Status, q.Status)
				}
			}
		}
		if renewed == 0 {
			t.Fatal("no request succeeded under a renewed key")
		}
		// The ledger: each request's newest key settled as sent; in meter
		// events its sent quantities are what Stripe has.
		last := w.lastReports()
		sent := map[string]int64{}
		for k, r := range last {
			if _, renewed := last[fmt.Sprintf("%s-%d", strings.TrimSuffix(k, fmt.Sprintf("-%d", r.Generation)), r.Generation+1)]; renewed {
				if r.Status != billing.StatusFailed || r.HTTPStatus < 500 {
					t.Fatalf("key %s was renewed after %s %d", k, r.Status, r.HTTPStatus)
				}
				continue
			}
			if r.Status != billing.StatusSent {
				t.Fatalf("request %s ended %s: %d %s", k, r.Status, r.HTTPStatus, r.Error)
			}
			sent[r.Customer] += r.Quantity
		}
		if mode == billing.ModeMeterEvents {
			for _, co := range []string{"acme", "globex"} {
				if got := w.billed(mode, items, co); sent[co] != got {
					t.Fatalf("the ledger's sent events of %s add up to %d, Stripe has %d", co, sent[co], got)
				}
			}
		}
	})
}
