package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripefake"
	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/storage"
)

// failingWrites fails the store's journal writes while fail is set
// (fault injection).
type failingWrites struct {
	storage.Store
	mu   sync.Mutex
	fail error
}

func (f *failingWrites) AppendJournal(ctx context.Context, e storage.JournalEntry) error {
	f.mu.Lock()
	err := f.fail
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.Store.AppendJournal(ctx, e)
}

func (f *failingWrites) set(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

// inEveryStore runs f with a billing.Service on a fresh store of each
// kind.
func inEveryStore(t *testing.T, f func(t *testing.T, svc *billing.Service, st *failingWrites)) {
	for name, openStore := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st, _ := openStore(t)
			fw := &failingWrites{Store: st}
			f(t, &billing.Service{Store: fw}, fw)
		})
	}
}

func entries(t *testing.T, st storage.Store, stream string) []storage.JournalEntry {
	t.Helper()
	es, err := st.JournalEntries(context.Background(), storage.JournalQuery{Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func ptr[V any](v V) *V { return &v }

// A delivery is stored only with a signature of the configured secret,
// within 5 minutes either way, over the body as sent; a repeated event is
// stored once; a signed body that is not an event is refused, the
// signature being fine.
func TestServiceReceivesWebhooks(t *testing.T) {
	inEveryStore(t, func(t *testing.T, svc *billing.Service, st *failingWrites) {
		ctx := context.Background()
		f := stripefake.New(nil)
		defer f.Close()
		ev := f.Customer("cus_1", map[string]string{"company_id": "acme"})
		now := time.Now()
		if _, err := svc.ReceiveWebhook(ctx, ev, stripefake.Sign(ev, secret, now)); !errors.Is(err, billing.ErrNoWebhookSecret) {
			t.Fatalf("a delivery before the settings: %v", err)
		}
		if _, err := svc.ChangeSettings(ctx, billing.SettingsChange{APIKey: ptr("sk_test_1"), WebhookSecret: ptr(secret)}, ""); err != nil {
			t.Fatal(err)
		}
		altered := bytes.Replace(ev, []byte("acme"), []byte("evil"), 1)
		for name, c := range map[string]struct {
			payload []byte
			sig     string
		}{
			"wrong secret":    {ev, stripefake.Sign(ev, "whsec_other", now)},
			"stale":           {ev, stripefake.Sign(ev, secret, now.Add(-6*time.Minute))},
			"6 minutes ahead": {ev, stripefake.Sign(ev, secret, now.Add(6*time.Minute))},
			"altered body":    {altered, stripefake.Sign(ev, secret, now)},
			"missing":         {ev, ""},
			"not a signature": {ev, "sha256=abc"},
		} {
			d, err := svc.ReceiveWebhook(ctx, c.payload, c.sig)
			if !errors.Is(err, billing.ErrBadSignature) || d.Type != "" {
				t.Errorf("%s: %+v %v", name, d, err)
			}
		}
		if n := len(entries(t, st, storage.StreamStripeEvents)); n != 0 {
			t.Fatalf("refused deliveries stored %d events", n)
		}
		for i, dup := range []bool{false, true, true} {
			d, err := svc.ReceiveWebhook(ctx, ev, stripefake.Sign(ev, secret, time.Now().Add(-4*time.Minute)))
			if err != nil || d.Type != "customer.created" || d.Duplicate != dup {
				t.Fatalf("delivery %d: %+v %v", i+1, d, err)
			}
		}
		es := entries(t, st, storage.StreamStripeEvents)
		if len(es) != 1 || es[0].Body != string(ev) {
			t.Fatalf("three deliveries of one event stored %+v", es)
		}
		state, err := svc.State(ctx)
		if c := state.Customers["cus_1"]; err != nil || state.Events != 1 || c == nil || c.Metadata["company_id"] != "acme" {
			t.Fatalf("state %+v %v", state, err)
		}

		notJSON, junk := []byte("id=evt_1&type=customer.created"), []byte(`{"hello":"world"}`)
		var se *json.SyntaxError
		if _, err := svc.ReceiveWebhook(ctx, notJSON, stripefake.Sign(notJSON, secret, time.Now())); !errors.Is(err, billing.ErrInvalidEvent) || !errors.As(err, &se) {
			t.Fatalf("a signed body that is not JSON: %v", err)
		}
		if _, err := svc.ReceiveWebhook(ctx, junk, stripefake.Sign(junk, secret, time.Now())); !errors.Is(err, billing.ErrInvalidEvent) || errors.As(err, &se) {
			t.Fatalf("a signed object that is not an event: %v", err)
		}

		// A store that fails the write: not saved, and a later delivery
		// stores it.
		ev2 := f.Customer("cus_2", nil)
		st.set(errors.New("disk full"))
		if d, err := svc.ReceiveWebhook(ctx, ev2, stripefake.Sign(ev2, secret, time.Now())); !errors.Is(err, billing.ErrNotSaved) || d.Type != "customer.created" {
			t.Fatalf("a failed write: %+v %v", d, err)
		}
		st.set(nil)
		if d, err := svc.ReceiveWebhook(ctx, ev2, stripefake.Sign(ev2, secret, time.Now())); err != nil || d.Duplicate {
			t.Fatalf("the delivery after a failed write: %+v %v", d, err)
		}
		if n := len(entries(t, st, storage.StreamStripeEvents)); n != 2 {
			t.Fatalf("%d events stored", n)
		}
	})
}

// A settings change keeps what it omits, names who made it, refuses a bad
// field and a new api_base without the key, and stores nothing refused.
func TestServiceChangesSettings(t *testing.T) {
	inEveryStore(t, func(t *testing.T, svc *billing.Service, st *failingWrites) {
		ctx := context.Background()
		if _, err := svc.Settings(ctx); !errors.Is(err, billing.ErrNotConfigured) {
			t.Fatalf("settings before any: %v", err)
		}
		s, err := svc.ChangeSettings(ctx, billing.SettingsChange{APIKey: ptr("sk_test_1"), WebhookSecret: ptr(secret)}, "")
		if err != nil || s.Version != 1 || s.UpdatedBy != "admin" || s.Mode != billing.ModeMeterEvents {
			t.Fatalf("first: %+v %v", s, err)
		}
		s, err = svc.ChangeSettings(ctx, billing.SettingsChange{Mode: ptr(billing.ModeUsageRecords)}, "ops@example.com")
		if err != nil || s.Version != 2 || s.APIKey != "sk_test_1" || s.WebhookSecret != secret || s.UpdatedBy != "ops@example.com" {
			t.Fatalf("a change of the mode: %+v %v", s, err)
		}
		if _, err := svc.ChangeSettings(ctx, billing.SettingsChange{RateLimit: ptr(101.0)}, ""); !isField(err, "rate_limit") {
			t.Fatalf("a bad rate limit: %v", err)
		}
		_, err = svc.ChangeSettings(ctx, billing.SettingsChange{APIBase: ptr("https://elsewhere.example")}, "")
		if !errors.Is(err, billing.ErrKeyStaysWithHost) || !strings.Contains(err.Error(), "from https://api.stripe.com to https://elsewhere.example") {
			t.Fatalf("a new api_base without the key: %v", err)
		}
		st.set(errors.New("disk full"))
		if _, err := svc.ChangeSettings(ctx, billing.SettingsChange{Mode: ptr(billing.ModeMeterEvents)}, ""); !errors.Is(err, billing.ErrNotSaved) {
			t.Fatalf("a failed write: %v", err)
		}
		st.set(nil)
		if n := len(entries(t, st, storage.StreamBillingSettings)); n != 2 {
			t.Fatalf("refused changes stored: %d versions", n)
		}
		s, err = svc.ChangeSettings(ctx, billing.SettingsChange{APIKey: ptr("sk_test_2"), APIBase: ptr("https://elsewhere.example")}, "")
		if err != nil || s.Version != 3 || s.APIBase != "https://elsewhere.example" {
			t.Fatalf("a new api_base with its key: %+v %v", s, err)
		}
	})
}

// The key check reads the balance, on Stripe's API as stripe-mock serves
// it; Stripe's refusal is ErrStripeRefused.
func TestServiceChecksTheKey(t *testing.T) {
	mock := stripeMock(t)
	st := open(t, "duckdb://"+t.TempDir()+"/m.duckdb")
	svc := &billing.Service{Store: st}
	ctx := context.Background()
	if _, _, err := svc.CheckKey(ctx); !errors.Is(err, billing.ErrNotConfigured) {
		t.Fatalf("a check before the settings: %v", err)
	}
	if _, err := svc.ChangeSettings(ctx, billing.SettingsChange{APIKey: ptr("sk_test_123"), APIBase: ptr(mock)}, ""); err != nil {
		t.Fatal(err)
	}
	s, livemode, err := svc.CheckKey(ctx)
	if err != nil || livemode || s.APIBase != mock {
		t.Fatalf("check on stripe-mock: %v %v %v", s.APIBase, livemode, err)
	}
	f := stripefake.New(nil)
	defer f.Close()
	f.SetFault(func(int, *http.Request) stripefake.Fault { return stripefake.Fault{Status: 401} })
	if _, err := svc.ChangeSettings(ctx, billing.SettingsChange{APIKey: ptr("sk_test_123"), APIBase: ptr(f.URL)}, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CheckKey(ctx); !errors.Is(err, billing.ErrStripeRefused) {
		t.Fatalf("a refused key: %v", err)
	}
}

// Workers lists the live workers, the oldest leading; long-silent ones
// are not live.
func TestServiceListsLiveWorkers(t *testing.T) {
	inEveryStore(t, func(t *testing.T, svc *billing.Service, st *failingWrites) {
		ctx := context.Background()
		now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
		svc.Now, svc.Interval = func() time.Time { return now }, time.Minute
		for _, b := range []struct {
			id string
			at time.Time
		}{{"b", now.Add(-time.Minute)}, {"a", now.Add(-2 * time.Minute)}, {"gone", now.Add(-time.Hour)}} {
			if err := st.Beat(ctx, b.id, b.at); err != nil {
				t.Fatal(err)
			}
		}
		ws, err := svc.Workers(ctx)
		if err != nil || len(ws) != 2 || ws[0].Worker != "a" || !ws[0].Leader || ws[1].Worker != "b" || ws[1].Leader {
			t.Fatalf("workers %+v %v", ws, err)
		}
	})
}

// isField says whether err is a refusal of field (a fault error).
func isField(err error, field string) bool {
	fe, ok := fault.As(err)
	return ok && fe.Field == field && fe.Status == 400
}
