package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
)

// runBilling is 'meterd billing' (the worker alone, for running it apart
// from the API) and 'meterd billing resync'.
func runBilling(args []string) error {
	resync := len(args) > 0 && args[0] == "resync"
	if resync {
		args = args[1:]
	}
	fs := flag.NewFlagSet("billing", flag.ExitOnError)
	dataDir, dsn := storeFlags(fs)
	interval := fs.Duration("interval", envDuration("METERD_BILLING_INTERVAL", time.Minute), "time between reporting cycles (env METERD_BILLING_INTERVAL)")
	once := fs.Bool("once", false, "run one cycle and exit")
	metricsAddr := metricsFlag(fs)
	_ = fs.Parse(args)
	resolveStore(dataDir, dsn)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop, st, sealer, err := openStore(*dsn, storage.Options{})
	if err != nil {
		return err
	}
	defer stop()
	defer st.Close()
	if resync {
		s, err := billing.LoadSettings(ctx, st, sealer)
		if err != nil {
			return err
		}
		if s == nil {
			return billing.ErrNotConfigured
		}
		n, err := stripestate.Resync(ctx, billing.NewAPI(*s, 0), st, time.Now())
		if err != nil {
			return err
		}
		fmt.Printf("resync: recorded %d customers, %d subscriptions and %d invoices from Stripe\n", n.Customers, n.Subscriptions, n.Invoices)
		return nil
	}
	ms := metrics.New()
	w := &billing.Worker{Store: st, Logger: log, Interval: *interval, Metrics: ms, Sealer: sealer}
	if *once {
		stats, err := w.Cycle(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("billing cycle: %+v\n", stats)
		return nil
	}
	url, stopMetrics, err := serveMetrics(*metricsAddr, ms, func(err error) { log.Error("billing: stopping", "err", err); stop() })
	if err != nil {
		return err
	}
	defer stopMetrics()
	log.Info("billing worker started", "store", backends.Redact(*dsn), "interval", *interval, "metrics", url)
	if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
