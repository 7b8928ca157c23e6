package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/engine/governance"
	"github.com/meterd/meterd/engine/metrics"
	gov "github.com/meterd/meterd/rules/governance"
	"github.com/meterd/meterd/server/wire"
	"github.com/meterd/meterd/storage"
)

// governor keeps the governance snapshot the agents are served
// (GET /v1/rules, /v1/config, and the ETag of every ingestion answer) and
// renews it: after every change of a rule and every Stripe webhook, at
// once; every billing interval (usage moves); and within seconds of a
// change another meterd process recorded (it watches the journal).
type governor struct {
	eval *governance.Evaluator
	log  func(msg string, args ...any)
	mu   sync.Mutex // one round at a time
	// started is when the last successful round began: a change made
	// before it is in the snapshot served (see refreshAfter).
	started  time.Time
	snap     *governance.Snapshot
	snapMu   sync.RWMutex
	interval time.Duration
	// seen is the newest journal entry of the watched streams this
	// process evaluated after.
	seen    map[string]time.Time
	metrics *metrics.Set
}

func (g *governor) current() *governance.Snapshot {
	g.snapMu.RLock()
	defer g.snapMu.RUnlock()
	return g.snap
}

// customers is, for each active rule of the last round, how many
// customers it holds for (GET /metrics).
func (g *governor) customers() []metrics.RuleCustomers {
	snap := g.current()
	out := make([]metrics.RuleCustomers, len(snap.Rules))
	for i, r := range snap.Rules {
		out[i] = metrics.RuleCustomers{Rule: r.ID, Block: r.Latest().Block, Customers: len(snap.Matches[r.ID])}
	}
	return out
}

// refresh runs a round now and serves its snapshot; on failure the last
// snapshot stays (the agents keep their last rules too).
func (g *governor) refresh(ctx context.Context) error { return g.refreshAfter(ctx, time.Now()) }

// refreshAfter makes sure a round that began after changed has served its
// snapshot: it runs one, unless one began meanwhile (a burst of webhooks
// costs one round per round's duration, not one per webhook).
func (g *governor) refreshAfter(ctx context.Context, changed time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started.After(changed) {
		return nil
	}
	start := time.Now()
	s, err := g.eval.Evaluate(ctx)
	g.metrics.GovernanceRound(time.Since(start), err)
	if err != nil {
		g.log("governance: evaluation failed; serving the last rules", "err", err)
		return err
	}
	g.started = start
	for id, why := range s.Failed {
		g.log("governance: a rule could not be evaluated; it lists nobody this round", "rule", id, "err", why)
	}
	g.snapMu.Lock()
	g.snap = s
	g.snapMu.Unlock()
	return nil
}

// watchedStreams are the journal streams whose news changes membership.
var watchedStreams = []string{storage.StreamGovernanceRules, storage.StreamStripeEvents, storage.StreamBillingSettings}

// run renews the snapshot until ctx ends: every interval, and when the
// journal has news (checked every few seconds: cheap, and how a change
// made through another process reaches this one).
func (g *governor) run(ctx context.Context, store storage.Journal) {
	tick := time.NewTicker(g.interval)
	defer tick.Stop()
	poll := time.NewTicker(min(5*time.Second, g.interval))
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_ = g.refresh(ctx)
		case <-poll.C:
			if g.news(ctx, store) {
				_ = g.refresh(ctx)
			}
		}
	}
}

// news reports whether the watched streams have entries newer than the
// last ones seen.
func (g *governor) news(ctx context.Context, store storage.Journal) bool {
	changed := false
	for _, stream := range watchedStreams {
		es, err := store.JournalEntries(ctx, storage.JournalQuery{Stream: stream, From: g.seen[stream].Add(time.Millisecond)})
		if err != nil || len(es) == 0 {
			continue
		}
		if last := es[len(es)-1].At; last.After(g.seen[stream]) {
			g.seen[stream], changed = last, true
		}
	}
	return changed
}

// kick renews the snapshot after a change this process made, bounded in
// time: the change is stored either way, and the next round sees it.
func (s *Server) kick(ctx context.Context) {
	changed := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	_ = s.gov.refreshAfter(ctx, changed)
}

// profileTraits adapts the profile cache to governance.Profiles.
type profileTraits struct{ pc *profileCache }

func (p profileTraits) Traits(kind, id string) (map[string]any, string) {
	m, _, ok := p.pc.get(kind, id)
	if !ok {
		return nil, ""
	}
	return m.Metadata, m.CompanyID
}

func (p profileTraits) IDs(kind string) []string { return p.pc.ids(kind) }

// ruleJSON is how the API shows a rule: its state, the version in force,
// and how many customers it holds for now.
type ruleJSON struct {
	*gov.Rule
	Current gov.Version `json:"current"`
	// MatchingNow counts the customers it holds for in the last round
	// (blocked, for a blocking rule); EvaluatedAt is that round's time.
	MatchingNow int        `json:"matching_now"`
	EvaluatedAt *time.Time `json:"evaluated_at"`
	// Failed is why the last round could not evaluate it, if it could not.
	Failed string `json:"failed,omitempty"`
}

func (s *Server) renderRule(r *gov.Rule) ruleJSON {
	out := ruleJSON{Rule: r, Current: r.Latest()}
	if snap := s.gov.current(); snap != nil && !snap.At.IsZero() {
		at := snap.At
		out.EvaluatedAt = &at
		out.MatchingNow = len(snap.Matches[r.ID])
		out.Failed = snap.Failed[r.ID]
	}
	return out
}

func (s *Server) governanceRoutes(e *echo.Echo) {
	adm := s.adminAuth
	e.POST("/v1/governance/rules", s.createRule, adm)
	e.GET("/v1/governance/rules", s.listRules, adm)
	e.GET("/v1/governance/rules/:id", s.getRule, adm)
	e.GET("/v1/governance/rules/:id/versions", s.ruleHistory, adm)
	e.POST("/v1/governance/rules/:id/versions", s.addRuleVersion, adm)
	e.PATCH("/v1/governance/rules/:id", s.patchRule, adm)
	e.POST("/v1/governance/rules/:id/archive", s.archiveRule, adm)
	e.DELETE("/v1/governance/rules/:id", s.deleteRule, adm)
	e.POST("/v1/governance/validate", s.validateRule, adm)
	e.POST("/v1/governance/preview", s.previewRule, adm)
	e.GET("/v1/governance/status", s.governanceStatus, adm)
	e.GET("/v1/governance/customers/:kind/:id", s.governedCustomer, adm)
}

func (s *Server) createRule(c echo.Context) error {
	var d gov.Definition
	if err := s.decodeJSON(c, &d); err != nil {
		return err
	}
	r, err := s.rules.Create(c.Request().Context(), d, actor(c))
	if err != nil {
		return writeFailed(err)
	}
	s.kick(c.Request().Context())
	return c.JSON(http.StatusCreated, s.renderRule(r))
}

func (s *Server) listRules(c echo.Context) error {
	rs, err := s.rules.List(c.Request().Context())
	if err != nil {
		return readFailed(err)
	}
	out := make([]ruleJSON, len(rs))
	for i, r := range rs {
		out[i] = s.renderRule(r)
	}
	return c.JSON(http.StatusOK, map[string]any{"rules": out})
}

func (s *Server) getRule(c echo.Context) error {
	r, err := s.rules.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return readFailed(err)
	}
	return c.JSON(http.StatusOK, s.renderRule(r))
}

func (s *Server) ruleHistory(c echo.Context) error {
	r, err := s.rules.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return readFailed(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"id": r.ID, "versions": r.Versions, "changes": r.Changes})
}

func (s *Server) addRuleVersion(c echo.Context) error {
	var d gov.Definition
	if err := s.decodeJSON(c, &d); err != nil {
		return err
	}
	r, err := s.rules.AddVersion(c.Request().Context(), c.Param("id"), d, actor(c))
	if err != nil {
		return writeFailed(err)
	}
	s.kick(c.Request().Context())
	return c.JSON(http.StatusCreated, s.renderRule(r))
}

// patchRule changes only the name and the active flag.
func (s *Server) patchRule(c echo.Context) error {
	p, err := s.decodePatch(c, false, "The condition, response, block and routes change through POST /v1/governance/rules/{id}/versions")
	if err != nil {
		return err
	}
	r, err := s.rules.Patch(c.Request().Context(), c.Param("id"), p.name, p.active, actor(c))
	if err != nil {
		return writeFailed(err)
	}
	s.kick(c.Request().Context())
	return c.JSON(http.StatusOK, s.renderRule(r))
}

func (s *Server) archiveRule(c echo.Context) error {
	r, err := s.rules.Archive(c.Request().Context(), c.Param("id"), actor(c))
	if err != nil {
		return writeFailed(err)
	}
	s.kick(c.Request().Context())
	return c.JSON(http.StatusOK, s.renderRule(r))
}

func (s *Server) deleteRule(c echo.Context) error {
	c.Response().Header().Set("Allow", "GET, PATCH")
	return fault.New(http.StatusMethodNotAllowed, "rules_are_not_deleted",
		"governance rules are never deleted, so that every block stays explainable: archive it with POST /v1/governance/rules/{id}/archive")
}

// validateRule checks a definition without storing it (the console's
// live validation): {valid, errors}.
func (s *Server) validateRule(c echo.Context) error {
	var d gov.Definition
	if err := s.decodeJSON(c, &d); err != nil {
		return err
	}
	_, err := s.rules.Check(c.Request().Context(), d)
	if err == nil {
		return c.JSON(http.StatusOK, map[string]any{"valid": true, "errors": []any{}})
	}
	if es, ok := fault.AsList(err); ok {
		return c.JSON(http.StatusOK, map[string]any{"valid": false, "errors": es})
	}
	return readFailed(err)
}

// previewRule runs an unsaved rule over today's customers.
func (s *Server) previewRule(c echo.Context) error {
	var d gov.Definition
	if err := s.decodeJSON(c, &d); err != nil {
		return err
	}
	p, err := s.gov.eval.Preview(c.Request().Context(), d)
	if err != nil {
		return readFailed(err)
	}
	return c.JSON(http.StatusOK, p)
}

// governanceStatus is the last round: when, what the agents are served
// (ETag), and whom each active rule holds for.
func (s *Server) governanceStatus(c echo.Context) error {
	snap := s.gov.current()
	type ruleStatus struct {
		ID       string             `json:"id"`
		Name     string             `json:"name"`
		Matching []governance.Match `json:"matching"`
		Failed   string             `json:"failed,omitempty"`
	}
	out := struct {
		EvaluatedAt *time.Time     `json:"evaluated_at"`
		ETag        string         `json:"etag"`
		Evaluated   map[string]int `json:"evaluated"`
		Rules       []ruleStatus   `json:"rules"`
	}{ETag: snap.ETag, Evaluated: snap.Evaluated, Rules: []ruleStatus{}}
	if !snap.At.IsZero() {
		out.EvaluatedAt = &snap.At
	}
	for _, r := range snap.Rules {
		ms := snap.Matches[r.ID]
		if ms == nil {
			ms = []governance.Match{}
		}
		out.Rules = append(out.Rules, ruleStatus{ID: r.ID, Name: r.Name, Matching: ms, Failed: snap.Failed[r.ID]})
	}
	return c.JSON(http.StatusOK, out)
}

// governedCustomer says which rules hold for a customer now, and why.
func (s *Server) governedCustomer(c echo.Context) error {
	kind := c.Param("kind")
	switch kind {
	case "companies", gov.AppliesToCompany:
		kind = gov.AppliesToCompany
	case "users", gov.AppliesToUser:
		kind = gov.AppliesToUser
	default:
		return fault.Invalid(wire.CodeInvalidValue, "kind", `the path is /v1/governance/customers/company/{id} or /user/{id}, got "`+kind+`"`)
	}
	snap := s.gov.current()
	out := map[string]any{"customer": c.Param("id"), "applies_to": kind, "rules": snap.Governing(kind, c.Param("id"))}
	if !snap.At.IsZero() {
		out["evaluated_at"] = snap.At
	}
	return c.JSON(http.StatusOK, out)
}

// getMoesifConfig serves the membership the agents enforce: for each
// customer a rule holds for, the rule and its placeholders' values.
func (s *Server) getMoesifConfig(c echo.Context) error {
	snap := s.gov.current()
	c.Response().Header().Set("X-Moesif-Config-ETag", snap.ETag)
	return c.JSONBlob(http.StatusOK, snap.ConfigDoc)
}

// getMoesifRules serves the active rules in Moesif's shape.
func (s *Server) getMoesifRules(c echo.Context) error {
	snap := s.gov.current()
	c.Response().Header().Set("X-Moesif-Config-ETag", snap.ETag)
	c.Response().Header().Set("X-Moesif-Rules-Tag", snap.ETag)
	return c.JSONBlob(http.StatusOK, snap.RulesDoc)
}
