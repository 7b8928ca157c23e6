package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/storage/backends"
)

// Command is a command whose settings Parse reads.
type Command string

// The commands with settings.
const (
	Serve   Command = "serve"
	Billing Command = "billing"
)

// Parse reads cmd's settings: each from its flag in args, or else from
// its variable (lookup is os.LookupEnv outside tests; an empty variable
// counts as unset), or else its default. Values are parsed and checked
// here, once; the first bad one is an error naming the flag or variable
// and the value. fs may hold flags of the caller's own (e.g. --once); its
// errors (an unknown flag, -h) come back as they are.
func Parse(fs *flag.FlagSet, cmd Command, args []string, lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	var mine []setting
	given := map[string]*rawValue{}
	for _, s := range settings {
		if !slices.Contains(s.on, cmd) {
			continue
		}
		mine = append(mine, s)
		if s.flag != "" {
			given[s.flag] = &rawValue{shown: s.show(&c), isBool: s.isBool}
			fs.Var(given[s.flag], s.flag, s.usage+" (env "+s.env+")")
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range mine {
		source, raw := s.env, ""
		if v := given[s.flag]; v != nil && v.set {
			source, raw = "--"+s.flag, v.value
		} else if raw, _ = lookup(s.env); raw == "" {
			continue
		}
		if err := s.parse(&c, raw); err != nil {
			return c, fmt.Errorf("%s=%s: %w", source, s.redact(raw), err)
		}
	}
	if c.Store == "" {
		c.Store = "duckdb://" + filepath.Join(c.DataDir, "meterd.duckdb")
	}
	return c, nil
}

// setting is one configurable value: its flag ("" for none: a secret
// belongs in the environment, not in the process list) and variable.
type setting struct {
	flag, env, usage string
	on               []Command
	isBool           bool
	parse            func(c *Config, raw string) error
	show             func(c *Config) string // the value, for -h
	redact           func(raw string) string
}

// rawValue holds a flag's text until Parse parses it, so that a flag and
// a variable go through the same parser and errors.
type rawValue struct {
	value, shown string
	set, isBool  bool
}

func (v *rawValue) String() string {
	if v == nil {
		return ""
	}
	return v.shown
}

func (v *rawValue) Set(s string) error { v.value, v.set = s, true; return nil }
func (v *rawValue) IsBoolFlag() bool   { return v.isBool }

// define makes a setting of the Config field that field points to.
func define[T any](flag, env, usage string, on []Command, field func(*Config) *T, parse func(string) (T, error)) setting {
	_, isBool := any(*field(&Config{})).(bool)
	return setting{flag: flag, env: env, usage: usage, on: on, isBool: isBool,
		parse: func(c *Config, raw string) error {
			v, err := parse(raw)
			if err == nil {
				*field(c) = v
			}
			return err
		},
		show:   func(c *Config) string { return fmt.Sprint(*field(c)) },
		redact: strconv.Quote,
	}
}

var (
	both  = []Command{Serve, Billing}
	serve = []Command{Serve}
)

// settings are every setting, in the order of docs/operations.md.
var settings = []setting{
	define("addr", "METERD_ADDR", "listen `address` (HOST:PORT or :PORT)", serve, func(c *Config) *string { return &c.Addr }, listenAddr),
	define("data", "METERD_DATA_DIR", "data `directory`: the DuckDB file and the generated keys", both, func(c *Config) *string { return &c.DataDir }, nonEmpty),
	withRedact(define("store", "METERD_STORE", "event store `DSN`: duckdb://PATH or clickhouse://HOST:9000/DB (default duckdb://DATA/meterd.duckdb)", both, func(c *Config) *string { return &c.Store }, storeDSN),
		func(raw string) string { return strconv.Quote(backends.Redact(raw)) }),
	define("admin-token", "METERD_ADMIN_TOKEN", "admin `token` (default: generated once, kept in DATA/keys.json)", serve, func(c *Config) *string { return &c.AdminToken }, text),
	define("ingest-key", "METERD_INGEST_KEY", "ingest `key` (default: generated once, kept in DATA/keys.json)", serve, func(c *Config) *string { return &c.IngestKey }, text),
	define("keep-bodies", "METERD_KEEP_BODIES", "store request and response bodies, not only their sizes", serve, func(c *Config) *bool { return &c.KeepBodies }, boolean),
	define("max-body-bytes", "METERD_MAX_BODY_BYTES", "largest accepted request body after decompression, in `bytes`", serve, func(c *Config) *int64 { return &c.MaxBodyBytes }, positive[int64]),
	define("max-batch-events", "METERD_MAX_BATCH_EVENTS", "most `events` in one batch request", serve, func(c *Config) *int { return &c.MaxBatchEvents }, positive[int]),
	define("max-event-age", "METERD_MAX_EVENT_AGE", "reject events older than this `duration`; negative disables", serve, func(c *Config) *time.Duration { return &c.MaxEventAge }, nonZeroDuration),
	define("max-clock-skew", "METERD_MAX_CLOCK_SKEW", "reject events further than this `duration` in the future", serve, func(c *Config) *time.Duration { return &c.MaxClockSkew }, positiveDuration),
	define("ingest-memory", "METERD_INGEST_MEMORY", "`bytes` that request bodies being read and decoded and events waiting for the group commit may hold; past it 429", serve, func(c *Config) *int64 { return &c.IngestMemory }, positive[int64]),
	define("max-queued-events", "METERD_MAX_QUEUED_EVENTS", "`events` waiting for the group commit past which new requests get 503", serve, func(c *Config) *int { return &c.MaxQueuedEvents }, positive[int]),
	define("body-read-timeout", "METERD_BODY_READ_TIMEOUT", "`time` for a request's whole body to arrive; past it 408", serve, func(c *Config) *time.Duration { return &c.BodyReadTimeout }, positiveDuration),
	define("metrics-addr", "METERD_METRICS_ADDR", "serve GET /metrics without credentials on this `address` too, for a Prometheus scraper (e.g. :9091; default: only on the API listener, with the admin token)", both, func(c *Config) *string { return &c.MetricsAddr }, optional(listenAddr)),
	define("billing", "METERD_BILLING", "run the Stripe billing worker in this process; false on every replica but one, or when 'meterd billing' runs apart", serve, func(c *Config) *bool { return &c.Billing }, boolean),
	define("billing-interval", "METERD_BILLING_INTERVAL", "`time` between billing cycles", serve, func(c *Config) *time.Duration { return &c.BillingInterval }, positiveDuration),
	define("interval", "METERD_BILLING_INTERVAL", "`time` between billing cycles", []Command{Billing}, func(c *Config) *time.Duration { return &c.BillingInterval }, positiveDuration),
	withRedact(define("", billing.SecretKeyEnv, "seals the Stripe secrets in the store", both, func(c *Config) **billing.Sealer { return &c.Sealer }, billing.NewSealer),
		func(raw string) string { return fmt.Sprintf("(%d characters, not shown)", len(raw)) }),
}

func withRedact(s setting, redact func(string) string) setting {
	s.redact = redact
	return s
}

// boolean is the one boolean syntax of flags and variables: true or 1,
// false or 0.
func boolean(s string) (bool, error) {
	switch s {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, errors.New("want true, false, 1 or 0")
}

func text(s string) (string, error) { return s, nil }

func nonEmpty(s string) (string, error) {
	if s == "" {
		return "", errors.New("must not be empty")
	}
	return s, nil
}

// listenAddr is HOST:PORT or :PORT.
func listenAddr(s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", errors.New("want HOST:PORT or :PORT")
	}
	return s, nil
}

// optional lets parse take an empty value too (for "none").
func optional(parse func(string) (string, error)) func(string) (string, error) {
	return func(s string) (string, error) {
		if s == "" {
			return "", nil
		}
		return parse(s)
	}
}

// storeDSN is empty (the DuckDB file in the data directory) or a DSN of a
// known backend.
func storeDSN(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	return s, backends.Check(s)
}

func positive[T int | int64](s string) (T, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || int64(T(n)) != n {
		return 0, errors.New("want a whole number above 0")
	}
	return T(n), nil
}

func duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("want a duration such as 90s, 15m or 720h")
	}
	return d, nil
}

func positiveDuration(s string) (time.Duration, error) {
	d, err := duration(s)
	if err == nil && d <= 0 {
		err = errors.New("want a duration above 0")
	}
	return d, err
}

// nonZeroDuration is a limit that a negative value disables.
func nonZeroDuration(s string) (time.Duration, error) {
	d, err := duration(s)
	if err == nil && d == 0 {
		err = errors.New("want a duration above 0, or a negative one for no limit")
	}
	return d, err
}
