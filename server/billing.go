package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage"
)

// billingMu serialises settings changes (each is a new journal version).
var billingMu sync.Mutex

func (s *Server) billingRoutes(e *echo.Echo) {
	adm := s.adminAuth
	e.PUT("/v1/billing/stripe", s.putStripeSettings, adm)
	e.GET("/v1/billing/stripe", s.getStripeSettings, adm)
	e.POST("/v1/billing/stripe/check", s.checkStripe, adm)
	e.GET("/v1/billing/state", s.billingState, adm)
	e.GET("/v1/billing/workers", s.billingWorkers, adm)
	e.GET("/v1/billing/reports", s.billingReports, adm)
	e.GET("/v1/billing/customers/:id/reports", s.billingReports, adm)
	// Stripe calls the webhook: the signature is its credential.
	e.POST("/v1/stripe/webhook", s.stripeWebhook)
}

// stripeSettingsBody is PUT /v1/billing/stripe's body: omitted secrets
// keep their stored value, so a form can change the mode without
// re-entering the key.
type stripeSettingsBody struct {
	APIKey           *string  `json:"api_key"`
	WebhookSecret    *string  `json:"webhook_secret"`
	Mode             *string  `json:"mode"`
	CustomerIDSource *string  `json:"customer_id_source"`
	APIBase          *string  `json:"api_base"`
	RateLimit        *float64 `json:"rate_limit"`
}

type settingsJSON struct {
	billing.Public
	WebhookPath string `json:"webhook_path"`
}

func renderSettings(st billing.Settings) settingsJSON {
	return settingsJSON{Public: st.Public(), WebhookPath: "/v1/stripe/webhook"}
}

func (s *Server) putStripeSettings(c echo.Context) error {
	var b stripeSettingsBody
	if err := s.decodeJSON(c, &b); err != nil {
		return err
	}
	billingMu.Lock()
	defer billingMu.Unlock()
	ctx := c.Request().Context()
	prev, err := billing.LoadSettings(ctx, s.cfg.Store)
	// Secrets sealed with a lost key can be replaced by entering both.
	recovering := errors.Is(err, billing.ErrSecretKey) && b.APIKey != nil && b.WebhookSecret != nil
	if err != nil && !recovering {
		return readFailed(err)
	}
	var st billing.Settings
	if prev != nil {
		st = *prev
	}
	for _, f := range []struct {
		dst *string
		src *string
	}{{&st.APIKey, b.APIKey}, {&st.WebhookSecret, b.WebhookSecret}, {&st.Mode, b.Mode}, {&st.CustomerIDSource, b.CustomerIDSource}, {&st.APIBase, b.APIBase}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if b.RateLimit != nil {
		st.RateLimit = *b.RateLimit
	}
	st.UpdatedBy = actorOr(actor(c))
	if err := st.Normalize(); err != nil {
		return err
	}
	// The stored key goes only to the host it was entered for: whoever
	// may change the settings must not be able to have it sent elsewhere.
	if prev != nil && b.APIKey == nil && st.APIBase != prev.APIBase {
		return fault.Invalid(wire.CodeMissingField, "api_key", fmt.Sprintf("api_key is required to change api_base (from %s to %s): "+
			"the stored key is only ever sent to the API it was entered for", prev.APIBase, st.APIBase))
	}
	st, err = billing.SaveSettings(ctx, s.cfg.Store, st, s.cfg.Now())
	if err != nil {
		return writeFailed(err)
	}
	return c.JSON(http.StatusOK, renderSettings(st))
}

func actorOr(a string) string {
	if a == "" {
		return "admin"
	}
	return a
}

func (s *Server) loadStripeSettings(c echo.Context) (*billing.Settings, error) {
	st, err := billing.LoadSettings(c.Request().Context(), s.cfg.Store)
	if err != nil {
		return nil, readFailed(err)
	}
	if st == nil {
		return nil, fault.New(http.StatusNotFound, "not_configured", "Stripe is not configured yet: PUT /v1/billing/stripe with api_key and webhook_secret")
	}
	return st, nil
}

func (s *Server) getStripeSettings(c echo.Context) error {
	st, err := s.loadStripeSettings(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, renderSettings(*st))
}

// checkStripe verifies the key with a harmless read (the balance).
func (s *Server) checkStripe(c echo.Context) error {
	st, err := s.loadStripeSettings(c)
	if err != nil {
		return err
	}
	bal, err := billing.NewObservedAPI(*st, 15*time.Second, s.metrics).Balance.Get(nil)
	if err != nil {
		return stripeCheckFailed(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "livemode": bal.Livemode, "api_base": st.APIBase, "mode": st.Mode})
}

// stripeCheckFailed answers a failed key check: Stripe's refusal in its
// own words (what the check is for: "Invalid API Key provided: ..."), or,
// when Stripe did not answer, that it could not be reached (what the
// library says is logged, not answered).
func stripeCheckFailed(err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return &fault.Error{Status: http.StatusBadGateway, Code: "stripe_error", Cause: err,
			Message: "Stripe could not be reached for the check (GET /v1/balance); the log has why, under this answer's request id"}
	}
	msg := fmt.Sprintf("Stripe refused the check (GET /v1/balance): HTTP %d", se.HTTPStatusCode)
	if se.Msg != "" {
		msg += ": " + se.Msg
	}
	return fault.New(http.StatusBadGateway, "stripe_error", msg)
}

// stripeWebhook verifies Stripe-Signature and stores the event append-only,
// once per event id. Events of any API version are accepted: only the few
// fields stripestate decodes are read (docs/billing.md). Each delivery is
// counted by type and result (GET /metrics).
func (s *Server) stripeWebhook(c echo.Context) error {
	typ, duplicate, err := s.receiveWebhook(c)
	switch {
	case err != nil:
		fe, _ := answerOf(err, "")
		s.metrics.Webhook(typ, fe.Code)
		return err
	case duplicate:
		s.metrics.Webhook(typ, "duplicate")
	default:
		s.metrics.Webhook(typ, "received")
	}
	return c.JSON(http.StatusOK, map[string]any{"received": true, "duplicate": duplicate})
}

// receiveWebhook stores a verified delivery; typ is its event's type once
// the signature verified.
func (s *Server) receiveWebhook(c echo.Context) (typ string, duplicate bool, err error) {
	payload, done, err := s.smallBody(c, 1<<20)
	if err != nil {
		return "", false, err
	}
	defer done()
	st, err := billing.LoadSettings(c.Request().Context(), s.cfg.Store)
	if err != nil {
		return "", false, readFailed(err)
	}
	if st == nil || st.WebhookSecret == "" {
		return "", false, fault.New(http.StatusServiceUnavailable, "not_configured", "no webhook signing secret is configured: PUT /v1/billing/stripe with webhook_secret")
	}
	if err := checkStripeSignature(payload, c.Request().Header.Get("Stripe-Signature"), st.WebhookSecret, time.Now()); err != nil {
		return "", false, err
	}
	ev, err := stripestate.Decode(payload)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		off := se.Offset // after the byte at fault, or the end of the body
		if strings.HasPrefix(se.Error(), "invalid character") {
			off--
		}
		return "", false, wire.MalformedJSON(payload, off, "a Stripe event is a JSON object: "+se.Error())
	case err != nil:
		return "", false, fault.Invalid("invalid_event", "", err.Error())
	}
	err = s.cfg.Store.AppendJournal(c.Request().Context(), storage.JournalEntry{Stream: storage.StreamStripeEvents,
		Key: ev.ID, At: s.cfg.Now().UTC(), Body: string(payload)})
	switch {
	case errors.Is(err, storage.ErrConflict):
		return ev.Type, true, nil
	case err != nil:
		return ev.Type, false, writeFailed(err)
	}
	// Invoice and subscription changes move governance: the agents get
	// the new membership with the next ingestion answer's ETag.
	s.kick(c.Request().Context())
	return ev.Type, false, nil
}

// checkStripeSignature verifies a delivery's Stripe-Signature: a v1 HMAC
// of the body with the signing secret, under a timestamp within 5 minutes
// of now either way. stripe-go refuses only timestamps too old; one from
// the future would keep a captured delivery replayable until then. Only
// the signature is checked here: the body is decoded after, so that a
// signed body that is not JSON gets invalid_json, not invalid_signature.
// now is the wall clock (the signer's, Stripe's), as stripe-go uses.
func checkStripeSignature(payload []byte, header, secret string, now time.Time) error {
	tolerance := webhook.DefaultTolerance
	var why string
	switch err := webhook.ValidatePayloadWithTolerance(payload, header, secret, tolerance); {
	case errors.Is(err, webhook.ErrNotSigned):
		why = "the Stripe-Signature header is missing"
	case errors.Is(err, webhook.ErrInvalidHeader):
		why = "the Stripe-Signature header is not t=TIMESTAMP,v1=SIGNATURE"
	case errors.Is(err, webhook.ErrTooOld):
		why = fmt.Sprintf("its timestamp is more than %v old (a replayed delivery, or this server's clock is ahead)", tolerance)
	case err != nil:
		why = "no v1 signature matches (wrong signing secret, or the body was altered)"
	default:
		if ahead := signedAt(header).Sub(now); ahead > tolerance {
			why = fmt.Sprintf("its timestamp is %v ahead of this server's clock, more than %v (a forged delivery, or this server's clock is behind)", ahead.Round(time.Second), tolerance)
		}
	}
	if why == "" {
		return nil
	}
	return fault.Invalid("invalid_signature", "Stripe-Signature", "the Stripe-Signature header does not verify: "+why)
}

// signedAt is the t= timestamp of a Stripe-Signature header that verified.
func signedAt(header string) time.Time {
	for _, pair := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(pair, "t="); ok {
			if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
				return time.Unix(sec, 0)
			}
		}
	}
	return time.Time{}
}

// billingState is the folded Stripe state: customers, subscriptions and
// invoices, and the customers' unpaid invoices now.
func (s *Server) billingState(c echo.Context) error {
	evs, err := s.cfg.Store.JournalEntries(c.Request().Context(), storage.JournalQuery{Stream: storage.StreamStripeEvents})
	if err != nil {
		return readFailed(err)
	}
	st := stripestate.Fold(evs)
	return c.JSON(http.StatusOK, struct {
		*stripestate.State
		UnpaidInvoices map[string]stripestate.InvoiceSummary `json:"unpaid_invoices"`
	}{st, st.UnpaidInvoices(s.cfg.Now())})
}

// billingWorkers lists the billing workers live on this store, the one
// that runs the cycles first; none means nothing reports to Stripe.
func (s *Server) billingWorkers(c echo.Context) error {
	live, err := billing.LiveWorkers(c.Request().Context(), s.cfg.Store, s.cfg.Now(), s.cfg.BillingInterval)
	if err != nil {
		return readFailed(err)
	}
	type workerJSON struct {
		Worker   string    `json:"worker"`
		LastSeen time.Time `json:"last_seen"`
		Leader   bool      `json:"leader"`
	}
	out := struct {
		IntervalSeconds float64      `json:"interval_seconds"`
		Workers         []workerJSON `json:"workers"`
	}{IntervalSeconds: s.cfg.BillingInterval.Seconds(), Workers: []workerJSON{}}
	for i, w := range live {
		out.Workers = append(out.Workers, workerJSON{Worker: w.Worker, LastSeen: w.At, Leader: i == 0})
	}
	return c.JSON(http.StatusOK, out)
}

// billingReports lists the ledger, newest first, filtered by customer,
// meter and status (and the customer of the path): every entry, or with
// latest=true each report once at its latest entry, with its history.
func (s *Server) billingReports(c echo.Context) error {
	q := c.QueryParams()
	customer := q.Get("customer")
	if id := c.Param("id"); id != "" {
		customer = id
	}
	limit := 1000
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			return fault.Invalid("invalid_value", "limit", "limit must be between 1 and 10000")
		}
		limit = n
	}
	if st := q.Get("status"); st != "" && !billing.ValidStatus(st) {
		return fault.Invalid("invalid_value", "status", "status must be one of "+strings.Join(billing.Statuses, ", "))
	}
	latest := false
	if l := q.Get("latest"); l != "" {
		b, err := strconv.ParseBool(l)
		if err != nil {
			return fault.Invalid("invalid_value", "latest", "latest must be true or false")
		}
		latest = b
	}
	var from time.Time
	if f := q.Get("from"); f != "" {
		t, err := time.Parse(time.RFC3339, f)
		if err != nil {
			return fault.Invalid("invalid_value", "from", "from must be an RFC 3339 time, e.g. 2026-11-01T00:00:00Z")
		}
		from = t
	}
	rs, err := billing.LoadReports(c.Request().Context(), s.cfg.Store, from)
	if err != nil {
		return readFailed(err)
	}
	keep := func(r billing.Report) bool {
		return (customer == "" || r.Customer == customer) && (q.Get("meter") == "" || r.MeterID == q.Get("meter")) &&
			(q.Get("status") == "" || r.Status == q.Get("status"))
	}
	counts := map[string]int{}
	if latest {
		out := []billing.ReportState{}
		for _, r := range billing.Latest(rs) {
			if keep(r.Report) {
				counts[r.Status]++
				if len(out) < limit {
					out = append(out, r)
				}
			}
		}
		return c.JSON(http.StatusOK, map[string]any{"reports": out, "counts": counts})
	}
	out := []billing.Report{}
	for i := len(rs) - 1; i >= 0; i-- {
		if r := rs[i]; keep(r) {
			counts[r.Status]++
			if len(out) < limit {
				out = append(out, r)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].AttemptAt.After(out[j].AttemptAt) })
	return c.JSON(http.StatusOK, map[string]any{"reports": out, "counts": counts})
}
