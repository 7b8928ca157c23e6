package governance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// Errors of reads and changes; a refused change is a fault.Error naming
// the field at fault.
var (
	ErrNotFound = fault.NotFound("not_found", "no such governance rule")
	ErrArchived = fault.Conflict("archived", "", "the rule is archived: it cannot change any more (its history stays readable)")
)

// Change kinds, as meters have.
const (
	KindCreated  = "created"
	KindVersion  = "version"
	KindRenamed  = "renamed"
	KindStatus   = "status"
	KindArchived = "archived"
)

// Rule is a rule's current state, folded from its records.
type Rule struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	AppliesTo      string    `json:"applies_to"`
	Status         string    `json:"status"` // active, inactive, archived
	CurrentVersion int       `json:"current_version"`
	CreatedAt      time.Time `json:"created_at"`
	CreatedBy      string    `json:"created_by"`
	UpdatedAt      time.Time `json:"updated_at"`
	Versions       []Version `json:"versions"`
	Changes        []Change  `json:"-"`
}

// Active reports whether the rule governs now.
func (r *Rule) Active() bool { return r.Status == StatusActive }

// Latest is the version in force.
func (r *Rule) Latest() Version { return r.Versions[len(r.Versions)-1] }

// Version is one immutable version of a rule; it is in force from its
// creation until the next one.
type Version struct {
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	Spec
}

// Change is one entry of the audit trail.
type Change struct {
	Seq     int             `json:"seq"`
	Kind    string          `json:"kind"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Version int             `json:"version,omitempty"`
	Detail  json.RawMessage `json:"detail"`
}

// record is one journal entry's body.
type record struct {
	Kind      string `json:"kind"`
	Actor     string `json:"actor"`
	Version   int    `json:"version,omitempty"`
	Name      string `json:"name,omitempty"`
	AppliesTo string `json:"applies_to,omitempty"`
	Status    string `json:"status,omitempty"`
	Previous  string `json:"previous,omitempty"`
	Spec      *Spec  `json:"spec,omitempty"`
}

// Registry creates and changes rules in the store's journal (stream
// storage.StreamGovernanceRules, key "<rule id>/<seq>"): a change that
// raced another for the same sequence number is refused by the journal.
type Registry struct {
	journal storage.Journal
	// meters says how a meter groups (for usage()); see MeterGroups.
	meters func(ctx context.Context, id string) (string, bool)
	now    func() time.Time
	mu     sync.Mutex
}

// NewRegistry makes a registry over a store's journal; meters says how a
// meter groups, ok false when there is none (see MeterGroups).
func NewRegistry(j storage.Journal, meters func(ctx context.Context, id string) (string, bool), now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{journal: j, meters: meters, now: func() time.Time { return now().UTC().Truncate(time.Millisecond) }}
}

func (g *Registry) meterGroups(ctx context.Context) MeterGroups {
	return func(id string) (string, bool) { return g.meters(ctx, id) }
}

// Check validates a definition without storing it.
func (g *Registry) Check(ctx context.Context, d Definition) (*rules.Condition, error) {
	return Check(d, g.meterGroups(ctx))
}

// Create validates a definition and records version 1. A rule starts
// inactive unless the definition says active.
func (g *Registry) Create(ctx context.Context, d Definition, actor string) (*Rule, error) {
	if _, err := g.Check(ctx, d); err != nil {
		return nil, err
	}
	status := StatusInactive
	if d.Active {
		status = StatusActive
	}
	spec := d.Spec()
	g.mu.Lock()
	defer g.mu.Unlock()
	id := newID()
	rec := record{Kind: KindCreated, Actor: rules.Actor(actor), Version: 1, Name: strings.TrimSpace(d.Name),
		AppliesTo: d.AppliesTo, Status: status, Spec: &spec}
	return g.append(ctx, id, nil, rec)
}

// AddVersion records a new version, in force from now. applies_to is
// fixed (empty or the same); name and active change with Patch.
func (g *Registry) AddVersion(ctx context.Context, id string, d Definition, actor string) (*Rule, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, entries, err := g.loadChangeable(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case d.AppliesTo != "" && d.AppliesTo != r.AppliesTo:
		return nil, fault.Invalid("immutable_field", "applies_to",
			"applies_to is fixed when a rule is created; create a new rule to govern the other kind of customer")
	case d.Name != "" || d.Active:
		return nil, fault.Invalid("immutable_field", map[bool]string{true: "name", false: "active"}[d.Name != ""],
			"a version holds condition, response, block and routes; change name and active with PATCH")
	}
	spec := d.Spec()
	if _, err := CheckSpec(spec, r.AppliesTo, g.meterGroups(ctx)); err != nil {
		return nil, err
	}
	return g.append(ctx, id, entries, record{Kind: KindVersion, Actor: rules.Actor(actor), Version: r.CurrentVersion + 1, Spec: &spec})
}

// Patch changes the name and/or turns the rule on or off (nil leaves
// it), one record per change.
func (g *Registry) Patch(ctx context.Context, id string, name *string, active *bool, actor string) (*Rule, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, entries, err := g.loadChangeable(ctx, id)
	if err != nil {
		return nil, err
	}
	if name != nil && strings.TrimSpace(*name) != r.Name {
		if n := len([]rune(strings.TrimSpace(*name))); n == 0 || n > maxNameRunes {
			return nil, fault.List{fieldError("name", rules.CodeInvalidValue, "name is required, at most %d characters", maxNameRunes)}
		}
		if r, err = g.append(ctx, id, entries, record{Kind: KindRenamed, Actor: rules.Actor(actor), Name: strings.TrimSpace(*name), Previous: r.Name}); err != nil {
			return nil, err
		}
		if _, entries, err = g.load(ctx, id); err != nil {
			return nil, err
		}
	}
	if active != nil {
		status := map[bool]string{true: StatusActive, false: StatusInactive}[*active]
		if status != r.Status {
			return g.append(ctx, id, entries, record{Kind: KindStatus, Actor: rules.Actor(actor), Status: status, Previous: r.Status})
		}
	}
	return r, nil
}

// Archive retires a rule for good: it stops governing and cannot change
// again; its history stays readable.
func (g *Registry) Archive(ctx context.Context, id, actor string) (*Rule, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, entries, err := g.loadChangeable(ctx, id)
	if err != nil {
		return nil, err
	}
	return g.append(ctx, id, entries, record{Kind: KindArchived, Actor: rules.Actor(actor), Previous: r.Status})
}

// Get returns one rule with its audit trail (Rule.Changes).
func (g *Registry) Get(ctx context.Context, id string) (*Rule, error) {
	r, _, err := g.load(ctx, id)
	return r, err
}

// List returns every rule, newest first.
func (g *Registry) List(ctx context.Context) ([]*Rule, error) {
	entries, err := g.journal.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamGovernanceRules})
	if err != nil {
		return nil, err
	}
	byID := map[string][]storage.JournalEntry{}
	for _, e := range entries {
		id, _, _ := strings.Cut(e.Key, "/")
		byID[id] = append(byID[id], e)
	}
	out := make([]*Rule, 0, len(byID))
	for _, es := range byID {
		r, err := fold(es)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].CreatedAt.Equal(out[b].CreatedAt) {
			return out[a].CreatedAt.After(out[b].CreatedAt)
		}
		return out[a].ID < out[b].ID
	})
	return out, nil
}

func (g *Registry) load(ctx context.Context, id string) (*Rule, []storage.JournalEntry, error) {
	if !validID(id) {
		return nil, nil, ErrNotFound
	}
	all, err := g.journal.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamGovernanceRules})
	if err != nil {
		return nil, nil, err
	}
	var entries []storage.JournalEntry
	for _, e := range all {
		if strings.HasPrefix(e.Key, id+"/") {
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return nil, nil, ErrNotFound
	}
	r, err := fold(entries)
	return r, entries, err
}

// loadChangeable loads a rule that may still change: not archived.
func (g *Registry) loadChangeable(ctx context.Context, id string) (*Rule, []storage.JournalEntry, error) {
	r, entries, err := g.load(ctx, id)
	if err == nil && r.Status == StatusArchived {
		err = ErrArchived
	}
	return r, entries, err
}

// append writes the rule's next record and returns the rule with it.
func (g *Registry) append(ctx context.Context, id string, entries []storage.JournalEntry, rec record) (*Rule, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	e := storage.JournalEntry{Stream: storage.StreamGovernanceRules, Key: fmt.Sprintf("%s/%06d", id, len(entries)+1), At: g.now(), Body: string(body)}
	if err := g.journal.AppendJournal(ctx, e); err != nil {
		return nil, err
	}
	return fold(append(entries[:len(entries):len(entries)], e))
}

// fold replays one rule's entries into its state.
func fold(entries []storage.JournalEntry) (*Rule, error) {
	sort.Slice(entries, func(a, b int) bool { return entries[a].Key < entries[b].Key })
	var r Rule
	for i, e := range entries {
		id, seqText, _ := strings.Cut(e.Key, "/")
		if seq, _ := strconv.Atoi(seqText); seq != i+1 {
			return nil, fmt.Errorf("governance rule %s: record %d has key %s: the journal has a gap", id, i+1, e.Key)
		}
		var rec record
		if err := json.Unmarshal([]byte(e.Body), &rec); err != nil {
			return nil, fmt.Errorf("governance rule %s: %w", id, err)
		}
		r.Changes = append(r.Changes, Change{Seq: i + 1, Kind: rec.Kind, At: e.At, Actor: rec.Actor, Version: rec.Version, Detail: detail(rec)})
		r.UpdatedAt = e.At
		switch rec.Kind {
		case KindCreated:
			r = Rule{ID: id, Name: rec.Name, AppliesTo: rec.AppliesTo, Status: rec.Status, CreatedAt: e.At, CreatedBy: rec.Actor,
				UpdatedAt: e.At, Changes: r.Changes}
			r.Versions = []Version{{Version: 1, CreatedAt: e.At, CreatedBy: rec.Actor, Spec: *rec.Spec}}
		case KindVersion:
			r.Versions = append(r.Versions, Version{Version: rec.Version, CreatedAt: e.At, CreatedBy: rec.Actor, Spec: *rec.Spec})
		case KindRenamed:
			r.Name = rec.Name
		case KindStatus:
			r.Status = rec.Status
		case KindArchived:
			r.Status = StatusArchived
		}
	}
	if r.ID == "" {
		return nil, fmt.Errorf("governance rule %s: no creation record", entries[0].Key)
	}
	r.CurrentVersion = len(r.Versions)
	return &r, nil
}

// detail is what a change recorded, for the audit trail.
func detail(rec record) json.RawMessage {
	d := map[string]any{}
	switch rec.Kind {
	case KindCreated:
		d["name"], d["applies_to"], d["status"], d["spec"] = rec.Name, rec.AppliesTo, rec.Status, rec.Spec
	case KindVersion:
		d["spec"] = rec.Spec
	case KindRenamed:
		d["name"], d["previous"] = rec.Name, rec.Previous
	case KindStatus:
		d["status"], d["previous"] = rec.Status, rec.Previous
	case KindArchived:
		d["previous"] = rec.Previous
	}
	b, _ := json.Marshal(d)
	return b
}

// newID is 24 hex digits, the shape of the ids Moesif's agents receive from
// Moesif (a rule's id is its _id for them).
func newID() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func validID(id string) bool {
	if len(id) != 24 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
