package stripestate

import (
	"fmt"
	"testing"
)

func ev(id, typ string, created int64, obj string) Event {
	e, err := Decode([]byte(fmt.Sprintf(`{"id":%q,"type":%q,"created":%d,"api_version":"2025-03-31.basil","data":{"object":%s}}`, id, typ, created, obj)))
	if err != nil {
		panic(err)
	}
	return e
}

func sub(status string, start int64) string {
	return fmt.Sprintf(`{"id":"sub_1","object":"subscription","customer":{"id":"cus_1"},"status":%q,"metadata":{"co":"m"},
		"items":{"data":[{"id":"si_1","price":{"id":"price_1"},"current_period_start":%d,"current_period_end":%d}]}}`, status, start, start+100)
}

// A late, older event never overwrites newer state; ties keep an ended
// subscription ended; periods are read from items (newer API versions).
func TestOrdering(t *testing.T) {
	s := New()
	s.Apply(ev("e2", "customer.subscription.updated", 20, sub("past_due", 1000)))
	s.Apply(ev("e1", "customer.subscription.created", 10, sub("active", 900))) // late and older
	got := s.Subscriptions["sub_1"]
	if got.Status != "past_due" || got.Current.Start.Unix() != 1000 || got.Customer != "cus_1" || len(got.Periods) != 2 {
		t.Fatalf("after a late older event: %+v", got)
	}
	s.Apply(ev("e3", "customer.subscription.deleted", 30, sub("canceled", 1000)))
	s.Apply(ev("e4", "customer.subscription.updated", 30, sub("active", 1000))) // same second
	if got := s.Subscriptions["sub_1"]; got.Status != "canceled" || got.Active() {
		t.Fatalf("a same-second update revived a canceled subscription: %+v", got)
	}
	s.Apply(ev("c1", "customer.updated", 50, `{"id":"cus_1","object":"customer","metadata":{"company_id":"acme"}}`))
	s.Apply(ev("c0", "customer.created", 40, `{"id":"cus_1","object":"customer","metadata":{"company_id":"old"}}`))
	sb := s.Subscriptions["sub_1"]
	for src, want := range map[string]string{"": "acme", "metadata.company_id": "acme", "customer_id": "cus_1", "subscription.metadata.co": "m", "metadata.none": ""} {
		if got := s.BillingKey(sb, src); got != want {
			t.Errorf("BillingKey(%q) = %q, want %q", src, got, want)
		}
	}
	s.Apply(ev("c2", "customer.deleted", 60, `{"id":"cus_1","object":"customer","deleted":true}`))
	if s.BillingKey(sb, "") != "" {
		t.Fatal("a deleted customer still maps")
	}
	for _, bad := range []string{`{}`, `{"id":"x","type":"t"}`, `not json`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) accepted", bad)
		}
	}
}

// An ended subscription keeps when it ended: ended_at, else canceled_at,
// else the time of the event that showed it ended; one that has not ended
// has no end, even with a cancellation requested (canceled_at on an
// active subscription that cancels at the period end).
func TestEndedAt(t *testing.T) {
	withTimes := func(status, times string) string {
		return `{"id":"sub_1","object":"subscription","customer":"cus_1","status":"` + status + `",` + times +
			`"current_period_start":1000,"current_period_end":2000,"items":{"data":[{"id":"si_1","price":{"id":"price_1"}}]}}`
	}
	for _, c := range []struct {
		typ, obj string
		end      int64
		ended    bool
	}{
		{"customer.subscription.updated", withTimes("active", `"canceled_at":1200,`), 0, false},
		{"customer.subscription.deleted", withTimes("canceled", `"canceled_at":1200,"ended_at":1300,`), 1300, true},
		{"customer.subscription.deleted", withTimes("canceled", `"canceled_at":1200,`), 1200, true},
		{"customer.subscription.deleted", withTimes("active", ``), 1500, true},
		{"customer.subscription.updated", withTimes("incomplete_expired", `"ended_at":1100,`), 1100, true},
	} {
		s := New()
		s.Apply(ev("e1", c.typ, 1500, c.obj))
		end, ended := s.Subscriptions["sub_1"].Ended()
		if ended != c.ended || ended && end.Unix() != c.end || !ended && !end.IsZero() {
			t.Errorf("%s %s: ended %v at %v, want %v at %d", c.typ, c.obj, ended, end, c.ended, c.end)
		}
	}
}
