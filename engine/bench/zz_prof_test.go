package bench

import (
	"context"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/rules/registry"
)

func TestZZProfSteady(t *testing.T) {
	ctx := context.Background()
	dsn := os.Getenv("ZZ_DSN")
	if dsn == "clickhouse" {
		dsn = clickhouseDSN(t)
	}
	st, _, cleanup, err := OpenFresh(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	now := time.Now().UTC()
	start := now.Add(-30 * 24 * time.Hour).Truncate(time.Hour).Add(17*time.Minute + 23*time.Second)
	period := stripestate.Period{Start: start, End: start.Add(31 * 24 * time.Hour)}
	reg := registry.New(st, nil)
	var meters []*registry.Meter
	for i := range 5 {
		m, _ := reg.Create(ctx, billingMeters[i], "x")
		meters = append(meters, m)
	}
	periods := map[string]stripestate.Period{}
	for i := range 1000 {
		periods["company-"+strconv.Itoa(i)] = period
	}
	n, _ := strconv.Atoi(os.Getenv("ZZ_N"))
	loadCustomers(ctx, st, loadSeed, n, 1000, start, now, t.Logf)
	w := &billing.Worker{Store: st, Hours: hours.New(st)}
	t0 := time.Now()
	w.Measure(ctx, time.Now(), meters, periods)
	t.Logf("first %s", time.Since(t0))
	f, _ := os.Create("/tmp/hrs_steady.out")
	for i := range 3 {
		addNew(ctx, st, BillingConfig{Customers: 1000, LateWithin: 6 * time.Hour}, n/1000, n/10000)
		if i == 0 {
			pprof.StartCPUProfile(f)
		}
		t0 = time.Now()
		w.Measure(ctx, time.Now(), meters, periods)
		t.Logf("steady %s", time.Since(t0))
	}
	pprof.StopCPUProfile()
	t0 = time.Now()
	(&billing.Worker{Store: st, Recompute: true}).Measure(ctx, time.Now(), meters, periods)
	t.Logf("recompute %s", time.Since(t0))
}
