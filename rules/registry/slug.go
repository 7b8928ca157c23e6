package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// A slug is a meter's optional second name for APIs that address meters
// by a readable key (OpenMeter's /api/v1/meters/{idOrSlug}). Every slug
// OpenMeter accepts (^[a-z0-9]+(?:_[a-z0-9]+)*$, at most 64) is one here.
var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// idPrefix starts every meter id; no slug may, so that an id and a slug
// never read alike.
const idPrefix = "mtr_"

// CodeSlugTaken is the code of a slug another meter holds or
// held: a conflict, not a bad value.
const CodeSlugTaken = "slug_taken"

func checkSlug(slug string) error {
	switch {
	case !slugPattern.MatchString(slug):
		return fault.Invalid("invalid_value", "slug", "slug must be 1 to 64 characters of a-z, 0-9, _ and -, starting with a letter or digit, got "+quote(slug))
	case strings.HasPrefix(slug, idPrefix):
		return fault.Invalid("invalid_value", "slug", "slug must not start with "+quote(idPrefix)+": meter ids do")
	}
	return nil
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// slugClaims lists, per slug, the meters that ever held it, in the order
// of their claims. A slug a meter once had is never given to another (a
// client that queries by slug never silently reads another meter), and
// two processes racing for one slug are settled by the first claim.
func slugClaims(ms []*Meter) map[string][]*Meter {
	type claim struct {
		m  *Meter
		at time.Time
	}
	claims := map[string][]claim{}
	for _, m := range ms {
		seen := map[string]bool{}
		for _, ch := range m.Changes {
			if s := slugOf(ch); s != "" && !seen[s] {
				seen[s] = true
				claims[s] = append(claims[s], claim{m, ch.At})
			}
		}
	}
	out := make(map[string][]*Meter, len(claims))
	for s, cs := range claims {
		slices.SortFunc(cs, func(a, b claim) int { return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.m.ID, b.m.ID)) })
		for _, c := range cs {
			out[s] = append(out[s], c.m)
		}
	}
	return out
}

// slugOf is the slug a change gave its meter ("" when none).
func slugOf(ch Change) string {
	if ch.Kind != storage.MeterCreated && ch.Kind != storage.MeterSlug {
		return ""
	}
	var b struct{ Slug string }
	_ = json.Unmarshal(ch.Detail, &b)
	return b.Slug
}

// claimable refuses a slug that a meter other than id holds or held.
func (r *Registry) claimable(ctx context.Context, slug, id string) error {
	ms, err := r.List(ctx)
	if err != nil {
		return err
	}
	for _, m := range slugClaims(ms)[slug] {
		if m.ID != id {
			return fault.Conflict(CodeSlugTaken, "slug", "slug "+quote(slug)+" is taken by meter "+m.ID+
				" (a slug a meter ever had stays its own, so that a query by slug never reads another meter)")
		}
	}
	return nil
}

// SetSlug gives a meter a slug or changes it (one record); the meter
// keeps its former slugs from other meters.
func (r *Registry) SetSlug(ctx context.Context, id, slug, actor string) (*Meter, error) {
	if err := checkSlug(slug); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	m, recs, err := r.loadLive(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Slug == slug {
		return m, nil
	}
	if err := r.claimable(ctx, slug, id); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"slug": slug, "previous": m.Slug})
	return r.append(ctx, recs, storage.MeterRecord{MeterID: id, Seq: len(recs) + 1, Kind: storage.MeterSlug,
		At: r.now().UTC(), Actor: rules.Actor(actor), Body: string(body)})
}

// GetByIDOrSlug returns the meter with this id, or else the one whose
// current slug this is (the first to claim it).
func (r *Registry) GetByIDOrSlug(ctx context.Context, key string) (*Meter, error) {
	if strings.HasPrefix(key, idPrefix) {
		return r.Get(ctx, key)
	}
	if checkSlug(key) != nil {
		return nil, ErrNotFound
	}
	ms, err := r.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range slugClaims(ms)[key] {
		if m.Slug == key {
			return m, nil
		}
	}
	return nil, ErrNotFound
}
