package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// Service is billing as the API offers it: the Stripe settings and the
// key check, Stripe's webhook deliveries (webhook.go), the folded Stripe
// state, the live workers and the report ledger. The handlers in server/
// only parse requests and map its answers and errors.
type Service struct {
	Store    storage.Store
	Now      func() time.Time // time.Now by default
	Interval time.Duration    // between the workers' cycles, to tell the live ones; DefaultInterval by default
	Metrics  *metrics.Set     // records the key check's Stripe request (nil: not recorded)
	Sealer   *Sealer          // opens the Stripe secrets in the settings; nil: stored in plain text

	saving sync.Mutex // serialises settings changes (each is a new journal version)
}

// The Service's refusals are fault errors (engine/fault), answered as
// they are; those below are their kinds, for errors.Is. A failed store
// read is the store's error, a failed write ErrNotSaved's.
var (
	// ErrNoWebhookSecret refuses a delivery while no signing secret is set.
	ErrNoWebhookSecret = fault.New(http.StatusServiceUnavailable, "not_configured", "no webhook signing secret is configured: PUT /v1/billing/stripe with webhook_secret")
	// ErrBadSignature refuses a delivery whose Stripe-Signature does not verify.
	ErrBadSignature = errors.New("the Stripe-Signature header does not verify")
	// ErrInvalidEvent refuses a signed delivery that is not a Stripe
	// event; a body that is not JSON also holds its *json.SyntaxError.
	ErrInvalidEvent = errors.New("billing: not a Stripe event")
	// ErrKeyStaysWithHost refuses a change of api_base that does not
	// enter the key again.
	ErrKeyStaysWithHost = errors.New("api_key is required to change api_base")
	// ErrStripeRefused is Stripe's refusal of the key check, or its
	// silence.
	ErrStripeRefused = errors.New("billing: Stripe refused the key check")
	// ErrNotSaved is a store failure while writing (the reads before it
	// succeeded): nothing was saved.
	ErrNotSaved = errors.New("billing: not saved")
)

// kinded is an error of one of the kinds above, with err's message.
type kinded struct{ kind, err error }

func (e kinded) Error() string   { return e.err.Error() }
func (e kinded) Unwrap() []error { return []error{e.kind, e.err} }

// refusal is a fault error of kind (errors.Is finds it), with what
// failed inside when there is one (errors.As finds it).
func refusal(kind error, status int, code, field, message string, cause error) error {
	var c error = kind
	if cause != nil {
		c = kinded{kind, cause}
	}
	return &fault.Error{Status: status, Code: code, Field: field, Message: message, Cause: c}
}

// checkTimeout bounds the key check: a person waits for its answer.
const checkTimeout = 15 * time.Second

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) interval() time.Duration {
	if s.Interval > 0 {
		return s.Interval
	}
	return DefaultInterval
}

// Settings is the latest Stripe settings; ErrNotConfigured before any.
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	st, err := LoadSettings(ctx, s.Store, s.Sealer)
	switch {
	case err != nil:
		return Settings{}, err
	case st == nil:
		return Settings{}, refusal(ErrNotConfigured, http.StatusNotFound, "not_configured", "",
			"Stripe is not configured yet: PUT /v1/billing/stripe with api_key and webhook_secret", nil)
	}
	return *st, nil
}

// SettingsChange is a change of the Stripe settings (the body of PUT
// /v1/billing/stripe): omitted secrets keep their stored value, so a form
// can change the mode without re-entering the key.
type SettingsChange struct {
	APIKey           *string  `json:"api_key"`
	WebhookSecret    *string  `json:"webhook_secret"`
	Mode             *string  `json:"mode"`
	CustomerIDSource *string  `json:"customer_id_source"`
	APIBase          *string  `json:"api_base"`
	RateLimit        *float64 `json:"rate_limit"`
}

// ChangeSettings saves the stored settings changed by ch as the next
// version, made by the person named by ("admin" when empty).
func (s *Service) ChangeSettings(ctx context.Context, ch SettingsChange, by string) (Settings, error) {
	s.saving.Lock()
	defer s.saving.Unlock()
	prev, err := LoadSettings(ctx, s.Store, s.Sealer)
	// Secrets sealed with a lost key can be replaced by entering both.
	recovering := errors.Is(err, ErrSecretKey) && ch.APIKey != nil && ch.WebhookSecret != nil
	if err != nil && !recovering {
		return Settings{}, err
	}
	var st Settings
	if prev != nil {
		st = *prev
	}
	for _, f := range []struct {
		dst *string
		src *string
	}{{&st.APIKey, ch.APIKey}, {&st.WebhookSecret, ch.WebhookSecret}, {&st.Mode, ch.Mode}, {&st.CustomerIDSource, ch.CustomerIDSource}, {&st.APIBase, ch.APIBase}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if ch.RateLimit != nil {
		st.RateLimit = *ch.RateLimit
	}
	st.UpdatedBy = rules.Actor(by)
	if err := st.Normalize(); err != nil {
		return Settings{}, err
	}
	// The stored key goes only to the host it was entered for: whoever
	// may change the settings must not be able to have it sent elsewhere.
	if prev != nil && ch.APIKey == nil && st.APIBase != prev.APIBase {
		return Settings{}, refusal(ErrKeyStaysWithHost, http.StatusBadRequest, "missing_field", "api_key", fmt.Sprintf("%v (from %s to %s): the stored key is only ever sent to the API it was entered for",
			ErrKeyStaysWithHost, prev.APIBase, st.APIBase), nil)
	}
	if st, err = SaveSettings(ctx, s.Store, s.Sealer, st, s.now()); err != nil {
		return st, kinded{ErrNotSaved, err}
	}
	return st, nil
}

// CheckKey verifies the stored key with a harmless read (the balance),
// saying whether it is a live mode key.
func (s *Service) CheckKey(ctx context.Context) (st Settings, livemode bool, err error) {
	if st, err = s.Settings(ctx); err != nil {
		return st, false, err
	}
	bal, err := NewObservedAPI(st, checkTimeout, s.Metrics).Balance.Get(nil)
	if err != nil {
		return st, false, checkFailed(err)
	}
	return st, bal.Livemode, nil
}

// checkFailed is a failed key check: Stripe's refusal in its own words
// (what the check is for: "Invalid API Key provided: ..."), or, when
// Stripe did not answer, that it could not be reached (what the library
// says is logged, not answered: it names hosts and ports).
func checkFailed(err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return refusal(ErrStripeRefused, http.StatusBadGateway, "stripe_error", "",
			"Stripe could not be reached for the check (GET /v1/balance); the log has why, under this answer's request id", err)
	}
	msg := fmt.Sprintf("Stripe refused the check (GET /v1/balance): HTTP %d", se.HTTPStatusCode)
	if se.Msg != "" {
		msg += ": " + se.Msg
	}
	return refusal(ErrStripeRefused, http.StatusBadGateway, "stripe_error", "", msg, err)
}

// State is the folded Stripe state: customers, subscriptions and
// invoices, and the customers' unpaid invoices now.
type State struct {
	*stripestate.State
	UnpaidInvoices map[string]stripestate.InvoiceSummary `json:"unpaid_invoices"`
}

// State folds the Stripe events stored.
func (s *Service) State(ctx context.Context) (State, error) {
	st, err := stripestate.Load(ctx, s.Store)
	if err != nil {
		return State{}, err
	}
	return State{st, st.UnpaidInvoices(s.now())}, nil
}

// LiveWorker is a billing worker live on the store.
type LiveWorker struct {
	Worker   string    `json:"worker"`
	LastSeen time.Time `json:"last_seen"`
	Leader   bool      `json:"leader"` // the one that runs the cycles
}

// Workers lists the billing workers live on the store, the leader
// first; none means nothing reports to Stripe.
func (s *Service) Workers(ctx context.Context) ([]LiveWorker, error) {
	live, err := LiveWorkers(ctx, s.Store, s.now(), s.interval())
	if err != nil {
		return nil, err
	}
	out := []LiveWorker{}
	for i, w := range live {
		out = append(out, LiveWorker{Worker: w.Worker, LastSeen: w.At, Leader: i == 0})
	}
	return out, nil
}

// ReportFilter selects ledger entries: of a customer, a meter, a status
// (empty: any), written from From on; at most Limit of them (1000 when 0)
// are listed.
type ReportFilter struct {
	Customer, Meter, Status string
	From                    time.Time
	Limit                   int
}

// Reports lists the ledger entries f selects, newest first, and counts
// every one selected (beyond the limit too) by status.
func (s *Service) Reports(ctx context.Context, f ReportFilter) ([]Report, map[string]int, error) {
	rs, err := LoadReports(ctx, s.Store, f.From)
	if err != nil {
		return nil, nil, err
	}
	slices.Reverse(rs)
	out, counts := pick(f, rs, func(r Report) Report { return r })
	sort.SliceStable(out, func(i, j int) bool { return out[i].AttemptAt.After(out[j].AttemptAt) })
	return out, counts, nil
}

// LatestReports is Reports of each report once, at its latest entry,
// with its history.
func (s *Service) LatestReports(ctx context.Context, f ReportFilter) ([]ReportState, map[string]int, error) {
	rs, err := LoadReports(ctx, s.Store, f.From)
	if err != nil {
		return nil, nil, err
	}
	out, counts := pick(f, Latest(rs), func(r ReportState) Report { return r.Report })
	return out, counts, nil
}

// pick keeps the first f.Limit of rs that f selects, counting all it
// selects by status.
func pick[R any](f ReportFilter, rs []R, report func(R) Report) ([]R, map[string]int) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	out, counts := []R{}, map[string]int{}
	for _, x := range rs {
		r := report(x)
		if (f.Customer == "" || r.Customer == f.Customer) && (f.Meter == "" || r.MeterID == f.Meter) && (f.Status == "" || r.Status == f.Status) {
			counts[r.Status]++
			if len(out) < limit {
				out = append(out, x)
			}
		}
	}
	return out, counts
}
