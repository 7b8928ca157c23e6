// Package registry keeps billing meters as append-only versions. Every
// change (creation, a new version, a rename, a slug, on/off, archiving) is a new
// storage.MeterRecord; a meter's state is the fold of its records, so its
// whole history stays readable for audit and nothing is updated in place.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// Errors of reads and changes; a refused change is a fault.Error naming
// the field at fault.
var (
	ErrNotFound = fault.NotFound("not_found", "no such meter")
	ErrArchived = fault.Conflict("archived", "", "the meter is archived: it cannot change any more (its history stays readable)")
)

// Spec is what a version fixes: the expressions and the billing binding.
// Aggregation and group_by are fixed at creation (they are the meter's
// unit and its billed customer); a version must repeat them or leave them
// empty.
type Spec struct {
	Filter        string `json:"filter"`
	Value         string `json:"value"`
	Aggregation   string `json:"aggregation"`
	GroupBy       string `json:"group_by"`
	StripePriceID string `json:"stripe_price_id"`
	Rounding      string `json:"rounding"`
}

// Version is one immutable version of a meter.
type Version struct {
	Version int `json:"version"`
	// EffectiveFrom is when the version starts to apply; nil for version
	// 1, which applies to all history before version 2.
	EffectiveFrom *time.Time `json:"effective_from"`
	CreatedAt     time.Time  `json:"created_at"`
	CreatedBy     string     `json:"created_by"`
	Spec
}

// Meter is a meter's current state, folded from its records.
type Meter struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Slug           string    `json:"slug,omitempty"` // optional, unique (slug.go)
	Status         string    `json:"status"`         // active, inactive, archived
	CurrentVersion int       `json:"current_version"`
	CreatedAt      time.Time `json:"created_at"`
	CreatedBy      string    `json:"created_by"`
	UpdatedAt      time.Time `json:"updated_at"`
	Versions       []Version `json:"versions"`
	Changes        []Change  `json:"-"`
}

// Change is one entry of the audit trail.
type Change struct {
	Seq           int             `json:"seq"`
	Kind          string          `json:"kind"`
	At            time.Time       `json:"at"`
	Actor         string          `json:"actor"`
	Version       int             `json:"version,omitempty"`
	EffectiveFrom *time.Time      `json:"effective_from,omitempty"`
	Detail        json.RawMessage `json:"detail"`
}

// Latest is the version with the highest number.
func (m *Meter) Latest() Version { return m.Versions[len(m.Versions)-1] }

// Definition is version v's definition in the language's terms.
func (m *Meter) Definition(v Version) rules.Definition {
	return rules.Definition{Name: m.Name, Filter: v.Filter, Value: v.Value, Aggregation: v.Aggregation,
		GroupBy: v.GroupBy, Status: m.Status, StripePriceID: v.StripePriceID, Rounding: v.Rounding}
}

// Registry creates and changes meters; one per process (it serialises
// changes so that record sequence numbers never collide).
type Registry struct {
	log storage.MeterLog
	now func() time.Time
	mu  sync.Mutex
}

// New makes a registry over a store's meter log. now may be nil.
func New(log storage.MeterLog, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	// The store keeps milliseconds: answer with what a later read returns.
	return &Registry{log: log, now: func() time.Time { return now().UTC().Truncate(time.Millisecond) }}
}

// Create validates a definition and records version 1, with a slug
// unless slug is "". A meter starts inactive unless the definition says
// active.
func (r *Registry) Create(ctx context.Context, d rules.Definition, slug, actor string) (*Meter, error) {
	if d.Status == "" {
		d.Status = rules.StatusInactive
	}
	if d.Status == rules.StatusArchived {
		return nil, fault.Invalid("invalid_value", "status", "a meter cannot be created archived")
	}
	if slug != "" {
		if err := checkSlug(slug); err != nil {
			return nil, err
		}
	}
	m, err := rules.Compile(d)
	if err != nil {
		return nil, err
	}
	d = m.Def
	body, _ := json.Marshal(struct {
		Name   string `json:"name"`
		Slug   string `json:"slug,omitempty"`
		Status string `json:"status"`
		Spec
	}{d.Name, slug, d.Status, specOf(d)})
	r.mu.Lock()
	defer r.mu.Unlock()
	if slug != "" {
		if err := r.claimable(ctx, slug, ""); err != nil {
			return nil, err
		}
	}
	id := idPrefix + randomHex(8)
	rec := storage.MeterRecord{MeterID: id, Seq: 1, Kind: storage.MeterCreated, At: r.now().UTC(),
		Actor: rules.Actor(actor), Version: 1, Body: string(body)}
	if err := r.log.AppendMeterRecord(ctx, rec); err != nil {
		return nil, err
	}
	return fold([]storage.MeterRecord{rec})
}

// AddVersion records a new version effective from the given time, which
// must not lie in the past (usage before now may already be billed) nor
// before the latest version's start. The zero time means now.
func (r *Registry) AddVersion(ctx context.Context, id string, s Spec, effectiveFrom time.Time, actor string) (*Meter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, recs, err := r.loadLive(ctx, id)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	if effectiveFrom.IsZero() {
		effectiveFrom = now
	}
	effectiveFrom = effectiveFrom.UTC().Truncate(time.Millisecond)
	if effectiveFrom.Before(now.Add(-clockTolerance)) {
		return nil, fault.Invalid("effective_from_in_past", "effective_from", fmt.Sprintf(
			"effective_from %s is in the past: usage before now may already be billed, so a version can only take effect from now on",
			effectiveFrom.Format(time.RFC3339)))
	}
	if last := m.Latest(); last.EffectiveFrom != nil && !effectiveFrom.After(*last.EffectiveFrom) {
		return nil, fault.Invalid("effective_from_in_past", "effective_from", fmt.Sprintf(
			"effective_from must be after version %d's (%s)", last.Version, last.EffectiveFrom.Format(time.RFC3339)))
	}
	cur := m.Latest()
	if s.Aggregation == "" {
		s.Aggregation = cur.Aggregation
	}
	if s.GroupBy == "" {
		s.GroupBy = cur.GroupBy
	}
	if s.Aggregation != cur.Aggregation || s.GroupBy != cur.GroupBy {
		return nil, fault.Invalid("immutable_field", map[bool]string{true: "aggregation", false: "group_by"}[s.Aggregation != cur.Aggregation],
			"aggregation and group_by are fixed when a meter is created (they are its unit and its billed customer); create a new meter to change them")
	}
	d := rules.Definition{Name: m.Name, Filter: s.Filter, Value: s.Value, Aggregation: s.Aggregation,
		GroupBy: s.GroupBy, Status: m.Status, StripePriceID: s.StripePriceID, Rounding: s.Rounding}
	cm, err := rules.Compile(d)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(specOf(cm.Def))
	rec := storage.MeterRecord{MeterID: id, Seq: len(recs) + 1, Kind: storage.MeterVersion, At: now,
		Actor: rules.Actor(actor), Version: cur.Version + 1, EffectiveFrom: effectiveFrom, Body: string(body)}
	return r.append(ctx, recs, rec)
}

// clockTolerance lets a client whose clock is slightly behind ask for
// "now".
const clockTolerance = time.Minute

// Patch changes the name and/or the active flag (nil leaves it), one
// record per change.
func (r *Registry) Patch(ctx context.Context, id string, name *string, active *bool, actor string) (*Meter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, recs, err := r.loadLive(ctx, id)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	if name != nil && *name != m.Name {
		d := m.Definition(m.Latest())
		d.Name = *name
		if _, err := rules.CompileSaved(d); err != nil { // checks the name
			return nil, err
		}
		body, _ := json.Marshal(map[string]string{"name": *name, "previous": m.Name})
		if _, err = r.append(ctx, recs, storage.MeterRecord{MeterID: id, Seq: len(recs) + 1, Kind: storage.MeterRenamed,
			At: now, Actor: rules.Actor(actor), Body: string(body)}); err != nil {
			return nil, err
		}
		if m, recs, err = r.load(ctx, id); err != nil {
			return nil, err
		}
	}
	if active != nil {
		status := rules.StatusInactive
		if *active {
			status = rules.StatusActive
		}
		if status != m.Status {
			body, _ := json.Marshal(map[string]string{"status": status, "previous": m.Status})
			return r.append(ctx, recs, storage.MeterRecord{MeterID: id, Seq: len(recs) + 1, Kind: storage.MeterStatus,
				At: now, Actor: rules.Actor(actor), Body: string(body)})
		}
	}
	return m, nil
}

// Archive retires a meter for good: it stops billing and cannot change
// again, and its history stays readable.
func (r *Registry) Archive(ctx context.Context, id, actor string) (*Meter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, recs, err := r.loadLive(ctx, id)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"previous": m.Status})
	return r.append(ctx, recs, storage.MeterRecord{MeterID: id, Seq: len(recs) + 1, Kind: storage.MeterArchived,
		At: r.now().UTC(), Actor: rules.Actor(actor), Body: string(body)})
}

// Get returns one meter with its audit trail (Meter.Changes).
func (r *Registry) Get(ctx context.Context, id string) (*Meter, error) {
	m, _, err := r.load(ctx, id)
	return m, err
}

// List returns every meter, newest first.
func (r *Registry) List(ctx context.Context) ([]*Meter, error) {
	recs, err := r.log.MeterRecords(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []*Meter
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].MeterID == recs[i].MeterID {
			j++
		}
		m, err := fold(recs[i:j])
		if err != nil {
			return nil, err
		}
		out = append(out, m)
		i = j
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].CreatedAt.After(out[b].CreatedAt) })
	return out, nil
}

func (r *Registry) load(ctx context.Context, id string) (*Meter, []storage.MeterRecord, error) {
	recs, err := r.log.MeterRecords(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if len(recs) == 0 {
		return nil, nil, ErrNotFound
	}
	m, err := fold(recs)
	return m, recs, err
}

// loadLive loads a meter that may still change: ErrArchived for an
// archived one.
func (r *Registry) loadLive(ctx context.Context, id string) (*Meter, []storage.MeterRecord, error) {
	m, recs, err := r.load(ctx, id)
	if err == nil && m.Status == rules.StatusArchived {
		return nil, nil, ErrArchived
	}
	return m, recs, err
}

func (r *Registry) append(ctx context.Context, recs []storage.MeterRecord, rec storage.MeterRecord) (*Meter, error) {
	if err := r.log.AppendMeterRecord(ctx, rec); err != nil {
		return nil, err
	}
	return fold(append(recs[:len(recs):len(recs)], rec))
}

func specOf(d rules.Definition) Spec {
	return Spec{Filter: d.Filter, Value: d.Value, Aggregation: d.Aggregation, GroupBy: d.GroupBy,
		StripePriceID: d.StripePriceID, Rounding: d.Rounding}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
