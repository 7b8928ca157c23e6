package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripefake"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/storage"
)

const (
	testStripeKey = "sk_test_51SecretKeyNeverShownABCD9876"
	testWhsec     = "whsec_server_test_secret"
)

func (h *harness) putStripe(body string) answer {
	h.t.Helper()
	return h.adminDo("PUT", "/v1/billing/stripe", body)
}

// webhook delivers payload signed with secret at the given time.
func (h *harness) webhook(payload []byte, signature string) answer {
	h.t.Helper()
	hd := []string{"Content-Type", "application/json"}
	if signature != "" {
		hd = append(hd, "Stripe-Signature", signature)
	}
	return h.do("POST", "/v1/stripe/webhook", bytes.NewReader(payload), hd...)
}

// journal reads the server's store (ClickHouse's under eachStore).
func (h *harness) journal(stream string) []storage.JournalEntry {
	h.t.Helper()
	es, err := h.srv.cfg.Store.JournalEntries(context.Background(), storage.JournalQuery{Stream: stream})
	if err != nil {
		h.t.Fatal(err)
	}
	return es
}

// Before Stripe is configured every billing endpoint says so clearly.
func TestBillingBeforeConfiguration(t *testing.T) {
	h := newHarness(t, nil)
	wantError(t, h.admin("/v1/billing/stripe"), 404, "not_configured", "", -1)
	wantError(t, h.adminDo("POST", "/v1/billing/stripe/check", ""), 404, "not_configured", "", -1)
	f := stripefake.New(nil)
	defer f.Close()
	ev := f.Customer("cus_1", map[string]string{"company_id": "acme"})
	wantError(t, h.webhook(ev, stripefake.Sign(ev, testWhsec, time.Now())), 503, "not_configured", "", -1)
	if n := len(h.journal(storage.StreamStripeEvents)); n != 0 {
		t.Fatalf("%d events stored before configuration", n)
	}
	if a := h.admin("/v1/billing/reports"); a.status != 200 || !strings.Contains(string(a.body), `"reports":[]`) {
		t.Fatalf("reports before configuration: %d %s", a.status, a.body)
	}
	if a := h.do("GET", "/v1/billing/stripe", nil); a.status != 401 {
		t.Fatalf("settings without the admin token: %d", a.status)
	}
}

// Each bad setting is a 400 naming its field, and stores nothing.
func TestStripeSettingsValidation(t *testing.T) {
	h := newHarness(t, nil)
	ok := `"api_key":"` + testStripeKey + `"`
	for _, c := range []struct{ body, code, field string }{
		{`{}`, "invalid_value", "api_key"},
		{`{"api_key":"pk_test_publishable"}`, "invalid_value", "api_key"},
		{`{` + ok + `,"webhook_secret":"secret"}`, "invalid_value", "webhook_secret"},
		{`{` + ok + `,"mode":"invoices"}`, "invalid_value", "mode"},
		{`{` + ok + `,"customer_id_source":"email"}`, "invalid_value", "customer_id_source"},
		{`{` + ok + `,"customer_id_source":"metadata."}`, "invalid_value", "customer_id_source"},
		{`{` + ok + `,"rate_limit":101}`, "invalid_value", "rate_limit"},
		{`{` + ok + `,"rate_limit":-1}`, "invalid_value", "rate_limit"},
		{`{` + ok + `,"api_base":"ftp://stripe.example"}`, "invalid_value", "api_base"},
		{`{` + ok + `,"api_base":"https://api.stripe.com/v1"}`, "invalid_value", "api_base"},
		{`{` + ok + `,"rate_limit":"fast"}`, "invalid_type", "rate_limit"},
		{`{` + ok + `,"apikey":"x"}`, "unknown_field", "apikey"},
		{`{` + ok, "invalid_json", ""},
	} {
		t.Run(c.body, func(t *testing.T) {
			wantError(t, h.putStripe(c.body), 400, c.code, c.field, -1)
		})
	}
	if n := len(h.journal(storage.StreamBillingSettings)); n != 0 {
		t.Fatalf("refused settings stored %d versions", n)
	}
	wantError(t, h.admin("/v1/billing/stripe"), 404, "not_configured", "", -1)
}

// The key and the signing secret are never answered; an omitted secret
// keeps its stored value; each change is a new version.
func TestStripeSettingsNeverShowTheKey(t *testing.T) {
	h := newHarness(t, nil)
	a := h.putStripe(`{"api_key":"` + testStripeKey + `","webhook_secret":"` + testWhsec + `"}`)
	if a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	check := func(a answer, version float64, mode string) {
		t.Helper()
		if a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if bytes.Contains(a.body, []byte("SecretKeyNeverShown")) || bytes.Contains(a.body, []byte(testWhsec)) {
			t.Fatalf("a secret is in the answer: %s", a.body)
		}
		m := a.json(t)
		if m["api_key_last4"] != "9876" || m["webhook_secret_set"] != true || m["livemode"] != false || m["version"] != version ||
			m["mode"] != mode || m["customer_id_source"] != "metadata.company_id" || m["api_base"] != billing.DefaultAPIBase ||
			m["rate_limit"] != float64(billing.DefaultRateLimit) || m["webhook_path"] != "/v1/stripe/webhook" {
			t.Fatalf("settings %s", a.body)
		}
	}
	check(a, 1, billing.ModeMeterEvents)
	check(h.admin("/v1/billing/stripe"), 1, billing.ModeMeterEvents)
	check(h.putStripe(`{"mode":"usage_records"}`), 2, billing.ModeUsageRecords)
	check(h.admin("/v1/billing/stripe"), 2, billing.ModeUsageRecords)
	s, err := billing.LoadSettings(context.Background(), h.store, nil)
	if err != nil || s.APIKey != testStripeKey || s.WebhookSecret != testWhsec {
		t.Fatalf("stored settings lost a secret: %v %v", s, err)
	}
	// A short key shows nothing of itself.
	if got := (billing.Settings{APIKey: "sk_12345"}).Public().APIKeyLast4; got != "" {
		t.Fatalf("an 8-character key shows %q", got)
	}
}

// The check reads Stripe's balance: 200 when Stripe answers, 502 with
// Stripe's message when it refuses the key.
func TestStripeCheck(t *testing.T) {
	h := newHarness(t, nil)
	f := stripefake.New(nil)
	defer f.Close()
	if a := h.putStripe(`{"api_key":"` + testStripeKey + `","api_base":"` + f.URL + `"}`); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	if a := h.adminDo("POST", "/v1/billing/stripe/check", ""); a.status != 200 || a.json(t)["ok"] != true {
		t.Fatalf("check: %d %s", a.status, a.body)
	}
	rs := f.Requests()
	if len(rs) != 1 || rs[0].Method != "GET" || rs[0].Path != "/v1/balance" {
		t.Fatalf("the check made %+v", rs)
	}
	f.SetFault(func(int, *http.Request) stripefake.Fault { return stripefake.Fault{Status: 401} })
	wantError(t, h.adminDo("POST", "/v1/billing/stripe/check", ""), 502, "stripe_error", "", -1)
}

// A webhook with a bad, stale or missing signature, or an altered body,
// is refused with 400 and stores nothing; a repeated delivery is stored
// once.
func TestStripeWebhook(t *testing.T) {
	h := newHarness(t, nil)
	if a := h.putStripe(`{"api_key":"` + testStripeKey + `","webhook_secret":"` + testWhsec + `"}`); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	f := stripefake.New(nil)
	defer f.Close()
	ev := f.Customer("cus_1", map[string]string{"company_id": "acme"})
	now := time.Now()
	altered := bytes.Replace(ev, []byte("acme"), []byte("evil"), 1)
	for name, c := range map[string]struct {
		payload []byte
		sig     string
	}{
		"wrong secret":    {ev, stripefake.Sign(ev, "whsec_other", now)},
		"stale":           {ev, stripefake.Sign(ev, testWhsec, now.Add(-6*time.Minute))},
		"an hour ahead":   {ev, stripefake.Sign(ev, testWhsec, now.Add(time.Hour))},
		"6 minutes ahead": {ev, stripefake.Sign(ev, testWhsec, now.Add(6*time.Minute))},
		"altered body":    {altered, stripefake.Sign(ev, testWhsec, now)},
		"missing":         {ev, ""},
		"garbage":         {ev, "t=1,v1=00"},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, h.webhook(c.payload, c.sig), 400, "invalid_signature", "Stripe-Signature", -1)
		})
	}
	if n := len(h.journal(storage.StreamStripeEvents)); n != 0 {
		t.Fatalf("refused deliveries stored %d events", n)
	}
	if st := h.admin("/v1/billing/state").json(t); st["events"] != float64(0) || len(st["customers"].(map[string]any)) != 0 {
		t.Fatalf("state after refused deliveries: %v", st)
	}
	for i, dup := range []bool{false, true, true} {
		a := h.webhook(ev, stripefake.Sign(ev, testWhsec, time.Now()))
		if a.status != 200 || a.json(t)["received"] != true || a.json(t)["duplicate"] != dup {
			t.Fatalf("delivery %d: %d %s", i+1, a.status, a.body)
		}
	}
	if n := len(h.journal(storage.StreamStripeEvents)); n != 1 {
		t.Fatalf("three deliveries of one event stored %d entries", n)
	}
	st := h.admin("/v1/billing/state").json(t)
	if c, _ := st["customers"].(map[string]any)["cus_1"].(map[string]any); st["events"] != float64(1) || c == nil ||
		c["metadata"].(map[string]any)["company_id"] != "acme" {
		t.Fatalf("state %v", st)
	}
	// A signed body that is not a Stripe event, or not JSON at all: 400
	// saying so (the signature is fine), nothing stored.
	junk := []byte(`{"hello":"world"}`)
	wantError(t, h.webhook(junk, stripefake.Sign(junk, testWhsec, time.Now())), 400, "invalid_event", "", -1)
	notJSON := []byte("id=evt_1&type=customer.created")
	a := h.webhook(notJSON, stripefake.Sign(notJSON, testWhsec, time.Now()))
	wantError(t, a, 400, "invalid_json", "", -1)
	if msg := a.json(t)["message"].(string); !strings.Contains(msg, "line 1, column 1") {
		t.Fatalf("a non-JSON body: %s", msg)
	}
	if n := len(h.journal(storage.StreamStripeEvents)); n != 1 {
		t.Fatalf("a non-event was stored (%d entries)", n)
	}
	// A clock a few minutes off either way, within Stripe's 5 minutes, is
	// fine.
	for i, skew := range []time.Duration{4 * time.Minute, -4 * time.Minute} {
		e := f.Customer(fmt.Sprintf("cus_skew%d", i), nil)
		if a := h.webhook(e, stripefake.Sign(e, testWhsec, time.Now().Add(skew))); a.status != 200 {
			t.Fatalf("a signature %v off: %d %s", skew, a.status, a.body)
		}
	}
}

// reportsPage is GET /v1/billing/reports's answer, its reports of type R:
// billing.Report, or billing.ReportState with latest=true.
type reportsPage[R any] struct {
	Reports []R            `json:"reports"`
	Counts  map[string]int `json:"counts"`
}

// getReports fetches a page of the ledger, failing on anything but 200.
func getReports[R any](t *testing.T, h *harness, path string) reportsPage[R] {
	t.Helper()
	a := h.admin(path)
	var p reportsPage[R]
	if err := json.Unmarshal(a.body, &p); a.status != 200 || err != nil {
		t.Fatalf("%s: %d %s (%v)", path, a.status, a.body, err)
	}
	return p
}

// The ledger's filters: customer (query or path), meter, status, from,
// limit; newest first; counts of everything matched.
func TestBillingReportFilters(t *testing.T) {
	h := newHarness(t, nil)
	at := testNow.Add(-time.Hour)
	var n int
	add := func(customer, meter, status string) {
		n++
		r := billing.Report{Key: fmt.Sprintf("k%02d", n), Status: status, Mode: billing.ModeUsageRecords, MeterID: meter,
			Customer: customer, Quantity: int64(n), AttemptAt: at.Add(time.Duration(n) * time.Minute)}
		b, _ := json.Marshal(r)
		if err := h.store.AppendJournal(context.Background(), storage.JournalEntry{Stream: storage.StreamBillingLedger,
			Key: r.Key, At: r.AttemptAt, Body: string(b)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"acme", "globex"} {
		for _, m := range []string{"m1", "m2"} {
			for _, s := range []string{billing.StatusSent, billing.StatusSent, billing.StatusFailed, billing.StatusLate} {
				add(c, m, s)
			}
		}
	}
	get := func(path string) reportsPage[billing.Report] {
		t.Helper()
		p := getReports[billing.Report](t, h, path)
		for i := 1; i < len(p.Reports); i++ {
			if p.Reports[i].AttemptAt.After(p.Reports[i-1].AttemptAt) {
				t.Fatalf("%s: not newest first", path)
			}
		}
		return p
	}
	for path, want := range map[string]struct {
		n      int
		counts string
		match  func(r billing.Report) bool
	}{
		"/v1/billing/reports":                                                     {16, "failed:4 late:4 sent:8", func(billing.Report) bool { return true }},
		"/v1/billing/reports?customer=acme":                                       {8, "failed:2 late:2 sent:4", func(r billing.Report) bool { return r.Customer == "acme" }},
		"/v1/billing/customers/globex/reports":                                    {8, "failed:2 late:2 sent:4", func(r billing.Report) bool { return r.Customer == "globex" }},
		"/v1/billing/reports?meter=m2&status=sent":                                {4, "sent:4", func(r billing.Report) bool { return r.MeterID == "m2" && r.Status == "sent" }},
		"/v1/billing/customers/acme/reports?meter=m1&status=late":                 {1, "late:1", func(r billing.Report) bool { return r.Customer == "acme" && r.MeterID == "m1" && r.Status == "late" }},
		"/v1/billing/reports?customer=initech":                                    {0, "", func(billing.Report) bool { return false }},
		"/v1/billing/reports?status=failed&limit=2":                               {2, "failed:4", func(r billing.Report) bool { return r.Status == "failed" }},
		"/v1/billing/reports?from=" + at.Add(15*time.Minute).Format(time.RFC3339): {2, "failed:1 late:1", func(r billing.Report) bool { return r.Quantity >= 15 }},
	} {
		p := get(path)
		var cs []string
		for _, s := range []string{"failed", "late", "sent"} {
			if p.Counts[s] > 0 {
				cs = append(cs, fmt.Sprintf("%s:%d", s, p.Counts[s]))
			}
		}
		if len(p.Reports) != want.n || strings.Join(cs, " ") != want.counts {
			t.Fatalf("%s: %d reports, counts %v; want %d, %s", path, len(p.Reports), p.Counts, want.n, want.counts)
		}
		for _, r := range p.Reports {
			if !want.match(r) {
				t.Fatalf("%s holds %+v", path, r)
			}
		}
	}
	if p := get("/v1/billing/reports?limit=1"); p.Reports[0].Quantity != 16 {
		t.Fatalf("the newest report is %+v", p.Reports[0])
	}
	wantError(t, h.admin("/v1/billing/reports?limit=0"), 400, "invalid_value", "limit", -1)
	wantError(t, h.admin("/v1/billing/reports?from=yesterday"), 400, "invalid_value", "from", -1)
	wantError(t, h.admin("/v1/billing/reports?status=done"), 400, "invalid_value", "status", -1)
}

// latest=true lists each report once, at its latest entry, with its
// history; the filters and counts apply to that latest state.
func TestBillingReportsLatest(t *testing.T) {
	h := newHarness(t, nil)
	at := testNow.Add(-time.Hour)
	n := 0
	add := func(key, customer, status string, gen int) {
		n++
		r := billing.Report{Key: key, Generation: gen, Status: status, Mode: billing.ModeMeterEvents, MeterID: "m1", Customer: customer,
			Quantity: 5, AttemptAt: at.Add(time.Duration(n) * time.Minute)}
		if status == billing.StatusFailed {
			r.HTTPStatus, r.Error = 500, "boom"
		}
		b, _ := json.Marshal(r)
		if err := h.store.AppendJournal(context.Background(), storage.JournalEntry{Stream: storage.StreamBillingLedger,
			Key: fmt.Sprintf("%03d/%s/%s", n, key, status), At: r.AttemptAt, Body: string(b)}); err != nil {
			t.Fatal(err)
		}
	}
	add("k1", "acme", billing.StatusPending, 0)
	add("k1", "acme", billing.StatusSent, 0)
	add("k2", "acme", billing.StatusPending, 0)
	add("k2", "acme", billing.StatusFailed, 0)
	add("k2-1", "acme", billing.StatusPending, 1)
	add("k3", "globex", billing.StatusPending, 0)
	add("k3", "globex", billing.StatusFailed, 0)
	get := func(path string) reportsPage[billing.ReportState] {
		t.Helper()
		return getReports[billing.ReportState](t, h, path)
	}
	summary := func(p reportsPage[billing.ReportState]) string {
		var out []string
		for _, r := range p.Reports {
			out = append(out, fmt.Sprintf("%s:%s:%d", r.Key, r.Status, len(r.History)))
		}
		return fmt.Sprint(out, p.Counts)
	}
	for path, want := range map[string]string{
		"/v1/billing/reports?latest=true":                  "[k3:failed:2 k2-1:pending:3 k1:sent:2] map[failed:1 pending:1 sent:1]",
		"/v1/billing/reports?latest=true&status=pending":   "[k2-1:pending:3] map[pending:1]",
		"/v1/billing/customers/acme/reports?latest=true":   "[k2-1:pending:3 k1:sent:2] map[pending:1 sent:1]",
		"/v1/billing/reports?latest=true&limit=1":          "[k3:failed:2] map[failed:1 pending:1 sent:1]",
		"/v1/billing/reports?latest=false&status=pending":  "[k3:pending:0 k2-1:pending:0 k2:pending:0 k1:pending:0] map[pending:4]",
		"/v1/billing/reports?latest=true&customer=initech": "[] map[]",
	} {
		if got := summary(get(path)); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	h2 := get("/v1/billing/reports?latest=true&status=pending").Reports[0].History
	if h2[1].Status != billing.StatusFailed || h2[1].HTTPStatus != 500 || h2[1].Error != "boom" || h2[2].Key != "k2-1" || h2[2].Generation != 1 {
		t.Errorf("k2's history: %+v", h2)
	}
	wantError(t, h.admin("/v1/billing/reports?latest=yes"), 400, "invalid_value", "latest", -1)
}

// GET /v1/billing/workers lists the workers live within three intervals,
// the oldest (the one that runs the cycles) first.
func TestBillingWorkers(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.BillingInterval = 10 * time.Second })
	type workers struct {
		IntervalSeconds float64 `json:"interval_seconds"`
		Workers         []struct {
			Worker   string    `json:"worker"`
			LastSeen time.Time `json:"last_seen"`
			Leader   bool      `json:"leader"`
		} `json:"workers"`
	}
	var w workers
	get := func() {
		t.Helper()
		a := h.admin("/v1/billing/workers")
		w = workers{}
		if err := json.Unmarshal(a.body, &w); a.status != 200 || err != nil {
			t.Fatalf("GET /v1/billing/workers: %d %s", a.status, a.body)
		}
	}
	get()
	if w.IntervalSeconds != 10 || w.Workers == nil || len(w.Workers) != 0 {
		t.Fatalf("no worker yet: %+v", w)
	}
	for _, b := range []struct {
		who string
		ago time.Duration
	}{{"2026-b", time.Second}, {"2026-a", 20 * time.Second}, {"2025-dead", 31 * time.Second}} {
		if err := h.store.Beat(t.Context(), b.who, testNow.Add(-b.ago)); err != nil {
			t.Fatal(err)
		}
	}
	get()
	if len(w.Workers) != 2 || w.Workers[0].Worker != "2026-a" || !w.Workers[0].Leader ||
		w.Workers[1].Worker != "2026-b" || w.Workers[1].Leader || !w.Workers[1].LastSeen.Equal(testNow.Add(-time.Second)) {
		t.Fatalf("workers: %+v", w)
	}
	if a := h.do("GET", "/v1/billing/workers", nil); a.status != 401 {
		t.Fatalf("without the admin token: %d", a.status)
	}
}

// Settings sealed with METERD_SECRET_KEY, read by a process without it:
// 500 secret_key saying what to do, and entering both secrets recovers.
func TestSealedStripeSettingsWithoutTheKey(t *testing.T) {
	sl, err := billing.NewSealer("0123456789abcdef0123456789abcdef-server")
	if err != nil {
		t.Fatal(err)
	}
	sealing := newHarness(t, func(c *Config) { c.Sealer = sl })
	if a := sealing.putStripe(`{"api_key":"` + testStripeKey + `","webhook_secret":"` + testWhsec + `"}`); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	h := newHarness(t, func(c *Config) { c.Store = sealing.store }) // another process, without the key
	a := h.admin("/v1/billing/stripe")
	if m := a.json(t); a.status != 500 || m["code"] != "secret_key" || !strings.Contains(m["message"].(string), "METERD_SECRET_KEY is not set here") {
		t.Fatalf("GET without the key: %d %s", a.status, a.body)
	}
	if a := h.putStripe(`{"mode":"usage_records"}`); a.status != 500 {
		t.Fatalf("a PUT keeping the sealed secrets without the key: %d %s", a.status, a.body)
	}
	if a := h.putStripe(`{"api_key":"sk_test_replaced00key1234","webhook_secret":"whsec_new"}`); a.status != 200 {
		t.Fatalf("replacing both secrets: %d %s", a.status, a.body)
	}
	if m := h.admin("/v1/billing/stripe").json(t); m["api_key_last4"] != "1234" || m["version"] != float64(2) {
		t.Fatalf("after replacing: %v", m)
	}
}

// The stored key is only ever sent to the API it was entered for: a PUT
// that changes api_base without api_key is refused (400 missing_field
// api_key, nothing stored), so neither the check nor the worker can send
// it to another host. A recording server stands in for that host.
func TestStripeKeyStaysWithItsHost(t *testing.T) {
	h := newHarness(t, nil)
	home := stripefake.New(nil)
	defer home.Close()
	var mu sync.Mutex
	var keys []string // the Authorization headers elsewhere received
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"object":"balance","livemode":false,"available":[],"pending":[]}`))
	}))
	defer elsewhere.Close()
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), keys...)
	}
	check := func() {
		t.Helper()
		if a := h.adminDo("POST", "/v1/billing/stripe/check", ""); a.status != 200 {
			t.Fatalf("check: %d %s", a.status, a.body)
		}
	}
	if a := h.putStripe(`{"api_key":"` + testStripeKey + `","api_base":"` + home.URL + `"}`); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	for _, body := range []string{
		`{"api_base":"` + elsewhere.URL + `"}`,
		`{"api_base":"` + elsewhere.URL + `","mode":"usage_records"}`,
		`{"api_base":"` + elsewhere.URL + `","webhook_secret":"` + testWhsec + `"}`,
		`{"api_base":""}`, // the default, Stripe's API: not where the key was entered either
	} {
		a := h.putStripe(body)
		wantError(t, a, 400, "missing_field", "api_key", -1)
		if !strings.Contains(a.json(t)["message"].(string), elsewhere.URL) && !strings.Contains(body, `""`) {
			t.Fatalf("the refusal does not name the new api_base: %s", a.body)
		}
	}
	// The same host however written, and changes of other fields, keep it.
	if a := h.putStripe(`{"api_base":"` + home.URL + `/","mode":"usage_records"}`); a.status != 200 || a.json(t)["version"] != float64(2) {
		t.Fatalf("put on the same host: %d %s", a.status, a.body)
	}
	check()
	if n := len(home.Requests()); n != 1 {
		t.Fatalf("the check made %d requests to the API the key was entered for", n)
	}
	if r := received(); len(r) != 0 {
		t.Fatalf("the other host received %d requests: %v", len(r), r)
	}
	// With a key entered for it, the other host gets that key, and only it.
	const otherKey = "sk_test_enteredForElsewhere0001"
	if a := h.putStripe(`{"api_base":"` + elsewhere.URL + `","api_key":"` + otherKey + `"}`); a.status != 200 {
		t.Fatalf("put with a key: %d %s", a.status, a.body)
	}
	check()
	if r := received(); len(r) != 1 || r[0] != "Bearer "+otherKey {
		t.Fatalf("the other host received %v, want only the key entered for it", r)
	}
	// And that key does not go back to the first host unless entered again.
	wantError(t, h.putStripe(`{"api_base":"`+home.URL+`"}`), 400, "missing_field", "api_key", -1)
	for _, r := range received() {
		if strings.Contains(r, testStripeKey) {
			t.Fatalf("the stored key reached a host it was not entered for: %q", r)
		}
	}
	if m := h.admin("/v1/billing/stripe").json(t); m["version"] != float64(3) || m["api_base"] != elsewhere.URL {
		t.Fatalf("settings after the refusals: %v", m)
	}
}

// Invoice events go through the signed webhook into the journal, once
// each however often and in whatever order Stripe delivers them, and
// GET /v1/billing/state shows the folded invoices and each customer's
// unpaid ones at the server's clock, on both stores.
func TestInvoiceWebhooks(t *testing.T) {
	eachStore(t, func(t *testing.T, h *harness) {
		if a := h.putStripe(`{"api_key":"` + testStripeKey + `","webhook_secret":"` + testWhsec + `"}`); a.status != 200 {
			t.Fatalf("put: %d %s", a.status, a.body)
		}
		clock := testNow.Add(-40 * 24 * time.Hour)
		f := stripefake.New(func() time.Time { return clock })
		defer f.Close()
		later := func(d time.Duration) { clock = clock.Add(d) }
		// in1 failed, then was paid; in2 failed; in3 (send_invoice) is past
		// due; in4 is due tomorrow.
		in1, c1 := f.Invoice("cus_1", "sub_1", 1000, "eur", time.Time{})
		later(time.Hour)
		fz1 := f.FinalizeInvoice(in1)
		later(time.Hour)
		fl1 := f.FailInvoicePayment(in1)
		later(24 * time.Hour)
		paid1 := f.PayInvoice(in1)
		in2, c2 := f.Invoice("cus_1", "sub_1", 2500, "eur", time.Time{})
		fz2 := f.FinalizeInvoice(in2)
		later(time.Hour)
		fl2 := f.FailInvoicePayment(in2)
		later(24 * time.Hour)
		in3, _ := f.Invoice("cus_1", "", 700, "eur", testNow.Add(-5*24*time.Hour))
		fz3 := f.FinalizeInvoice(in3)
		in4, _ := f.Invoice("cus_2", "", 300, "eur", testNow.Add(24*time.Hour))
		fz4 := f.FinalizeInvoice(in4)
		order := [][]byte{paid1[1], fl2, fl1, paid1[0], c1, fz3, fz2, fz1, c2, fl2, paid1[1], fz4, c1}
		for i, ev := range order {
			if a := h.webhook(ev, stripefake.Sign(ev, testWhsec, time.Now())); a.status != 200 || a.json(t)["received"] != true {
				t.Fatalf("delivery %d: %d %s", i, a.status, a.body)
			}
		}
		if n := len(h.journal(storage.StreamStripeEvents)); n != 10 {
			t.Fatalf("13 deliveries of 10 events stored %d entries", n)
		}
		var st struct {
			Events   int                                   `json:"events"`
			Invoices map[string]stripestate.Invoice        `json:"invoices"`
			Unpaid   map[string]stripestate.InvoiceSummary `json:"unpaid_invoices"`
		}
		a := h.admin("/v1/billing/state")
		if err := json.Unmarshal(a.body, &st); a.status != 200 || err != nil {
			t.Fatalf("state: %d %s", a.status, a.body)
		}
		for id, want := range map[string]string{in1: "paid false", in2: "open true", in3: "open false", in4: "open false"} {
			if inv := st.Invoices[id]; fmt.Sprintf("%s %v", inv.Status, inv.PaymentFailed) != want || inv.Customer == "" {
				t.Errorf("%s: %+v, want %s", id, inv, want)
			}
		}
		want := map[string]stripestate.InvoiceSummary{"cus_1": {Unpaid: 2, AmountDue: 3200, Currency: "eur", OldestUnpaidDays: 38,
			HostedInvoiceURL: "https://invoice.stripe.com/i/acct_fake/" + in2, OldestInvoice: in2}}
		if !reflect.DeepEqual(st.Unpaid, want) {
			t.Fatalf("unpaid invoices:\n got %+v\nwant %+v", st.Unpaid, want)
		}
	})
}
