// Package config is the configuration of a meterd process ('meterd serve',
// 'meterd billing'): every setting with its flag, its METERD_* variable and
// its default, parsed and checked once at start. A value that does not
// parse or is out of range stops the start with an error naming the flag
// or variable and the value; nothing falls back to a default silently.
// docs/operations.md lists the settings, docs/architecture.md the model.
package config

import (
	"time"

	"github.com/meterd/meterd/engine/billing"
)

// Defaults of the bounds on ingestion (docs/operations.md, "Memory"). They
// are also what server.New takes for a zero value.
const (
	DefaultMaxBodyBytes    = 16 << 20
	DefaultMaxBatchEvents  = 10_000
	DefaultMaxEventAge     = 30 * 24 * time.Hour
	DefaultMaxClockSkew    = time.Hour
	DefaultMaxQueuedEvents = 100_000
	DefaultIngestMemory    = 128 << 20
	DefaultBodyReadTimeout = 30 * time.Second
)

// Config is a process's configuration, checked.
type Config struct {
	Addr            string // the API's listen address
	DataDir         string // the DuckDB file's default place and keys.json
	Store           string // the event store's DSN; duckdb://DATA/meterd.duckdb unless set
	AdminToken      string // "": generated once, kept in DATA/keys.json
	IngestKey       string // "": generated once, kept in DATA/keys.json
	KeepBodies      bool
	MaxBodyBytes    int64
	MaxBatchEvents  int
	MaxEventAge     time.Duration // negative: no limit
	MaxClockSkew    time.Duration
	IngestMemory    int64
	MaxQueuedEvents int
	BodyReadTimeout time.Duration
	MetricsAddr     string // "": /metrics only on the API listener
	Billing         bool   // run the billing worker in 'meterd serve'
	BillingInterval time.Duration
	// Sealer seals the Stripe secrets in the store, made from
	// METERD_SECRET_KEY; nil (stored in plain text) when it is unset.
	Sealer *billing.Sealer
}

// Default is the configuration before any flag or variable.
func Default() Config {
	return Config{
		Addr:            ":8080",
		DataDir:         "./data",
		MaxBodyBytes:    DefaultMaxBodyBytes,
		MaxBatchEvents:  DefaultMaxBatchEvents,
		MaxEventAge:     DefaultMaxEventAge,
		MaxClockSkew:    DefaultMaxClockSkew,
		IngestMemory:    DefaultIngestMemory,
		MaxQueuedEvents: DefaultMaxQueuedEvents,
		BodyReadTimeout: DefaultBodyReadTimeout,
		Billing:         true,
		BillingInterval: billing.DefaultInterval,
	}
}
