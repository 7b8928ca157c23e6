package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/duckdb"
)

var ctx = context.Background()

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t *testing.T) (*Registry, storage.Store, *clock) {
	st, err := duckdb.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	return New(st, c.now), st, c
}

var searchCalls = rules.Definition{Name: "Search calls", Filter: `response.status == 200 and request.route startsWith "/v1/search"`,
	Aggregation: rules.AggCount, StripePriceID: "price_123"}

// rawLog is the meter_log table as stored, row by row.
func rawLog(t *testing.T, st storage.Store) []string {
	t.Helper()
	rows, err := st.Query(ctx, `SELECT meter_id, seq, kind, at_ms, actor, version, effective_from_ms, body FROM meter_log ORDER BY meter_id, seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, kind, actor, body string
		var seq, version int32
		var at, eff int64
		if err := rows.Scan(&id, &seq, &kind, &at, &actor, &version, &eff, &body); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(id, seq, kind, at, actor, version, eff, body))
	}
	return out
}

// TestEveryChangeOnlyAppends compares the raw table before and after every
// kind of change: each leaves every earlier row exactly as it was and adds
// rows only.
func TestEveryChangeOnlyAppends(t *testing.T) {
	r, st, c := setup(t)
	m, err := r.Create(ctx, searchCalls, "", "ann")
	if err != nil {
		t.Fatal(err)
	}
	name := "Search calls (v2 pricing)"
	on, off := true, false
	changes := []struct {
		what string
		do   func() error
	}{
		{"version", func() error {
			_, err := r.AddVersion(ctx, m.ID, Spec{Filter: `response.status < 300 and request.route startsWith "/v1/search"`, StripePriceID: "price_456"}, c.t.Add(time.Hour), "bob")
			return err
		}},
		{"rename", func() error { _, err := r.Patch(ctx, m.ID, &name, nil, "ann"); return err }},
		{"slug", func() error { _, err := r.SetSlug(ctx, m.ID, "search_calls", "ann"); return err }},
		{"activate", func() error { _, err := r.Patch(ctx, m.ID, nil, &on, "ann"); return err }},
		{"deactivate", func() error { _, err := r.Patch(ctx, m.ID, nil, &off, "ann"); return err }},
		{"archive", func() error { _, err := r.Archive(ctx, m.ID, "ann"); return err }},
		{"refused change", func() error {
			if _, err := r.Patch(ctx, m.ID, &name, nil, "x"); !errors.Is(err, ErrArchived) {
				return fmt.Errorf("patch of an archived meter: %v", err)
			}
			return nil
		}},
	}
	before := rawLog(t, st)
	for _, ch := range changes {
		c.t = c.t.Add(time.Minute)
		if err := ch.do(); err != nil {
			t.Fatalf("%s: %v", ch.what, err)
		}
		after := rawLog(t, st)
		if len(after) < len(before) || strings.Join(after[:len(before)], "\n") != strings.Join(before, "\n") {
			t.Fatalf("%s changed stored rows:\nbefore %q\nafter  %q", ch.what, before, after)
		}
		want := 1
		if ch.what == "refused change" {
			want = 0
		}
		if len(after)-len(before) != want {
			t.Fatalf("%s added %d rows, want %d", ch.what, len(after)-len(before), want)
		}
		before = after
	}
	got, err := r.Get(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != rules.StatusArchived || got.Name != name || got.Slug != "search_calls" || got.CurrentVersion != 2 || len(got.Changes) != 7 {
		t.Fatalf("folded meter %+v", got)
	}
	if got.Versions[1].StripePriceID != "price_456" || got.Versions[1].CreatedBy != "bob" || got.Versions[0].Filter != searchCalls.Filter {
		t.Fatalf("versions %+v", got.Versions)
	}
}

func TestCreateValidatesAndDefaults(t *testing.T) {
	r, _, _ := setup(t)
	m, err := r.Create(ctx, searchCalls, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != rules.StatusInactive || m.CreatedBy != "admin" || m.Latest().Value != "1" || m.Latest().GroupBy != "company_id" {
		t.Fatalf("defaults: %+v", m)
	}
	bad := searchCalls
	bad.Filter = "response.stauts == 200"
	_, err = r.Create(ctx, bad, "", "")
	es, ok := fault.AsList(err)
	if !ok || es[0].Field != "filter" || es[0].Code != "unknown_field" || !strings.Contains(es[0].Message, "response.status") {
		t.Fatalf("bad filter: %v", err)
	}
	arch := searchCalls
	arch.Status = rules.StatusArchived
	var ce *fault.Error
	if _, err := r.Create(ctx, arch, "", ""); !errors.As(err, &ce) || ce.Field != "status" {
		t.Fatalf("archived at creation: %v", err)
	}
	list, _ := r.List(ctx)
	if len(list) != 1 {
		t.Fatalf("refused creations were stored: %d meters", len(list))
	}
}

func TestVersionRules(t *testing.T) {
	r, _, c := setup(t)
	m, _ := r.Create(ctx, searchCalls, "", "")
	var ce *fault.Error
	if _, err := r.AddVersion(ctx, m.ID, Spec{Filter: "true"}, c.t.Add(-time.Hour), ""); !errors.As(err, &ce) || ce.Code != "effective_from_in_past" {
		t.Fatalf("past effective_from: %v", err)
	}
	if _, err := r.AddVersion(ctx, m.ID, Spec{Filter: "true", Aggregation: rules.AggSum, Value: "metadata.tokens"}, time.Time{}, ""); !errors.As(err, &ce) || ce.Field != "aggregation" {
		t.Fatalf("aggregation change: %v", err)
	}
	if _, err := r.AddVersion(ctx, m.ID, Spec{Filter: "1 +"}, time.Time{}, ""); err == nil {
		t.Fatal("invalid filter accepted")
	}
	v2 := c.t.Add(2 * time.Hour)
	if _, err := r.AddVersion(ctx, m.ID, Spec{Filter: "true"}, v2, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddVersion(ctx, m.ID, Spec{Filter: "false"}, v2.Add(-time.Minute), ""); !errors.As(err, &ce) {
		t.Fatalf("version before the previous one: %v", err)
	}
	v3 := v2.Add(time.Hour)
	m, err := r.AddVersion(ctx, m.ID, Spec{Filter: "false"}, v3, "")
	if err != nil {
		t.Fatal(err)
	}
	// Spans over a window crossing both boundaries.
	spans, err := m.Spans(c.t, v3.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 3 || !spans[0].From.Equal(c.t) || !spans[0].To.Equal(v2) || !spans[1].From.Equal(v2) ||
		!spans[1].To.Equal(v3) || spans[2].Version != 3 || !spans[2].To.Equal(v3.Add(time.Hour)) {
		t.Fatalf("spans %+v", spans)
	}
	if spans, _ := m.Spans(c.t.Add(-48*time.Hour), c.t); len(spans) != 1 || spans[0].Version != 1 {
		t.Fatalf("history before version 2 uses version 1: %+v", spans)
	}
	if _, err := r.Get(ctx, "mtr_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown meter: %v", err)
	}
}
