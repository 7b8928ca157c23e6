package billing_test

import (
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
)

// A period is checked until 35 days after it ended, against every report
// of it in the ledger, the first ones written as its first hours closed:
// a month before its end. The cycle must read them all, or Stripe would
// seem to lack what it has and the usage would be listed late.
func TestLedgerCoversEveryCheckedPeriod(t *testing.T) {
	inEveryWorld(t, func(t *testing.T, w *world, mode string) {
		_, items, m := w.subscribed(mode)
		wk := w.worker()
		settle(t, wk, 3)
		if got, want := w.billed(mode, items, "acme"), w.expected(m, "acme", w.now); got == 0 || got != want {
			t.Fatalf("Stripe bills acme %d, the backtest says %d", got, want)
		}
		w.now = w.start.AddDate(0, 1, 0).Add(34 * 24 * time.Hour) // the period ended 34 days ago
		settle(t, wk, 3)
		for _, co := range []string{"acme", "globex"} {
			if late := w.reports(co, billing.StatusLate); len(late) != 0 {
				t.Fatalf("%s's usage, all sent, is listed late 34 days after its period: %+v", co, late[0])
			}
		}
	})
}
