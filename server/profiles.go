package server

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/server/ingest"
	"github.com/meterd/meterd/storage"
)

// profileCache holds every profile's updates and their merge: updates are
// applied in (ModifiedAt, ReceivedAt) order and merged recursively, newest
// key wins, so a late-arriving older update cannot overwrite newer traits.
type profileCache struct {
	mu      sync.RWMutex
	updates map[string][]storage.Profile // kind/id -> updates, sorted
	merged  map[string]mergedProfile
}

type mergedProfile struct {
	CompanyID string
	Metadata  map[string]any
	Text      string        // Metadata as JSON, stamped on events
	Attrs     storage.Attrs // Metadata flattened, keys prefixed with the kind
}

func newProfileCache(ps []storage.Profile) *profileCache {
	pc := &profileCache{updates: map[string][]storage.Profile{}, merged: map[string]mergedProfile{}}
	pc.add(ps)
	return pc
}

func cacheKey(kind, id string) string { return kind + "/" + id }

func (pc *profileCache) add(ps []storage.Profile) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	touched := map[string]bool{}
	for _, p := range ps {
		k := cacheKey(p.Kind, p.ID)
		pc.updates[k] = append(pc.updates[k], p)
		touched[k] = true
	}
	for k := range touched {
		u := pc.updates[k]
		sort.SliceStable(u, func(i, j int) bool {
			if !u[i].ModifiedAt.Equal(u[j].ModifiedAt) {
				return u[i].ModifiedAt.Before(u[j].ModifiedAt)
			}
			return u[i].ReceivedAt.Before(u[j].ReceivedAt)
		})
		var m mergedProfile
		m.Metadata = map[string]any{}
		for _, p := range u {
			var meta map[string]any
			_ = json.Unmarshal([]byte(p.Metadata), &meta) // validated at ingestion
			mergeInto(m.Metadata, meta)
			if p.CompanyID != "" {
				m.CompanyID = p.CompanyID
			}
		}
		b, _ := json.Marshal(m.Metadata)
		m.Text = string(b)
		flat, _ := storage.FlattenJSON(m.Text) // marshalled just above: valid
		m.Attrs = flat.Prefixed(u[0].Kind)
		pc.merged[k] = m
	}
}

// mergeInto merges src into dst recursively: objects merge key by key,
// anything else replaces.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeInto(dv, sv)
				continue
			}
			cp := map[string]any{}
			mergeInto(cp, sv)
			dst[k] = cp
			continue
		}
		dst[k] = v
	}
}

// traits is the merged metadata of a profile as JSON ("{}" when unknown)
// and flattened.
func (pc *profileCache) traits(kind, id string) (string, storage.Attrs) {
	if id == "" {
		return "{}", storage.Attrs{}
	}
	pc.mu.RLock()
	defer pc.mu.RUnlock()
	if m, ok := pc.merged[cacheKey(kind, id)]; ok {
		return m.Text, m.Attrs
	}
	return "{}", storage.Attrs{}
}

// stampAll sets each event's traits (and their flattened form when the
// event carries one) to its user's and company's current profiles. The
// events of one user and company share one flattened set, which would
// otherwise be copied into each. It returns the memory this costs: the
// sets built, and for each event its traits again, as the store copies
// them into every row it writes.
func (pc *profileCache) stampAll(events []storage.Event) int64 {
	type pair struct{ user, company string }
	type traits struct {
		user, company string
		flat          storage.Attrs
	}
	shared := map[pair]traits{}
	var n int64
	for i := range events {
		e := &events[i]
		t, ok := shared[pair{e.UserID, e.CompanyID}]
		if !ok {
			var ua, ca storage.Attrs
			t.user, ua = pc.traits(storage.KindUser, e.UserID)
			t.company, ca = pc.traits(storage.KindCompany, e.CompanyID)
			t.flat = ua.Concat(ca)
			shared[pair{e.UserID, e.CompanyID}] = t
			n += ingest.AttrsBytes(t.flat)
		}
		e.UserTraits, e.CompanyTraits = t.user, t.company
		n += int64(len(t.user) + len(t.company))
		if e.Flat != nil {
			e.Flat.Traits = t.flat
			n += ingest.AttrsBytes(t.flat)
		}
	}
	return n
}

// ids lists the ids with a profile of kind.
func (pc *profileCache) ids(kind string) []string {
	pc.mu.RLock()
	defer pc.mu.RUnlock()
	var out []string
	for k := range pc.merged {
		if id, ok := strings.CutPrefix(k, kind+"/"); ok {
			out = append(out, id)
		}
	}
	return out
}

func (pc *profileCache) get(kind, id string) (mergedProfile, int, bool) {
	pc.mu.RLock()
	defer pc.mu.RUnlock()
	m, ok := pc.merged[cacheKey(kind, id)]
	return m, len(pc.updates[cacheKey(kind, id)]), ok
}

func (s *Server) getProfile(kind string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Param("id")
		m, n, ok := s.profiles.get(kind, id)
		if !ok {
			return fault.New(http.StatusNotFound, "not_found", "no "+kind+" profile "+strconvQuote(id))
		}
		out := map[string]any{"kind": kind, "id": id, "metadata": m.Metadata, "updates": n}
		if kind == storage.KindUser {
			out["company_id"] = m.CompanyID
		}
		return c.JSON(http.StatusOK, out)
	}
}
