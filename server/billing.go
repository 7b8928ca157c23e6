package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/server/wire"
)

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

type settingsJSON struct {
	billing.Public
	WebhookPath string `json:"webhook_path"`
}

func renderSettings(st billing.Settings) settingsJSON {
	return settingsJSON{Public: st.Public(), WebhookPath: "/v1/stripe/webhook"}
}

func (s *Server) putStripeSettings(c echo.Context) error {
	var ch billing.SettingsChange
	if err := s.decodeJSON(c, &ch); err != nil {
		return err
	}
	st, err := s.billing.ChangeSettings(c.Request().Context(), ch, actor(c))
	if err != nil {
		return billingFailed(err)
	}
	return c.JSON(http.StatusOK, renderSettings(st))
}

func (s *Server) getStripeSettings(c echo.Context) error {
	st, err := s.billing.Settings(c.Request().Context())
	if err != nil {
		return billingFailed(err)
	}
	return c.JSON(http.StatusOK, renderSettings(st))
}

// checkStripe verifies the key with a harmless read (the balance).
func (s *Server) checkStripe(c echo.Context) error {
	st, livemode, err := s.billing.CheckKey(c.Request().Context())
	if err != nil {
		return billingFailed(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "livemode": livemode, "api_base": st.APIBase, "mode": st.Mode})
}

// stripeWebhook takes Stripe's deliveries (billing.Service.ReceiveWebhook).
// Each delivery is counted by type and result (GET /metrics).
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

// receiveWebhook stores a delivery; typ is its event's type once the
// signature verified.
func (s *Server) receiveWebhook(c echo.Context) (typ string, duplicate bool, err error) {
	payload, done, err := s.smallBody(c, 1<<20)
	if err != nil {
		return "", false, err
	}
	defer done()
	d, err := s.billing.ReceiveWebhook(c.Request().Context(), payload, c.Request().Header.Get("Stripe-Signature"))
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		off := se.Offset // after the byte at fault, or the end of the body
		if strings.HasPrefix(se.Error(), "invalid character") {
			off--
		}
		return "", false, wire.MalformedJSON(payload, off, "a Stripe event is a JSON object: "+se.Error())
	case err != nil:
		return d.Type, false, billingFailed(err)
	}
	if !d.Duplicate {
		// Invoice and subscription changes move governance: the agents
		// get the new membership with the next ingestion answer's ETag.
		s.kick(c.Request().Context())
	}
	return d.Type, d.Duplicate, nil
}

// billingState is the folded Stripe state: customers, subscriptions and
// invoices, and the customers' unpaid invoices now.
func (s *Server) billingState(c echo.Context) error {
	st, err := s.billing.State(c.Request().Context())
	if err != nil {
		return billingFailed(err)
	}
	return c.JSON(http.StatusOK, st)
}

// billingFailed marks the billing service's store failures: a failed
// write (billing.ErrNotSaved: nothing was saved) or read. The service's
// refusals are fault errors and answer as themselves.
func billingFailed(err error) error {
	if errors.Is(err, billing.ErrNotSaved) {
		return writeFailed(err)
	}
	return readFailed(err)
}

// billingWorkers lists the billing workers live on this store, the one
// that runs the cycles first; none means nothing reports to Stripe.
func (s *Server) billingWorkers(c echo.Context) error {
	live, err := s.billing.Workers(c.Request().Context())
	if err != nil {
		return billingFailed(err)
	}
	return c.JSON(http.StatusOK, struct {
		IntervalSeconds float64              `json:"interval_seconds"`
		Workers         []billing.LiveWorker `json:"workers"`
	}{s.cfg.BillingInterval.Seconds(), live})
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
	limit := 0 // the service's default
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
	f := billing.ReportFilter{Customer: customer, Meter: q.Get("meter"), Status: q.Get("status"), From: from, Limit: limit}
	var out any
	var counts map[string]int
	var err error
	if latest {
		out, counts, err = s.billing.LatestReports(c.Request().Context(), f)
	} else {
		out, counts, err = s.billing.Reports(c.Request().Context(), f)
	}
	if err != nil {
		return billingFailed(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"reports": out, "counts": counts})
}
