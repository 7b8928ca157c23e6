// Package billing reports meter usage to Stripe: the settings, a
// rate-limited, retrying Stripe client, the append-only report ledger,
// the worker that computes each customer's usage with the backtest engine
// and reports it exactly once (docs/billing.md), and the Service the
// API's billing handlers call (docs/architecture.md, "Billing").
package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/storage"
)

// Reporting modes.
const (
	// ModeMeterEvents sends Billing Meter events (/v1/billing/meter_events),
	// what prices created on new Stripe accounts need. The default.
	ModeMeterEvents = "meter_events"
	// ModeUsageRecords sets usage records on subscription items (legacy
	// metered prices, aggregate_usage=sum).
	ModeUsageRecords = "usage_records"
)

// DefaultAPIBase is Stripe's API.
const DefaultAPIBase = "https://api.stripe.com"

// DefaultRateLimit is the client's requests per second: well under
// Stripe's 25/s in test mode (100/s live), leaving room for the user's own
// calls on the same account.
const DefaultRateLimit = 10

// Settings configure the Stripe integration. Each change is a new version
// in the journal; the latest applies.
type Settings struct {
	Version          int       `json:"version"`
	APIKey           string    `json:"api_key"`
	WebhookSecret    string    `json:"webhook_secret"`
	Mode             string    `json:"mode"`
	CustomerIDSource string    `json:"customer_id_source"`
	APIBase          string    `json:"api_base"`
	RateLimit        float64   `json:"rate_limit"` // requests per second
	UpdatedAt        time.Time `json:"updated_at"`
	UpdatedBy        string    `json:"updated_by"`
}

// Normalize fills defaults and validates: an invalid setting is a
// fault.Error naming it.
func (s *Settings) Normalize() error {
	if s.Mode == "" {
		s.Mode = ModeMeterEvents
	}
	if s.CustomerIDSource == "" {
		s.CustomerIDSource = stripestate.DefaultSource
	}
	if s.APIBase == "" {
		s.APIBase = DefaultAPIBase
	}
	s.APIBase = strings.TrimRight(s.APIBase, "/")
	if s.RateLimit == 0 {
		s.RateLimit = DefaultRateLimit
	}
	switch {
	case s.APIKey == "":
		return fault.Invalid("invalid_value", "api_key", "api_key is required: a Stripe secret key (sk_test_..., sk_live_...) or restricted key (rk_...)")
	case !strings.HasPrefix(s.APIKey, "sk_") && !strings.HasPrefix(s.APIKey, "rk_"):
		return fault.Invalid("invalid_value", "api_key", "api_key must be a Stripe secret key (sk_...) or restricted key (rk_...), not a publishable key")
	case s.WebhookSecret != "" && !strings.HasPrefix(s.WebhookSecret, "whsec_"):
		return fault.Invalid("invalid_value", "webhook_secret", "webhook_secret must be the endpoint's signing secret (whsec_...)")
	case s.Mode != ModeMeterEvents && s.Mode != ModeUsageRecords:
		return fault.Invalid("invalid_value", "mode", fmt.Sprintf("mode must be %s or %s, got %q", ModeMeterEvents, ModeUsageRecords, s.Mode))
	case !stripestate.ValidSource(s.CustomerIDSource):
		return fault.Invalid("invalid_value", "customer_id_source", "customer_id_source must be metadata.KEY (the customer's metadata, default metadata.company_id), customer_id, or subscription.metadata.KEY")
	case s.RateLimit < 0 || s.RateLimit > 100:
		return fault.Invalid("invalid_value", "rate_limit", "rate_limit must be between 0 and 100 requests per second (Stripe allows 25/s in test mode, 100/s live)")
	}
	u, err := url.Parse(s.APIBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fault.Invalid("invalid_value", "api_base", "api_base must be an http(s) URL without a path, e.g. https://api.stripe.com or http://127.0.0.1:12111 (stripe-mock)")
	}
	return nil
}

// Public is the settings as the API shows them: the key never in full.
type Public struct {
	Version          int       `json:"version"`
	APIKeyLast4      string    `json:"api_key_last4"`
	Livemode         bool      `json:"livemode"`
	WebhookSecretSet bool      `json:"webhook_secret_set"`
	Mode             string    `json:"mode"`
	CustomerIDSource string    `json:"customer_id_source"`
	APIBase          string    `json:"api_base"`
	RateLimit        float64   `json:"rate_limit"`
	UpdatedAt        time.Time `json:"updated_at"`
	UpdatedBy        string    `json:"updated_by"`
}

// Public redacts the secrets: only the key's last 4 characters, and none
// of a key too short for 4 to be a small part of it.
func (s Settings) Public() Public {
	var last4 string
	if len(s.APIKey) > 8 {
		last4 = s.APIKey[len(s.APIKey)-4:]
	}
	return Public{Version: s.Version, APIKeyLast4: last4, Livemode: strings.Contains(s.APIKey, "_live_"),
		WebhookSecretSet: s.WebhookSecret != "", Mode: s.Mode, CustomerIDSource: s.CustomerIDSource,
		APIBase: s.APIBase, RateLimit: s.RateLimit, UpdatedAt: s.UpdatedAt, UpdatedBy: s.UpdatedBy}
}

// LoadSettings returns the latest settings, nil when never set, with their
// secrets opened by sl. When they are sealed with a key sl does not hold
// (see SecretKeyEnv), it returns them cleared along with an ErrSecretKey
// error.
func LoadSettings(ctx context.Context, j storage.Journal, sl *Sealer) (*Settings, error) {
	latest, err := latestSettings(ctx, j)
	if err != nil || latest == nil {
		return latest, err
	}
	var errs []error
	for _, f := range []struct {
		name  string
		value *string
	}{{"api_key", &latest.APIKey}, {"webhook_secret", &latest.WebhookSecret}} {
		v, err := sl.open(f.name, *f.value)
		*f.value = v
		errs = append(errs, err)
	}
	return latest, errors.Join(errs...)
}

// CustomerIDSource is the stored settings' customer id source (the
// default before any settings), read without opening the secrets:
// governance needs only it, in processes that may lack the secret key.
func CustomerIDSource(ctx context.Context, j storage.Journal) (string, error) {
	latest, err := latestSettings(ctx, j)
	if err != nil || latest == nil || latest.CustomerIDSource == "" {
		return stripestate.DefaultSource, err
	}
	return latest.CustomerIDSource, nil
}

// latestSettings is the latest settings version as stored.
func latestSettings(ctx context.Context, j storage.Journal) (*Settings, error) {
	es, err := j.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamBillingSettings})
	if err != nil {
		return nil, err
	}
	var latest *Settings
	for _, e := range es {
		var s Settings
		if err := json.Unmarshal([]byte(e.Body), &s); err != nil {
			return nil, fmt.Errorf("billing settings %s: %w", e.Key, err)
		}
		if latest == nil || s.Version > latest.Version {
			latest = &s
		}
	}
	return latest, nil
}

// SaveSettings appends s as the next version (callers serialise saves; a
// racing save is refused with storage.ErrConflict). Its secrets are
// sealed by sl (in plain text when it is nil).
func SaveSettings(ctx context.Context, j storage.Journal, sl *Sealer, s Settings, now time.Time) (Settings, error) {
	prev, err := latestSettings(ctx, j)
	if err != nil {
		return s, err
	}
	s.Version = 1
	if prev != nil {
		s.Version = prev.Version + 1
	}
	s.UpdatedAt = now.UTC().Truncate(time.Millisecond)
	stored := s
	stored.APIKey, stored.WebhookSecret = sl.seal("api_key", s.APIKey), sl.seal("webhook_secret", s.WebhookSecret)
	body, _ := json.Marshal(stored)
	err = j.AppendJournal(ctx, storage.JournalEntry{Stream: storage.StreamBillingSettings,
		Key: fmt.Sprintf("%08d", s.Version), At: s.UpdatedAt, Body: string(body)})
	return s, err
}
