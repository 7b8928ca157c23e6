package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/server/config"
	"github.com/meterd/meterd/storage/backends"
)

// runBilling is 'meterd billing' (the worker alone, for running it apart
// from the API) and 'meterd billing resync'.
func runBilling(args []string) error {
	resync := len(args) > 0 && args[0] == "resync"
	if resync {
		args = args[1:]
	}
	fs := flag.NewFlagSet("billing", flag.ContinueOnError)
	once := fs.Bool("once", false, "run one cycle and exit")
	c, err := config.Parse(fs, config.Billing, args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := backends.Open(ctx, c.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	if resync {
		s, err := billing.LoadSettings(ctx, st, c.Sealer)
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
	w := &billing.Worker{Store: st, Logger: log, Interval: c.BillingInterval, Metrics: ms, Sealer: c.Sealer}
	if *once {
		stats, err := w.Cycle(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("billing cycle: %+v\n", stats)
		return nil
	}
	url, stopMetrics, err := serveMetrics(c.MetricsAddr, ms, func(err error) { log.Error("billing: stopping", "err", err); stop() })
	if err != nil {
		return err
	}
	defer stopMetrics()
	log.Info("billing worker started", "store", backends.Redact(c.Store), "interval", c.BillingInterval, "metrics", url)
	if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
