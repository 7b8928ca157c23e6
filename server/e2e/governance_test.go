package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripefake"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/server"
	"github.com/meterd/meterd/storage"
)

const (
	govAdmin  = "adm-governance"
	govWhsec  = "whsec_e2e_governance"
	govStripe = "sk_test_e2eGovernanceKey0123456789"
)

// TestGovernanceWithMoesifNode closes the loop through the real moesif-nodejs
// middleware, unchanged, on both stores: a company's calls pass; after a
// signed invoice.payment_failed webhook they are answered with the rule's
// status and body (its invoice link filled in) within two event batches,
// while another company passes; after invoice.paid they pass again; a quota
// over a meter blocks a company's searches (and only those) once its usage
// passes the limit; and a resync rebuilds the invoice state webhooks missed.
func TestGovernanceWithMoesifNode(t *testing.T) {
	appDir := moesifApp(t)
	stores := storeOpeners("meterd_gov_e2e")
	for name, open := range stores {
		t.Run(name, func(t *testing.T) { governEndToEnd(t, appDir, open(t)) })
	}
}

// batchCounter counts the event batches meterd answered.
type batchCounter struct {
	mu sync.Mutex
	n  int
}

func (b *batchCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/v1/events") {
			b.mu.Lock()
			b.n++
			b.mu.Unlock()
		}
	})
}

func (b *batchCounter) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func governEndToEnd(t *testing.T, appDir string, st storage.Store) {
	ctx := context.Background()
	srv, err := server.New(server.Config{Store: st, AdminToken: govAdmin, IngestKey: ingestKey, BillingInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	batches := &batchCounter{}
	meterd := httptest.NewServer(batches.wrap(srv.Handler()))
	t.Cleanup(meterd.Close)
	api := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, meterd.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+govAdmin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if resp.StatusCode >= 300 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return m
	}
	fake := stripefake.New(nil)
	t.Cleanup(fake.Close)
	api("PUT", "/v1/billing/stripe", `{"api_key":"`+govStripe+`","webhook_secret":"`+govWhsec+`","api_base":"`+fake.URL+`"}`)
	deliver := func(evs ...[]byte) {
		t.Helper()
		for _, ev := range evs {
			req, _ := http.NewRequest("POST", meterd.URL+"/v1/stripe/webhook", strings.NewReader(string(ev)))
			req.Header.Set("Stripe-Signature", stripefake.Sign(ev, govWhsec, time.Now()))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("webhook: %d", resp.StatusCode)
			}
		}
	}

	// The rules exist before the app starts: moesif-nodejs fetches rules at
	// start and then once a minute (membership travels faster, by ETag).
	searches := api("POST", "/v1/meters", `{"name":"Searches","filter":"request.route == \"/v1/search\"","aggregation":"count"}`)["id"].(string)
	unpaid := api("POST", "/v1/governance/rules", `{"name":"Unpaid invoices","applies_to":"company","active":true,
		"condition":"invoices.unpaid > 0",
		"response":{"status":402,"body":{"error":"payment_required","invoice":"{{invoices.hosted_invoice_url}}","customer":"{{customer}}"}}}`)["id"].(string)
	quota := api("POST", "/v1/governance/rules", `{"name":"Search quota","applies_to":"company","active":true,
		"condition":"usage(\"`+searches+`\") >= 6","routes":{"route":"^/v1/search"},
		"response":{"status":429,"body":{"error":"quota_exceeded"}}}`)["id"].(string)

	app := startApp(t, appDir, meterd.URL, ingestKey)
	call := func(company, method, path string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, app+path, strings.NewReader(`{"items":[1]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-User-Id", "u-"+company)
		req.Header.Set("X-Company-Id", company)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	// waitFor calls the app until cond holds for an answer of company,
	// checking each round that other still passes; it returns the answer's
	// body and how many event batches meterd answered meanwhile.
	waitFor := func(what, company, method, path string, cond func(int) bool, other string) (map[string]any, int) {
		t.Helper()
		start := batches.count()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			status, body := call(company, method, path)
			if cond(status) {
				return body, batches.count() - start
			}
			if other != "" {
				if s, b := call(other, "POST", "/v1/orders"); s != 201 {
					t.Fatalf("while waiting for %s: %s got %d %v", what, other, s, b)
				}
			}
			time.Sleep(150 * time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s", what)
		return nil, 0
	}

	for _, co := range []string{"acme", "globex"} {
		for i := 0; i < 2; i++ {
			if s, b := call(co, "GET", "/v1/search?q=shoes"); s != 200 {
				t.Fatalf("%s before any rule holds: %d %v", co, s, b)
			}
		}
	}

	// acme's invoice payment fails.
	deliver(fake.Customer("cus_acme", map[string]string{"company_id": "acme"}))
	inv, created := fake.Invoice("cus_acme", "", 4900, "usd", time.Time{})
	deliver(created, fake.FinalizeInvoice(inv), fake.FailInvoicePayment(inv))
	body, n := waitFor("acme to be blocked", "acme", "POST", "/v1/orders", func(s int) bool { return s == 402 }, "globex")
	if n > 2 {
		t.Errorf("acme was blocked after %d event batches, want at most 2", n)
	}
	if body["error"] != "payment_required" || body["customer"] != "acme" || body["invoice"] != "https://invoice.stripe.com/i/acct_fake/"+inv {
		t.Fatalf("blocked answer: %v", body)
	}

	// The agent reports the calls it blocked, with the rule's id: stored,
	// and not billed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := api("GET", "/v1/events?blocked_by="+unpaid+"&limit=10", "")["events"].([]any)
		if len(evs) > 0 {
			if e := evs[0].(map[string]any); e["company_id"] != "acme" || e["response"].(map[string]any)["status"] != float64(402) {
				t.Fatalf("a blocked call's event: %v", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no event with blocked_by arrived")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Paid: acme passes again.
	deliver(fake.PayInvoice(inv)...)
	if _, n := waitFor("acme to pass again", "acme", "POST", "/v1/orders", func(s int) bool { return s == 201 }, "globex"); n > 2 {
		t.Errorf("acme passed again after %d event batches, want at most 2", n)
	}

	// globex passes its quota of searches: its searches are refused, the
	// rest of its calls pass, acme's searches pass.
	body, _ = waitFor("globex's quota", "globex", "GET", "/v1/search?q=more", func(s int) bool { return s == 429 }, "")
	if body["error"] != "quota_exceeded" {
		t.Fatalf("quota answer: %v", body)
	}
	if s, _ := call("globex", "POST", "/v1/orders"); s != 201 {
		t.Fatalf("globex's other calls: %d, want 201 (the quota governs searches)", s)
	}
	if s, _ := call("acme", "GET", "/v1/search?q=shoes"); s != 200 {
		t.Fatalf("acme's search: %d", s)
	}
	status := api("GET", "/v1/governance/status", "")
	for _, r := range status["rules"].([]any) {
		r := r.(map[string]any)
		if r["id"] == quota && fmt.Sprint(r["matching"]) == "[]" {
			t.Fatalf("status: the quota lists nobody: %v", status)
		}
	}

	// A resync rebuilds what webhooks missed: globex's failed invoice,
	// never delivered, blocks its calls too.
	fake.Customer("cus_globex", map[string]string{"company_id": "globex"})
	inv2, _ := fake.Invoice("cus_globex", "", 1500, "usd", time.Time{})
	fake.FinalizeInvoice(inv2)
	fake.FailInvoicePayment(inv2)
	settings, err := billing.LoadSettings(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stripestate.Resync(ctx, billing.NewAPI(*settings, 10*time.Second), st, time.Now()); err != nil {
		t.Fatal(err)
	}
	body, _ = waitFor("globex to be blocked after the resync", "globex", "POST", "/v1/orders", func(s int) bool { return s == 402 }, "")
	if body["invoice"] != "https://invoice.stripe.com/i/acct_fake/"+inv2 || body["customer"] != "globex" {
		t.Fatalf("globex's blocked answer: %v", body)
	}
	if who := api("GET", "/v1/governance/customers/company/globex", ""); !strings.Contains(fmt.Sprint(who["rules"]), unpaid) {
		t.Fatalf("globex's rules: %v", who)
	}
}

// moesifApp is the Express app's directory, with moesif-nodejs installed.
func moesifApp(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("moesifnode")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "moesif-nodejs")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("moesif-nodejs is not installed in %s (run npm ci there): %v", dir, err)
		}
		t.Skipf("moesif-nodejs not installed (cd %s && npm ci)", dir)
	}
	return dir
}
