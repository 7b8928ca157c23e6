// Package server is meterd's HTTP API (Echo): ingestion in the Moesif and
// CloudEvents wire formats, the Moesif collector's config endpoints, and
// the read API. docs/api.md is its reference.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/governance"
	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/engine/metrics"
	gov "github.com/meterd/meterd/rules/governance"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/server/config"
	"github.com/meterd/meterd/server/ingest"
	"github.com/meterd/meterd/server/openapi"
	"github.com/meterd/meterd/storage"
)

// Config configures a Server; zero values take the defaults noted (the
// constants of server/config, where the process's configuration is
// parsed).
type Config struct {
	Store                 storage.Store
	AdminToken, IngestKey string
	KeepBodies            bool          // store bodies, not only their sizes
	MaxBodyBytes          int64         // decompressed body cap; 16 MiB
	MaxBatchEvents        int           // 10,000
	MaxEventAge           time.Duration // 30 days; negative disables
	MaxClockSkew          time.Duration // 1 hour
	MaxInflight           int           // bodies decoded at once; GOMAXPROCS (others wait their turn)
	MaxQueuedEvents       int           // events waiting for the group commit before requests are refused (503); 100,000
	IngestMemory          int64         // bytes bodies being read and decoded and queued events may hold; 128 MiB (then 429)
	BodyReadTimeout       time.Duration // for a request's whole body to arrive; 30 s (then 408)
	BillingInterval       time.Duration // between billing cycles, to tell live workers; 1 minute
	Metrics               *metrics.Set  // the process's metrics (GET /metrics); a Set of its own when nil
	Now                   func() time.Time
	Logger                *slog.Logger
	// Hours keeps meters' usage per closed hour (engine/hours) for
	// GET /v1/meters/{id}/usage and governance's usage(); nil: the
	// server's own. A billing worker in the same process should share it.
	Hours *hours.Cache
	// Sealer opens and seals the Stripe secrets in the settings
	// (METERD_SECRET_KEY); nil: they are stored in plain text.
	Sealer *billing.Sealer
}

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = config.DefaultMaxBodyBytes
	}
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = config.DefaultMaxBatchEvents
	}
	if c.MaxEventAge == 0 {
		c.MaxEventAge = config.DefaultMaxEventAge
	}
	if c.MaxClockSkew <= 0 {
		c.MaxClockSkew = config.DefaultMaxClockSkew
	}
	if c.BillingInterval <= 0 {
		c.BillingInterval = billing.DefaultInterval
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = runtime.GOMAXPROCS(0)
	}
	if c.MaxQueuedEvents <= 0 {
		c.MaxQueuedEvents = config.DefaultMaxQueuedEvents
	}
	if c.IngestMemory <= 0 {
		c.IngestMemory = config.DefaultIngestMemory
	}
	if c.BodyReadTimeout <= 0 {
		c.BodyReadTimeout = config.DefaultBodyReadTimeout
	}
	if c.Hours == nil {
		c.Hours = hours.New(c.Store)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
}

// Server is the HTTP API. Close it to stop the writer.
type Server struct {
	cfg      Config
	echo     *echo.Echo
	writer   *ingest.Writer
	profiles *profileCache
	meters   *registry.Registry
	rules    *gov.Registry
	gov      *governor
	stopGov  context.CancelFunc
	govDone  chan struct{}
	decoding chan struct{} // MaxInflight slots
	budget   *ingest.Budget
	refused  refusals
	metrics  *metrics.Set
	billing  *billing.Service
}

// New builds the server and loads the profile cache from the store.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.AdminToken == "" || cfg.IngestKey == "" {
		return nil, errors.New("server: Store, AdminToken and IngestKey are required")
	}
	cfg.defaults()
	if need := readCost*cfg.MaxBodyBytes + requestOverhead + gzipOverhead; cfg.IngestMemory < need {
		return nil, fmt.Errorf("server: the ingest memory (%d bytes) must hold at least one body of the largest size: %d bytes (%d times the body cap, plus %d)",
			cfg.IngestMemory, need, readCost, requestOverhead+gzipOverhead)
	}
	s := &Server{cfg: cfg, decoding: make(chan struct{}, cfg.MaxInflight), budget: ingest.NewBudget(cfg.IngestMemory), metrics: cfg.Metrics}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := cfg.Store.Profiles(ctx)
	if err != nil {
		return nil, err
	}
	s.profiles = newProfileCache(ps)
	s.billing = &billing.Service{Store: cfg.Store, Now: cfg.Now, Interval: cfg.BillingInterval, Metrics: s.metrics, Sealer: cfg.Sealer}
	s.meters = registry.New(cfg.Store, cfg.Now)
	s.rules = gov.NewRegistry(cfg.Store, s.meterGroup, cfg.Now)
	s.startGovernance(ctx)
	s.writer = ingest.NewWriter(cfg.Store, cfg.MaxQueuedEvents, max(cfg.MaxBatchEvents, 20_000), s.metrics)
	s.metrics.WatchIngest(s.writer.Queued, cfg.MaxQueuedEvents, s.budget.Used, cfg.IngestMemory)
	if s.echo, err = s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// startGovernance evaluates the rules once (so that the agents' first
// fetch already gets them), then renews the snapshot in the background.
func (s *Server) startGovernance(ctx context.Context) {
	s.gov = &governor{
		eval:     &governance.Evaluator{Store: s.cfg.Store, Rules: s.rules, Meters: s.meters, Profiles: profileTraits{s.profiles}, Now: s.cfg.Now, Hours: s.cfg.Hours},
		log:      s.cfg.Logger.Warn,
		snap:     governance.Empty(),
		interval: s.cfg.BillingInterval,
		seen:     map[string]time.Time{},
		metrics:  s.metrics,
	}
	s.metrics.WatchGovernance(s.gov.customers)
	s.gov.news(ctx, s.cfg.Store) // what is already there is not news
	_ = s.gov.refresh(ctx)
	runCtx, cancel := context.WithCancel(context.Background())
	s.stopGov, s.govDone = cancel, make(chan struct{})
	go func() { defer close(s.govDone); s.gov.run(runCtx, s.cfg.Store) }()
}

// meterGroup says how a meter groups its usage (for usage() in rules).
func (s *Server) meterGroup(ctx context.Context, id string) (string, bool) {
	m, err := s.meters.Get(ctx, id)
	if err != nil {
		return "", false
	}
	return m.Latest().GroupBy, true
}

// Handler is the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Close waits for pending inserts and stops the writer and the
// governance rounds.
func (s *Server) Close() error {
	s.stopGov()
	<-s.govDone
	s.writer.Close()
	return nil
}

func (s *Server) routes() (*echo.Echo, error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Pre(withRequestID)

	ing := s.ingestAuth
	post := []echo.MiddlewareFunc{s.ingestMetrics, ing} // ingestion: timed, refusals counted (401 too)
	e.POST("/v1/events", s.postMoesifEvents, post...)   // each takes an object or an array
	e.POST("/v1/events/batch", s.postMoesifEvents, post...)
	e.POST("/v1/users", s.postProfiles(storage.KindUser), post...)
	e.POST("/v1/users/batch", s.postProfiles(storage.KindUser), post...)
	e.POST("/v1/companies", s.postProfiles(storage.KindCompany), post...)
	e.POST("/v1/companies/batch", s.postProfiles(storage.KindCompany), post...)
	e.GET("/v1/config", s.getMoesifConfig, ing)
	e.GET("/v1/rules", s.getMoesifRules, ing)

	adm := s.adminAuth
	e.GET("/v1/events", s.listEvents, adm)
	e.GET("/v1/events/stats", s.eventStats, adm)
	e.GET("/v1/users/:id", s.getProfile(storage.KindUser), adm)
	e.GET("/v1/companies/:id", s.getProfile(storage.KindCompany), adm)

	e.POST("/v1/meters", s.createMeter, adm)
	e.POST("/v1/meters/validate", s.validateMeter, adm)
	e.GET("/v1/meters", s.listMeters, adm)
	e.GET("/v1/meters/:id", s.getMeter, adm)
	e.GET("/v1/meters/:id/versions", s.meterHistory, adm)
	e.POST("/v1/meters/:id/versions", s.addVersion, adm)
	e.PATCH("/v1/meters/:id", s.patchMeter, adm)
	e.POST("/v1/meters/:id/archive", s.archiveMeter, adm)
	e.DELETE("/v1/meters/:id", s.deleteMeter, adm)
	e.GET("/v1/meters/:id/usage", s.meterUsage, adm)
	e.POST("/v1/backtest", s.postBacktest, adm)
	e.POST("/v1/backtest/samples", s.postSamples, adm)

	s.openMeterRoutes(e)  // OpenMeter's API: CloudEvents ingestion, events, meters and their queries (server/openmeter.go)
	s.billingRoutes(e)    // Stripe settings, webhook and the report ledger (server/billing.go)
	s.governanceRoutes(e) // governance rules, previews and what they hold for (server/governance.go)

	e.GET("/v1/debug/runtime", s.runtimeStats, adm)
	e.GET("/metrics", echo.WrapHandler(s.metrics.Handler()), adm) // also without the token on --metrics-addr
	e.GET("/healthz", s.healthz)
	e.GET("/openapi.json", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, openapi.JSON) })
	// the console: /, /index.html and /assets/*, beside the API
	if err := s.mountUI(e); err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Server) healthz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	if _, err := s.cfg.Store.SchemaVersion(ctx); err != nil {
		return readFailed(err)
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "store": s.cfg.Store.Backend()})
}

// Hours is the usage kept per closed hour that the server answers from,
// for a billing worker in the same process to share.
func (s *Server) Hours() *hours.Cache { return s.cfg.Hours }
