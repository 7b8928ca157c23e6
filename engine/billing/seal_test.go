package billing_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/storage"
)

const (
	sealKey  = "0123456789abcdef0123456789abcdef-seal"
	otherKey = "fedcba9876543210fedcba9876543210-other"
)

// With METERD_SECRET_KEY set, the stored settings hold neither secret;
// they open with the same key only, and plain-text versions still read.
func TestSealedSettings(t *testing.T) {
	ctx := context.Background()
	st := open(t, "duckdb://"+t.TempDir()+"/m.duckdb")
	now := time.Now()
	plain := billing.Settings{APIKey: "sk_test_plain0000key1111", WebhookSecret: "whsec_plain", Mode: billing.ModeUsageRecords}
	if _, err := billing.SaveSettings(ctx, st, plain, now); err != nil {
		t.Fatal(err)
	}
	t.Setenv(billing.SecretKeyEnv, sealKey)
	if s, err := billing.LoadSettings(ctx, st); err != nil || s.APIKey != plain.APIKey || s.WebhookSecret != plain.WebhookSecret {
		t.Fatalf("plain-text settings with a key set: %+v %v", s, err)
	}
	sealed := billing.Settings{APIKey: "sk_test_sealed000key2222", WebhookSecret: "whsec_sealed", Mode: billing.ModeMeterEvents}
	if _, err := billing.SaveSettings(ctx, st, sealed, now); err != nil {
		t.Fatal(err)
	}
	es, err := st.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamBillingSettings, Key: "00000002"})
	if err != nil || len(es) != 1 {
		t.Fatalf("version 2: %v %v", es, err)
	}
	if body := es[0].Body; strings.Contains(body, "sealed000key") || strings.Contains(body, "whsec_sealed") || strings.Count(body, "sealed:v1:") != 2 {
		t.Fatalf("stored settings show a secret: %s", body)
	}
	if s, err := billing.LoadSettings(ctx, st); err != nil || s.APIKey != sealed.APIKey || s.WebhookSecret != sealed.WebhookSecret || s.Version != 2 {
		t.Fatalf("sealed settings with their key: %+v %v", s, err)
	}
	for _, c := range []struct{ name, key, want string }{
		{"no key", "", "is not set here"},
		{"another key", otherKey, "is not the key"},
		{"a short key", "short", "at least 32"},
	} {
		t.Setenv(billing.SecretKeyEnv, c.key)
		s, err := billing.LoadSettings(ctx, st)
		if !errors.Is(err, billing.ErrSecretKey) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: error %v, want ErrSecretKey saying %q", c.name, err, c.want)
		}
		if c.key != "short" && (s == nil || s.APIKey != "" || s.WebhookSecret != "" || s.Mode != billing.ModeMeterEvents) {
			t.Fatalf("%s: settings %+v, want them without their secrets", c.name, s)
		}
	}
	if err := billing.CheckSecretKey(); err == nil {
		t.Fatal("CheckSecretKey accepted a short key")
	}

	// A sealed value moved to the other field does not open.
	t.Setenv(billing.SecretKeyEnv, sealKey)
	swapped := strings.Replace(strings.Replace(es[0].Body, `"api_key":`, `"x":`, 1), `"webhook_secret":`, `"api_key":`, 1)
	swapped = strings.Replace(strings.Replace(swapped, `"x":`, `"webhook_secret":`, 1), `"version":2`, `"version":3`, 1)
	if err := st.AppendJournal(ctx, storage.JournalEntry{Stream: storage.StreamBillingSettings, Key: "00000003", At: now, Body: swapped}); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.LoadSettings(ctx, st); !errors.Is(err, billing.ErrSecretKey) {
		t.Fatalf("swapped sealed fields opened: %v", err)
	}
}

// The whole flow with sealed secrets: the API saves them sealed and the
// worker bills with them.
func TestSealedSettingsBill(t *testing.T) {
	t.Setenv(billing.SecretKeyEnv, sealKey)
	w := newWorld(t, open(t, "duckdb://"+t.TempDir()+"/m.duckdb"), billing.ModeUsageRecords)
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
