package billing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
)

// A call a governance rule blocked is not billed: the meter's filter does
// not read blocked_by. Here the rule answered 200 with the call's tokens,
// so only the exclusion keeps them off the bill, in both modes, on both
// stores.
func TestBlockedCallsAreNotBilled(t *testing.T) {
	inEveryWorld(t, func(t *testing.T, w *world, mode string) {
		_, items, m := w.subscribed(mode)
		want := w.expected(m, "acme", w.now)
		var blocked []storage.Event
		for i := 0; i < 50; i++ {
			at := w.start.Add(time.Duration(i) * time.Minute)
			blocked = append(blocked, storage.Event{ID: fmt.Sprintf("blocked-%d", i), ExternalID: "x", Format: storage.FormatMoesif,
				Time: at, ReceivedAt: at, Verb: "GET", URI: "/v1/search", Route: "/v1/search", HasResponse: true,
				ResponseTime: at, Status: 200, CompanyID: "acme", Weight: 1, Metadata: `{"tokens":100}`, BlockedBy: "6650a1b2c3d4e5f601234567"})
		}
		if _, err := w.st.Insert(context.Background(), blocked); err != nil {
			t.Fatal(err)
		}
		if got := w.expected(m, "acme", w.now); got != want {
			t.Fatalf("the backtest of acme went from %d to %d with blocked calls", want, got)
		}
		settle(t, w.worker(), 3)
		if got := w.billed(mode, items, "acme"); got != want || want == 0 {
			t.Fatalf("Stripe bills acme %d, want %d: the calls it was refused are not billed", got, want)
		}
	})
}
