package billing_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/storage"
)

const (
	sealKey  = "0123456789abcdef0123456789abcdef-seal"
	otherKey = "fedcba9876543210fedcba9876543210-other"
)

// sealer is the Sealer of a key, failing the test on a bad one.
func sealer(t *testing.T, key string) *billing.Sealer {
	t.Helper()
	sl, err := billing.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return sl
}

// With METERD_SECRET_KEY set, the stored settings hold neither secret;
// they open with the same key only, and plain-text versions still read.
func TestSealedSettings(t *testing.T) {
	ctx := context.Background()
	st := open(t, "duckdb://"+t.TempDir()+"/m.duckdb")
	now := time.Now()
	plain := billing.Settings{APIKey: "sk_test_plain0000key1111", WebhookSecret: "whsec_plain", Mode: billing.ModeUsageRecords}
	if _, err := billing.SaveSettings(ctx, st, nil, plain, now); err != nil {
		t.Fatal(err)
	}
	sl := sealer(t, sealKey)
	if s, err := billing.LoadSettings(ctx, st, sl); err != nil || s.APIKey != plain.APIKey || s.WebhookSecret != plain.WebhookSecret {
		t.Fatalf("plain-text settings with a key set: %+v %v", s, err)
	}
	sealed := billing.Settings{APIKey: "sk_test_sealed000key2222", WebhookSecret: "whsec_sealed", Mode: billing.ModeMeterEvents}
	if _, err := billing.SaveSettings(ctx, st, sl, sealed, now); err != nil {
		t.Fatal(err)
	}
	es, err := st.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamBillingSettings, Key: "00000002"})
	if err != nil || len(es) != 1 {
		t.Fatalf("version 2: %v %v", es, err)
	}
	if body := es[0].Body; strings.Contains(body, "sealed000key") || strings.Contains(body, "whsec_sealed") || strings.Count(body, "sealed:v1:") != 2 {
		t.Fatalf("stored settings show a secret: %s", body)
	}
	if s, err := billing.LoadSettings(ctx, st, sl); err != nil || s.APIKey != sealed.APIKey || s.WebhookSecret != sealed.WebhookSecret || s.Version != 2 {
		t.Fatalf("sealed settings with their key: %+v %v", s, err)
	}
	for _, c := range []struct {
		name string
		sl   *billing.Sealer
		want string
	}{
		{"no key", nil, "is not set here"},
		{"another key", sealer(t, otherKey), "is not the key"},
	} {
		s, err := billing.LoadSettings(ctx, st, c.sl)
		if !errors.Is(err, billing.ErrSecretKey) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: error %v, want ErrSecretKey saying %q", c.name, err, c.want)
		}
		if s == nil || s.APIKey != "" || s.WebhookSecret != "" || s.Mode != billing.ModeMeterEvents {
			t.Fatalf("%s: settings %+v, want them without their secrets", c.name, s)
		}
	}
	if _, err := billing.NewSealer("short"); !errors.Is(err, billing.ErrSecretKey) || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("a short key: %v", err)
	}

	// A sealed value moved to the other field does not open.
	swapped := strings.Replace(strings.Replace(es[0].Body, `"api_key":`, `"x":`, 1), `"webhook_secret":`, `"api_key":`, 1)
	swapped = strings.Replace(strings.Replace(swapped, `"x":`, `"webhook_secret":`, 1), `"version":2`, `"version":3`, 1)
	if err := st.AppendJournal(ctx, storage.JournalEntry{Stream: storage.StreamBillingSettings, Key: "00000003", At: now, Body: swapped}); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.LoadSettings(ctx, st, sl); !errors.Is(err, billing.ErrSecretKey) {
		t.Fatalf("swapped sealed fields opened: %v", err)
	}
}

// The whole flow with sealed secrets: the API saves them sealed and the
// worker bills with them, with the key each was given at start (the
// environment is not read again).
func TestSealedSettingsBill(t *testing.T) {
	t.Setenv(billing.SecretKeyEnv, otherKey)
	w := newWorldSealed(t, open(t, "duckdb://"+t.TempDir()+"/m.duckdb"), billing.ModeUsageRecords, false, sealer(t, sealKey))
	items, want := setUp(t, w, billing.ModeUsageRecords)
	settle(t, w.worker(), 3)
	for _, co := range []string{"acme", "globex"} {
		if got, exp := w.billed(billing.ModeUsageRecords, items, co), want(co); got != exp || exp == 0 {
			t.Fatalf("Stripe bills %s %d, the backtest says %d", co, got, exp)
		}
	}
	es, err := w.st.JournalEntries(context.Background(), storage.JournalQuery{Stream: storage.StreamBillingSettings})
	if err != nil || len(es) == 0 || strings.Contains(es[len(es)-1].Body, "sk_test_fake0000key1234") {
		t.Fatalf("settings stored as %v (%v)", es, err)
	}
}

// Governance reads the customer id source of sealed settings without the
// key; a store that fails to answer is an error, not the default source.
func TestCustomerIDSourceWithoutTheKey(t *testing.T) {
	ctx := context.Background()
	st := open(t, "duckdb://"+t.TempDir()+"/m.duckdb")
	if src, err := billing.CustomerIDSource(ctx, st); err != nil || src != stripestate.DefaultSource {
		t.Fatalf("before any settings: %q %v", src, err)
	}
	s := billing.Settings{APIKey: "sk_test_sealed000key2222", WebhookSecret: "whsec_sealed", CustomerIDSource: "metadata.tenant"}
	if _, err := billing.SaveSettings(ctx, st, sealer(t, sealKey), s, time.Now()); err != nil {
		t.Fatal(err)
	}
	if src, err := billing.CustomerIDSource(ctx, st); err != nil || src != "metadata.tenant" {
		t.Fatalf("sealed settings, no key: %q %v", src, err)
	}
	if _, err := billing.CustomerIDSource(ctx, failingReads{st}); err == nil {
		t.Fatal("a failed read gave a source")
	}
}

// failingReads fails the journal's reads (fault injection).
type failingReads struct{ storage.Journal }

func (failingReads) JournalEntries(context.Context, storage.JournalQuery) ([]storage.JournalEntry, error) {
	return nil, errors.New("disk on fire")
}
