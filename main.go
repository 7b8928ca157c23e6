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
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	backtestbench "github.com/meterd/meterd/engine/bench"
	"github.com/meterd/meterd/engine/metrics"
	"github.com/meterd/meterd/server/bench"
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

// serve is 'meterd serve': it runs until SIGINT or SIGTERM, or until a
// listener fails.
func serve(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(ctx, args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	err := m.Run(ctx)
	if err == nil {
		select {
		case <-ctx.Done():
			m.Logger.Info("shutting down")
		case err = <-m.Failed():
		}
	}
	return errors.Join(err, m.Close())
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
	fs.IntVar(&o.ClientNice, "client-nice", 10, "nice value of the flood's and the bombs' clients (Linux), so that on one machine they stand in for clients on others; the server and the probe keep this command's priority; 0: all alike")
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
