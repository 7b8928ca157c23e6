package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripefake"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/server"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
	"github.com/meterd/meterd/storage/storetest"
)

const (
	admin  = "admin-token"
	ingest = "ingest-key-0123456789abcdef0123456789abcdef0123456789"
	secret = "whsec_test_secret"
)

// stores opens a fresh DuckDB store and, where configured, a fresh
// ClickHouse database (CI must have one).
func stores(t *testing.T) map[string]func(t *testing.T) (storage.Store, string) {
	out := map[string]func(t *testing.T) (storage.Store, string){
		"duckdb": func(t *testing.T) (storage.Store, string) {
			dsn := "duckdb://" + t.TempDir() + "/m.duckdb"
			return open(t, dsn), dsn
		},
	}
	if storetest.ClickHouseDSN(t) != "" {
		out["clickhouse"] = func(t *testing.T) (storage.Store, string) {
			dsn := storetest.FreshClickHouseDSN(t, "meterd_billing") // dropped at cleanup
			return open(t, dsn), dsn
		}
	}
	return out
}

// storesAndCluster is stores and, where one is configured, a ClickHouse
// cluster of two shards (the end-to-end test runs there too: billing
// through a cluster must bill what one server bills).
func storesAndCluster(t *testing.T) map[string]func(t *testing.T) (storage.Store, string) {
	out := stores(t)
	if storetest.ClickHouseClusterDSN(t) != "" {
		out["cluster"] = func(t *testing.T) (storage.Store, string) {
			dsn := storetest.FreshClusterDSN(t, "meterd_billing_cluster")
			return open(t, dsn), dsn
		}
	}
	return out
}

func open(t *testing.T, dsn string) storage.Store {
	t.Helper()
	st, err := backends.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// world is a meterd server, a Stripe fake and a clock.
type world struct {
	t      *testing.T
	st     storage.Store
	srv    *httptest.Server
	server *server.Server
	fake   *stripefake.Fake
	now    time.Time
	start  time.Time // the subscriptions' current period start
	// realClock makes the fake use the wall clock, for a meterd process
	// that runs on it (the crash test); w.now is the clock otherwise.
	realClock bool
	subs      map[string]string // subscription by company, from customers()
	sealer    *billing.Sealer   // the API's and the workers' (METERD_SECRET_KEY)
}

func newWorld(t *testing.T, st storage.Store, mode string) *world {
	return newWorldClock(t, st, mode, false)
}

func newWorldClock(t *testing.T, st storage.Store, mode string, realClock bool) *world {
	return newWorldSealed(t, st, mode, realClock, nil)
}

// newWorldSealed is a world whose API and workers seal the Stripe
// secrets with sl.
func newWorldSealed(t *testing.T, st storage.Store, mode string, realClock bool, sl *billing.Sealer) *world {
	now := time.Now().UTC().Truncate(time.Second)
	w := &world{t: t, st: st, now: now, start: now.Add(-30*time.Hour - 17*time.Minute), realClock: realClock, sealer: sl}
	w.fake = stripefake.New(func() time.Time {
		if w.realClock {
			return time.Now()
		}
		return w.now
	})
	t.Cleanup(w.fake.Close)
	newServer(t, w)
	w.do("PUT", "/v1/billing/stripe", map[string]any{"api_key": "sk_test_fake0000key1234", "webhook_secret": secret,
		"mode": mode, "api_base": w.fake.URL, "rate_limit": 100}, 200, nil)
	return w
}

func newServer(t *testing.T, w *world) *httptest.Server {
	// The server's warnings (a 5xx's cause among them) go to the test's
	// log, shown when it fails.
	logs := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := server.New(server.Config{Store: w.st, AdminToken: admin, IngestKey: ingest, Sealer: w.sealer, Logger: logs})
	if err != nil {
		t.Fatal(err)
	}
	w.srv, w.server = httptest.NewServer(s.Handler()), s
	t.Cleanup(func() { w.srv.Close(); s.Close() })
	return w.srv
}

// release closes the API and the store (a DuckDB file is open in one
// process at a time), so that a meterd process can take it over.
func (w *world) release() {
	w.srv.Close()
	w.server.Close()
	if err := w.st.Close(); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) do(method, path string, body any, want int, out any) {
	w.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, w.srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	if resp.StatusCode != want {
		w.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		json.Unmarshal(raw, out)
	}
}

// webhook delivers a signed event; it returns the status.
//
// A 503 is delivered again, a few times, as Stripe does with any 5xx
// (the store failed for a moment: the server logged why, and the test's
// log shows it); the last answer is returned.
func (w *world) webhook(payload []byte, key string) int {
	w.t.Helper()
	for attempt := 1; ; attempt++ {
		req, _ := http.NewRequest("POST", w.srv.URL+"/v1/stripe/webhook", bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", stripefake.Sign(payload, key, time.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || attempt == 4 {
			return resp.StatusCode
		}
		w.t.Logf("webhook delivery %d: 503 %s; delivered again, as Stripe would", attempt, body)
		time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
	}
}

// customers subscribes acme and globex (mapped by metadata.company_id) and
// an unmapped customer to price; it returns the item of each company.
// inEveryWorld runs f in a fresh world on every store, in both
// reporting modes.
func inEveryWorld(t *testing.T, f func(t *testing.T, w *world, mode string)) {
	inWorlds(t, stores(t), f)
}

func inWorlds(t *testing.T, worlds map[string]func(t *testing.T) (storage.Store, string), f func(t *testing.T, w *world, mode string)) {
	for name, openStore := range worlds {
		for _, mode := range []string{billing.ModeMeterEvents, billing.ModeUsageRecords} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				st, _ := openStore(t)
				f(t, newWorld(t, st, mode), mode)
			})
		}
	}
}

// price adds a Stripe price of the kind mode reports to: one backed by a
// billing meter, or a legacy metered price.
func (w *world) price(mode string) string {
	if mode == billing.ModeUsageRecords {
		return w.fake.AddLegacyPrice()
	}
	return w.fake.AddMeter("api_tokens")
}

func (w *world) customers(price string) map[string]string {
	items := map[string]string{}
	for i, co := range []string{"acme", "globex", ""} {
		cus := fmt.Sprintf("cus_%d", i)
		md := map[string]string{}
		if co != "" {
			md["company_id"] = co
		}
		ev := w.fake.Customer(cus, md)
		if s := w.webhook(ev, secret); s != 200 {
			w.t.Fatalf("customer webhook: %d", s)
		}
		if s := w.webhook(ev, secret); s != 200 { // Stripe delivers twice sometimes
			w.t.Fatalf("repeated webhook: %d", s)
		}
		sub, item, sev := w.fake.Subscription(cus, price, w.start, w.start.AddDate(0, 1, 0), nil)
		if s := w.webhook(sev, "whsec_wrong"); s != 400 {
			w.t.Fatalf("badly signed webhook: %d, want 400", s)
		}
		if s := w.webhook(sev, secret); s != 200 {
			w.t.Fatalf("subscription webhook: %d", s)
		}
		items[co] = item
		if w.subs == nil {
			w.subs = map[string]string{}
		}
		w.subs[co] = sub
	}
	return items
}

// traffic stores calls of both companies (and of an unknown one) from
// before the period to two hours before now, with fractional values.
func (w *world) traffic(seed, n int, from, to time.Time) {
	var evs []storage.Event
	cos := []string{"acme", "globex", "initech"}
	for i := 0; i < n; i++ {
		at := from.Add(time.Duration(int64(to.Sub(from)) / int64(n) * int64(i)))
		status := int32(200)
		if (i+seed)%5 == 0 {
			status = 500
		}
		evs = append(evs, storage.Event{ID: fmt.Sprintf("e%d-%d", seed, i), ExternalID: "x", Format: storage.FormatMoesif,
			Time: at, ReceivedAt: at, Verb: "GET", URI: "/v1/search", Route: "/v1/search", HasResponse: true,
			ResponseTime: at, Status: status, CompanyID: cos[(i+seed)%3], Weight: 1,
			Metadata: fmt.Sprintf(`{"tokens":%d}`, (i*37+seed)%101)})
	}
	if _, err := w.st.Insert(context.Background(), evs); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) meter(price string, agg string) *registry.Meter {
	var m registry.Meter
	def := map[string]any{"name": "tokens", "filter": "response.status == 200", "aggregation": agg,
		"stripe_price_id": price, "status": "active"}
	if agg != rules.AggCount {
		def["value"] = "metadata.tokens / 7" // fractional: rounding matters
	}
	w.do("POST", "/v1/meters", def, 201, &m)
	got, err := registry.New(w.st, nil).Get(context.Background(), m.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return got
}

func (w *world) worker() *billing.Worker {
	return &billing.Worker{Store: w.st, Now: func() time.Time { return w.now }, Sealer: w.sealer,
		Retry: billing.Retry{Attempts: 4, Base: time.Millisecond, Max: 5 * time.Millisecond}, Timeout: 2 * time.Second}
}

// expected is the backtest of the meter for a customer over the period
// up to `to`, rounded up: what Stripe must bill.
func (w *world) expected(m *registry.Meter, customer string, to time.Time) int64 {
	w.t.Helper()
	return w.expectedFrom(m, customer, w.start, to)
}

// expectedFrom is expected for a period starting at from.
func (w *world) expectedFrom(m *registry.Meter, customer string, from, to time.Time) int64 {
	w.t.Helper()
	spans, err := m.Spans(from, to)
	if err != nil {
		w.t.Fatal(err)
	}
	res, err := backtest.Usage(context.Background(), w.st, []backtest.Version{{Meter: spans[0].Meter}},
		backtest.Window{From: from, To: to, Bucket: backtest.BucketHour, Top: backtest.MaxTop})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, g := range res.Groups {
		if g.Key == customer {
			return int64(ceil(*g.Value))
		}
	}
	return 0
}

func ceil(v float64) float64 {
	v = float64(int64(v*1e9+0.5)) / 1e9
	if v == float64(int64(v)) {
		return v
	}
	return float64(int64(v) + 1)
}

// audit checks a customer's ledger against GET /v1/meters/{id}/usage for
// that customer, as docs/billing.md tells a user to: each hour's value is
// the value of the report last sent for it, and the rounded total is the
// total the reports bring Stripe to.
func (w *world) audit(m *registry.Meter, customer string) {
	w.t.Helper()
	var usage backtest.Result
	w.do("GET", fmt.Sprintf("/v1/meters/%s/usage?customer=%s&bucket=hour&from=%s&to=%s", m.ID, customer,
		w.start.Format(time.RFC3339), w.now.Format(time.RFC3339)), nil, 200, &usage)
	hours := map[int64]float64{}
	for _, b := range usage.Buckets {
		hours[b.Start.Unix()] = *b.Value
	}
	var ledger struct {
		Reports []billing.Report `json:"reports"`
	}
	w.do("GET", "/v1/billing/customers/"+customer+"/reports?status=sent&meter="+m.ID, nil, 200, &ledger)
	last := map[int64]billing.Report{} // newest first: the first seen per hour is the last sent
	var total int64
	for i, r := range ledger.Reports {
		h := r.Bucket.Truncate(time.Hour).Unix()
		if _, seen := last[h]; !seen {
			last[h] = r
		}
		if i == 0 {
			total = r.Total
		}
	}
	if len(last) == 0 || len(last) > len(hours) {
		w.t.Fatalf("audit of %s: %d hours reported, %d hours of usage", customer, len(last), len(hours))
	}
	for h, r := range last {
		if v := hours[h]; math.Abs(v-r.Value) > 1e-9*math.Max(1, math.Abs(v)) {
			w.t.Fatalf("audit of %s at %s: the ledger says %v, the usage endpoint %v", customer, time.Unix(h, 0).UTC(), r.Value, v)
		}
	}
	if want := int64(ceil(*usage.Total)); total != want {
		w.t.Fatalf("audit of %s: the ledger's total is %d, the usage endpoint's total rounds up to %d", customer, total, want)
	}
}

func cycle(t *testing.T, wk *billing.Worker) billing.Stats {
	t.Helper()
	st, err := wk.Cycle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func posts(f *stripefake.Fake) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == "POST" {
			n++
		}
	}
	return n
}

// The whole flow in both modes and on both stores: signed webhooks create
// customers and subscriptions, events are stored, the worker reports, and
// Stripe's totals equal the meter's backtest per customer, through late
// events, a repeat cycle and injected 429s, 500s and lost answers.
func TestEndToEndWithStatefulFake(t *testing.T) {
	inWorlds(t, storesAndCluster(t), func(t *testing.T, w *world, mode string) {
		price := w.price(mode)
		items := w.customers(price)
		m := w.meter(price, rules.AggSum)
		w.traffic(1, 900, w.start.Add(-3*time.Hour), w.now.Add(-2*time.Hour))
		total := func(co string) int64 { return w.billed(mode, items, co) }
		check := func(when string) {
			t.Helper()
			for _, co := range []string{"acme", "globex"} {
				want := w.expected(m, co, w.now)
				if got := total(co); got != want || want == 0 {
					t.Fatalf("%s: Stripe bills %s %d, the backtest says %d", when, co, got, want)
				}
			}
			if total("") != 0 {
				t.Fatalf("%s: the unmapped customer was billed", when)
			}
		}
		wk := w.worker()
		s1 := cycle(t, wk)
		if s1.Sent == 0 || s1.Unmapped != 1 {
			t.Fatalf("first cycle: %+v", s1)
		}
		check("first cycle")
		w.audit(m, "acme")
		// Nothing new: nothing sent.
		n := posts(w.fake)
		if s := cycle(t, wk); s.Sent != 0 || posts(w.fake) != n {
			t.Fatalf("a repeat cycle sent %d requests (%+v)", posts(w.fake)-n, s)
		}
		// Late events inside the open period correct the bill.
		w.traffic(2, 300, w.start.Add(time.Hour), w.now.Add(-3*time.Hour))
		cycle(t, wk)
		check("after late events")
		// Faults: every third request 429, every fourth answer lost after the write.
		w.fake.SetFault(func(n int, r *http.Request) stripefake.Fault {
			switch {
			case n%3 == 0:
				return stripefake.Fault{Status: 429}
			case n%4 == 0:
				return stripefake.Fault{Status: 500, After: true}
			}
			return stripefake.Fault{}
		})
		w.traffic(3, 300, w.start, w.now.Add(-2*time.Hour))
		for i := 0; i < 5; i++ {
			cycle(t, wk)
		}
		check("after faults")
		w.fake.SetFault(nil)
		// The ledger lists every report.
		var out struct {
			Reports []billing.Report `json:"reports"`
			Counts  map[string]int   `json:"counts"`
		}
		w.do("GET", "/v1/billing/customers/acme/reports?status=sent", nil, 200, &out)
		if len(out.Reports) == 0 || out.Counts["sent"] != len(out.Reports) {
			t.Fatalf("ledger of acme: %+v", out.Counts)
		}
		var sum int64
		for _, r := range out.Reports {
			if r.Customer != "acme" || r.Status != billing.StatusSent {
				t.Fatalf("filtered ledger holds %+v", r)
			}
			if mode == billing.ModeMeterEvents {
				sum += r.Quantity
			}
		}
		if mode == billing.ModeMeterEvents && sum != total("acme") {
			t.Fatalf("the ledger's sent events add up to %d, Stripe has %d", sum, total("acme"))
		}
	})
}
