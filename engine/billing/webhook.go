package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/storage"
)

// Delivery is what became of a webhook delivery: its event's type (known
// once the signature verified) and whether the event was stored before.
type Delivery struct {
	Type      string
	Duplicate bool
}

// ReceiveWebhook verifies a delivery's Stripe-Signature with the
// configured signing secret and stores its event append-only, once per
// event id. Events of any API version are accepted: only the few fields
// stripestate decodes are read (docs/billing.md).
func (s *Service) ReceiveWebhook(ctx context.Context, payload []byte, signature string) (Delivery, error) {
	st, err := LoadSettings(ctx, s.Store, s.Sealer)
	if err != nil {
		return Delivery{}, err
	}
	if st == nil || st.WebhookSecret == "" {
		return Delivery{}, ErrNoWebhookSecret
	}
	if err := checkSignature(payload, signature, st.WebhookSecret, time.Now()); err != nil {
		return Delivery{}, err
	}
	ev, err := stripestate.Decode(payload)
	if err != nil {
		return Delivery{}, refusal(ErrInvalidEvent, http.StatusBadRequest, "invalid_event", "", err.Error(), err)
	}
	d := Delivery{Type: ev.Type}
	err = s.Store.AppendJournal(ctx, storage.JournalEntry{Stream: storage.StreamStripeEvents,
		Key: ev.ID, At: s.now().UTC(), Body: string(payload)})
	switch {
	case errors.Is(err, storage.ErrConflict):
		d.Duplicate = true
	case err != nil:
		return d, kinded{ErrNotSaved, err}
	}
	return d, nil
}

// checkSignature verifies a delivery's Stripe-Signature: a v1 HMAC of
// the body with the signing secret, under a timestamp within 5 minutes of
// now either way. stripe-go refuses only timestamps too old; one from the
// future would keep a captured delivery replayable until then. Only the
// signature is checked here: the body is decoded after, so that a signed
// body that is not JSON gets invalid_json, not invalid_signature. now is
// the wall clock (the signer's, Stripe's), as stripe-go uses.
func checkSignature(payload []byte, header, secret string, now time.Time) error {
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
	return refusal(ErrBadSignature, http.StatusBadRequest, "invalid_signature", "Stripe-Signature", ErrBadSignature.Error()+": "+why, nil)
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
