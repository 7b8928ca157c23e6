package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/server"
	"github.com/meterd/meterd/server/config"
	"github.com/meterd/meterd/server/keys"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
)

// Main is 'meterd serve': ParseFlags reads the configuration, Run starts
// everything and returns once the API is listening, Close stops it all in
// order. Tests drive it as the command does.
type Main struct {
	Config config.Config
	Stdout io.Writer    // the start-up banner
	Stderr io.Writer    // flag errors and -h
	Logger *slog.Logger // to Stderr unless set

	store       storage.Store
	api         *server.Server
	ln          net.Listener
	http        *http.Server
	stopMetrics func()
	stopWorker  context.CancelFunc
	workerDone  chan struct{}
	failed      chan error
}

// NewMain is a Main with the default configuration, writing to the
// process's stdout and stderr.
func NewMain() *Main {
	return &Main{Config: config.Default(), Stdout: os.Stdout, Stderr: os.Stderr, failed: make(chan error, 2)}
}

// ParseFlags reads serve's flags from args and its METERD_* variables
// from the environment (a flag wins over its variable); a bad value is an
// error naming it.
func (m *Main) ParseFlags(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	c, err := config.Parse(fs, config.Serve, args, os.LookupEnv)
	if err != nil {
		return err
	}
	m.Config = c
	return nil
}

// Run opens the store, starts the API, the billing worker (unless
// turned off) and the listeners, prints the banner, and returns. On an
// error the caller still calls Close.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	if m.Logger == nil {
		m.Logger = slog.New(slog.NewTextHandler(m.Stderr, nil))
	}
	log := m.Logger
	k, err := keys.Load(c.DataDir, c.AdminToken, c.IngestKey)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if len(k.IngestKey) < keys.MinAgentKeyLength {
		log.Warn("the ingest key is shorter than Moesif agents accept (moesif-nodejs refuses application ids under 50 characters); fine for curl, not for the middleware", "length", len(k.IngestKey))
	}
	// An identity is remembered for the whole acceptance window: a repeat
	// inside it is a duplicate, whatever time it carries (docs/api.md).
	dedup := storage.Options{}
	if c.MaxEventAge >= 0 {
		dedup.DedupWindow = c.MaxEventAge + c.MaxClockSkew
	}
	if m.store, err = backends.OpenWith(ctx, c.Store, dedup); err != nil {
		return err
	}
	ms := metrics.New()
	m.api, err = server.New(server.Config{
		Store: m.store, AdminToken: k.AdminToken, IngestKey: k.IngestKey,
		KeepBodies: c.KeepBodies, MaxBodyBytes: c.MaxBodyBytes, MaxBatchEvents: c.MaxBatchEvents,
		MaxEventAge: c.MaxEventAge, MaxClockSkew: c.MaxClockSkew, Logger: log, BillingInterval: c.BillingInterval,
		IngestMemory: c.IngestMemory, MaxQueuedEvents: c.MaxQueuedEvents, BodyReadTimeout: c.BodyReadTimeout,
		Metrics: ms, Sealer: c.Sealer,
	})
	if err != nil {
		return err
	}
	// The billing worker idles until Stripe is configured (docs/billing.md).
	if c.Billing {
		worker := &billing.Worker{Store: m.store, Logger: log, Interval: c.BillingInterval, Hours: m.api.Hours(), Metrics: ms, Sealer: c.Sealer}
		var workerCtx context.Context
		workerCtx, m.stopWorker = context.WithCancel(context.Background())
		m.workerDone = make(chan struct{})
		go func() { defer close(m.workerDone); _ = worker.Run(workerCtx) }()
	}
	if m.ln, err = net.Listen("tcp", c.Addr); err != nil {
		return err
	}
	// Headers must arrive within 10 s and bodies within --body-read-timeout
	// (set per request by the server); idle connections close after 2 min.
	m.http = &http.Server{Handler: m.api.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := m.http.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
			m.failed <- err
		}
	}()
	metricsURL, stopMetrics, err := serveMetrics(c.MetricsAddr, ms, func(err error) { m.failed <- err })
	if err != nil {
		return err
	}
	m.stopMetrics = stopMetrics
	addr := m.Addr()
	fmt.Fprintf(m.Stdout, `meterd %s listening on %s
  store:       %s (%s)
  data dir:    %s
  admin token: %s   (%s; Authorization: Bearer ...; read API and UI)
  ingest key:  %s   (%s; X-Moesif-Application-Id or Authorization: Bearer; event ingestion)
  metrics:     %s
Point moesif-nodejs at it with { applicationId: "<ingest key>", baseUri: "%s" }.
`, versionString(), addr, backends.Redact(c.Store), m.store.Backend(), c.DataDir,
		k.AdminToken, keySource(k.AdminFixed, "--admin-token or METERD_ADMIN_TOKEN", k.File),
		k.IngestKey, keySource(k.IngestFixed, "--ingest-key or METERD_INGEST_KEY", k.File),
		cmp.Or(metricsURL, localURL(addr)+"/metrics (admin token)"), localURL(addr))
	return nil
}

// Addr is the address the API listens on (the port chosen for :0).
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Failed reports a listener that stopped serving.
func (m *Main) Failed() <-chan error { return m.failed }

// Close stops what Run started, in order: the API (in-flight requests
// finish, waiting for their commit), the metrics listener, the billing
// worker (retiring its mark), the server's writer and governance rounds,
// and last the store.
func (m *Main) Close() error {
	var errs []error
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		errs = append(errs, m.http.Shutdown(ctx))
		cancel()
	}
	if m.stopMetrics != nil {
		m.stopMetrics()
	}
	if m.stopWorker != nil {
		m.stopWorker()
		<-m.workerDone
	}
	if m.api != nil {
		errs = append(errs, m.api.Close())
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	return errors.Join(errs...)
}
