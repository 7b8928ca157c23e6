// Command meterd turns API traffic into usage billing: it ingests API-call
// events, evaluates billing meters over them and reports usage to Stripe.
//
//	meterd serve            run the service (embedded DuckDB under ./data by default)
//	meterd billing          report usage to Stripe (the worker alone; serve runs it too)
//	meterd billing resync   rebuild Stripe customers and subscriptions from Stripe's lists
//	meterd bench ingest     measure ingestion throughput
//	meterd bench overload   measure ingestion under overload and gzip bombs
//	meterd bench backtest   time a typical backtest on SQL, the VM and a hand-written query
//	meterd bench billing    time a billing cycle: the first, and a steady-state one after new events
//	meterd version          print the version
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	backtestbench "github.com/meterd/meterd/engine/bench"
	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/server"
	"github.com/meterd/meterd/server/bench"
	"github.com/meterd/meterd/server/keys"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/backends"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `meterd: usage billing from API traffic

Usage:
  meterd serve [flags]          run the service (see 'meterd serve -h')
  meterd billing [flags]        report usage to Stripe, without the API (see 'meterd billing -h')
  meterd billing resync         rebuild Stripe customers and subscriptions from Stripe's lists
  meterd bench ingest [flags]   measure ingestion throughput (see 'meterd bench ingest -h')
  meterd bench overload [flags] measure ingestion under overload: clients without backoff, gzip bombs
  meterd bench backtest [flags] time a typical backtest: SQL, VM, hand-written (see 'meterd bench backtest -h')
  meterd bench billing [flags]  time a billing cycle, first and steady-state (see 'meterd bench billing -h')
  meterd version                print the version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "billing":
		err = runBilling(os.Args[2:])
	case "bench":
		err = runBench(os.Args[2:])
	case "version", "-version", "--version":
		fmt.Println("meterd", versionString())
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "meterd: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "meterd:", err)
		os.Exit(1)
	}
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}

// env returns the environment variable's value, or def when it is unset.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", env("METERD_ADDR", ":8080"), "listen address (env METERD_ADDR)")
	dataDir, dsn := storeFlags(fs)
	adminToken := fs.String("admin-token", "", "admin token (env METERD_ADMIN_TOKEN; default: generated once, kept in DATA/keys.json)")
	ingestKey := fs.String("ingest-key", "", "ingest key (env METERD_INGEST_KEY; default: generated once, kept in DATA/keys.json)")
	keepBodies := fs.Bool("keep-bodies", os.Getenv("METERD_KEEP_BODIES") == "true", "store request and response bodies, not only their sizes (env METERD_KEEP_BODIES=true)")
	maxBody := fs.Int("max-body-bytes", envInt("METERD_MAX_BODY_BYTES", 16<<20), "largest accepted request body after decompression (env METERD_MAX_BODY_BYTES)")
	maxBatch := fs.Int("max-batch-events", envInt("METERD_MAX_BATCH_EVENTS", 10000), "most events in one batch request (env METERD_MAX_BATCH_EVENTS)")
	maxAge := fs.Duration("max-event-age", envDuration("METERD_MAX_EVENT_AGE", 30*24*time.Hour), "reject events older than this; negative disables (env METERD_MAX_EVENT_AGE)")
	maxSkew := fs.Duration("max-clock-skew", envDuration("METERD_MAX_CLOCK_SKEW", time.Hour), "reject events further than this in the future (env METERD_MAX_CLOCK_SKEW)")
	ingestMemory := fs.Int("ingest-memory", envInt("METERD_INGEST_MEMORY", server.DefaultIngestMemory), "bytes that request bodies being read and decoded and events waiting for the group commit may hold; past it 429 (env METERD_INGEST_MEMORY)")
	maxQueued := fs.Int("max-queued-events", envInt("METERD_MAX_QUEUED_EVENTS", server.DefaultMaxQueuedEvents), "events waiting for the group commit past which new requests get 503 (env METERD_MAX_QUEUED_EVENTS)")
	bodyTimeout := fs.Duration("body-read-timeout", envDuration("METERD_BODY_READ_TIMEOUT", server.DefaultBodyReadTimeout), "time for a request's whole body to arrive; past it 408 (env METERD_BODY_READ_TIMEOUT)")
	metricsAddr := metricsFlag(fs)
	billingWorker := fs.Bool("billing", os.Getenv("METERD_BILLING") != "false", "run the Stripe billing worker in this process; false on every replica but one, or when 'meterd billing' runs apart (env METERD_BILLING=false)")
	_ = fs.Parse(args)
	if *adminToken == "" {
		*adminToken = os.Getenv("METERD_ADMIN_TOKEN")
	}
	if *ingestKey == "" {
		*ingestKey = os.Getenv("METERD_INGEST_KEY")
	}
	resolveStore(dataDir, dsn)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	k, err := keys.Load(*dataDir, *adminToken, *ingestKey)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if len(k.IngestKey) < keys.MinAgentKeyLength {
		log.Warn("the ingest key is shorter than Moesif agents accept (moesif-nodejs refuses application ids under 50 characters); fine for curl, not for the middleware", "length", len(k.IngestKey))
	}
	// An identity is remembered for the whole acceptance window: a repeat
	// inside it is a duplicate, whatever time it carries (docs/api.md).
	dedup := storage.Options{}
	if *maxAge >= 0 {
		dedup.DedupWindow = *maxAge + *maxSkew
	}
	ctx, stop, st, sealer, err := openStore(*dsn, dedup)
	if err != nil {
		return err
	}
	defer stop()
	defer st.Close()
	billingInterval := envDuration("METERD_BILLING_INTERVAL", time.Minute)
	ms := metrics.New()
	srv, err := server.New(server.Config{
		Store: st, AdminToken: k.AdminToken, IngestKey: k.IngestKey,
		KeepBodies: *keepBodies, MaxBodyBytes: int64(*maxBody), MaxBatchEvents: *maxBatch,
		MaxEventAge: *maxAge, MaxClockSkew: *maxSkew, Logger: log, BillingInterval: billingInterval,
		IngestMemory: int64(*ingestMemory), MaxQueuedEvents: *maxQueued, BodyReadTimeout: *bodyTimeout, Metrics: ms, Sealer: sealer,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	// The billing worker idles until Stripe is configured (docs/billing.md).
	// It stops, retiring its mark, before the store closes.
	if *billingWorker {
		worker, done := &billing.Worker{Store: st, Logger: log, Interval: billingInterval, Hours: srv.Hours(), Metrics: ms, Sealer: sealer}, make(chan struct{})
		go func() { defer close(done); worker.Run(ctx) }()
		defer func() { stop(); <-done }()
	}
	// Headers must arrive within 10 s and bodies within --body-read-timeout
	// (set per request by the server); idle connections close after 2 min.
	httpSrv := &http.Server{Addr: *addr, Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 2)
	metricsURL, stopMetrics, err := serveMetrics(*metricsAddr, ms, func(err error) { errc <- err })
	if err != nil {
		return err
	}
	defer stopMetrics()
	go func() { errc <- httpSrv.ListenAndServe() }()

	fmt.Printf(`meterd %s listening on %s
  store:       %s (%s)
  data dir:    %s
  admin token: %s   (%s; Authorization: Bearer ...; read API and UI)
  ingest key:  %s   (%s; X-Moesif-Application-Id or Authorization: Bearer; event ingestion)
  metrics:     %s
Point moesif-nodejs at it with { applicationId: "<ingest key>", baseUri: "%s" }.
`, versionString(), *addr, backends.Redact(*dsn), st.Backend(), *dataDir,
		k.AdminToken, keySource(k.AdminFixed, "--admin-token or METERD_ADMIN_TOKEN", k.File),
		k.IngestKey, keySource(k.IngestFixed, "--ingest-key or METERD_INGEST_KEY", k.File),
		cmp.Or(metricsURL, localURL(*addr)+"/metrics (admin token)"), localURL(*addr))

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		log.Info("shutting down")
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Stop taking requests, let in-flight ones finish (they wait for their
	// commit), then stop the writer and close the store.
	return httpSrv.Shutdown(shutCtx)
}

func runBench(args []string) error {
	if len(args) >= 1 && args[0] == "backtest" {
		return benchBacktest(args[1:])
	}
	if len(args) >= 1 && args[0] == "billing" {
		return benchBilling(args[1:])
	}
	if len(args) >= 1 && args[0] == "overload" {
		return benchOverload(args[1:])
	}
	if len(args) >= 1 && args[0] == "probe" { // bench overload's probe process
		fs := flag.NewFlagSet("bench probe", flag.ExitOnError)
		url := fs.String("url", "", "batch endpoint")
		n := fs.Int("batch", 2000, "events per batch")
		seed := fs.Int64("seed", 2, "generator seed")
		d := fs.Duration("duration", 30*time.Second, "how long")
		_ = fs.Parse(args[1:])
		return bench.Probe(context.Background(), *url, *n, *seed, *d, os.Stdout)
	}
	if len(args) < 1 || args[0] != "ingest" {
		return fmt.Errorf("usage: meterd bench ingest|overload|backtest|billing [flags]")
	}
	fs := flag.NewFlagSet("bench ingest", flag.ExitOnError)
	var o bench.IngestOptions
	fs.StringVar(&o.Store, "store", "duckdb://", "store kind to measure: duckdb:// (fresh files in a temp dir) or clickhouse://HOST:9000/DB (fresh databases DB_bench_*)")
	fs.IntVar(&o.Events, "events", 1_000_000, "events to send")
	fs.IntVar(&o.Clients, "clients", 4, "concurrent HTTP clients")
	fs.IntVar(&o.Batch, "batch", 1000, "events per batch request")
	fs.BoolVar(&o.Gzip, "gzip", false, "gzip request bodies, as the Moesif middleware does")
	fs.Int64Var(&o.Seed, "seed", 1, "generator seed")
	_ = fs.Parse(args[1:])
	return bench.Ingest(context.Background(), o, os.Stdout)
}

func benchOverload(args []string) error {
	fs := flag.NewFlagSet("bench overload", flag.ExitOnError)
	var o bench.OverloadOptions
	fs.StringVar(&o.Store, "store", "duckdb://", "store kind: duckdb:// (a fresh file in a temp dir) or clickhouse://HOST:9000/DB (a fresh database DB_bench_*)")
	fs.IntVar(&o.Clients, "clients", 200, "concurrent clients, each sending its next batch as soon as it has an answer")
	fs.IntVar(&o.Batch, "batch", 2000, "events per batch request")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long the clients send")
	fs.IntVar(&o.Bombs, "bombs", 100, "gzip bombs sent at once after the flood (0: none)")
	fs.Int64Var(&o.BombSize, "bomb-size", 1<<30, "bytes each gzip bomb inflates to")
	fs.Int64Var(&o.Seed, "seed", 1, "generator seed")
	serve := fs.String("serve", "", `command running the server under test, e.g. "/path/to/other/meterd serve" to measure another build (default: this executable's serve)`)
	_ = fs.Parse(args)
	o.Serve = strings.Fields(*serve)
	return bench.Overload(context.Background(), o, os.Stdout)
}

func benchBacktest(args []string) error {
	fs := flag.NewFlagSet("bench backtest", flag.ExitOnError)
	var c backtestbench.Config
	fs.StringVar(&c.Store, "store", "", "where to load the events: empty for a new DuckDB file in a temp dir, duckdb://PATH for a new file there, clickhouse://HOST:9000/DB for a new database DB_bench_backtest_* (all removed afterwards)")
	fs.IntVar(&c.Events, "events", backtestbench.DefaultEvents, "events to load (over 30 days)")
	fs.IntVar(&c.Runs, "runs", backtestbench.DefaultRuns, "timed runs of the SQL and hand-written queries (the best counts; the VM runs once)")
	fs.BoolVar(&c.SkipVM, "skip-vm", false, "do not time the VM path (minutes at 10M events)")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	_ = fs.Parse(args)
	return backtestbench.Backtest(context.Background(), c, os.Stdout)
}

func benchBilling(args []string) error {
	fs := flag.NewFlagSet("bench billing", flag.ExitOnError)
	var c backtestbench.BillingConfig
	fs.StringVar(&c.Store, "store", "", "where to load the events: empty for a new DuckDB file in a temp dir, duckdb://PATH for a new file there, clickhouse://HOST:9000/DB[?cluster=NAME] for a new database DB_bench_billing_* (all removed afterwards)")
	fs.IntVar(&c.Events, "events", backtestbench.DefaultEvents, "events to load (over the current period's 30 days so far)")
	fs.IntVar(&c.Customers, "customers", backtestbench.DefaultCustomers, "customers the events belong to")
	fs.IntVar(&c.Meters, "meters", backtestbench.DefaultMeters, "active meters")
	fs.Float64Var(&c.Late, "late", 0.1, "share of the new events (0.1 % of -events) that are late")
	fs.DurationVar(&c.LateWithin, "late-within", 6*time.Hour, "how late a late event is at most")
	_ = fs.Parse(args)
	return backtestbench.Billing(context.Background(), c, os.Stdout)
}

// storeFlags adds -data and -store (env METERD_DATA_DIR, METERD_STORE);
// resolveStore fills the default store after parsing.
func storeFlags(fs *flag.FlagSet) (dataDir, dsn *string) {
	dataDir = fs.String("data", env("METERD_DATA_DIR", "./data"), "data directory: the DuckDB file and the generated keys (env METERD_DATA_DIR)")
	dsn = fs.String("store", env("METERD_STORE", ""), "event store: duckdb://PATH or clickhouse://HOST:9000/DB (env METERD_STORE; default duckdb://DATA/meterd.duckdb)")
	return dataDir, dsn
}

// resolveStore defaults the store to the DuckDB file in the data directory.
func resolveStore(dataDir, dsn *string) {
	if *dsn == "" {
		*dsn = "duckdb://" + filepath.Join(*dataDir, "meterd.duckdb")
	}
}

// openStore is what serve and billing do before their work: refuse a bad
// METERD_SECRET_KEY (read once, here), then open the store under a
// context that SIGINT and SIGTERM cancel. The caller defers stop and
// st.Close.
func openStore(dsn string, o storage.Options) (context.Context, context.CancelFunc, storage.Store, *billing.Sealer, error) {
	sl, err := billing.NewSealer(os.Getenv(billing.SecretKeyEnv))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	st, err := backends.OpenWith(ctx, dsn, o)
	if err != nil {
		stop()
		return nil, nil, nil, nil, err
	}
	return ctx, stop, st, sl, nil
}

// metricsFlag adds --metrics-addr (env METERD_METRICS_ADDR).
func metricsFlag(fs *flag.FlagSet) *string {
	return fs.String("metrics-addr", env("METERD_METRICS_ADDR", ""),
		"serve GET /metrics without credentials on this address too, for a Prometheus scraper (e.g. :9091; env METERD_METRICS_ADDR; default: only on the API listener, with the admin token)")
}

// serveMetrics serves ms at /metrics on addr without credentials, for a
// Prometheus scraper (nothing when addr is empty), and says where; fail
// hears of a listener that stops. stop closes it.
func serveMetrics(addr string, ms *metrics.Set, fail func(error)) (url string, stop func(), err error) {
	if addr == "" {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", ms.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("metrics: %w", err))
		}
	}()
	return localURL(ln.Addr().String()) + "/metrics (no credentials)", func() { _ = srv.Close() }, nil
}

// keySource says where a key in force comes from, for the start-up banner.
func keySource(fixed bool, setting, file string) string {
	if fixed {
		return "set by " + setting
	}
	return "generated, kept in " + file
}

// localURL is how a client on this machine reaches a listen address:
// ":8080" and "0.0.0.0:8080" are http://127.0.0.1:8080.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
