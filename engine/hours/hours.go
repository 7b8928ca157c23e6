// Package hours answers a saved meter's usage per customer from values kept
// per closed hour, so that what a billing cycle costs follows the events
// that arrived since the last one, not the period's history
// (docs/architecture.md, "Usage per closed hour").
//
// A window [From, To), each customer's starting at its own time, splits
// into pieces of hours: a partial first hour [start, next hour), the whole
// hours, a partial last hour [hour, To). Every piece of a closed hour is
// computed once with the backtest engine (all customers of the meter in
// one query), kept in the store (storage.UsageCache) and in memory, and
// recomputed only when its hour changed (an event stored, late or not, or
// a copy that lost a race settled) or when a later meter version takes
// effect inside it. Pieces of hours not closed yet are computed on every
// request. The answers are those of one query over the whole window
// (backtest.Usage); sums of non-integer values may differ in the last bits,
// as the order of a floating-point sum does.
package hours

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/storage"
)

const hourMs = int64(time.Hour / time.Millisecond)

// keep is how long a piece no request used stays in memory.
const keep = 48 * time.Hour

// Cache holds the pieces of one store's meters in memory, in front of the
// store's usage cache. One per process and store: the billing worker,
// governance and the API share it.
type Cache struct {
	store  storage.Store
	mu     sync.Mutex
	meters map[string]*meterPieces
	stats  Stats
	last   *changed // see changes
}

// Stats counts what a cache computed.
type Stats struct {
	Queries int64 // engine queries run
	Pieces  int64 // pieces computed by them
}

// Stats is what the cache computed so far.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// New makes an empty cache over st.
func New(st storage.Store) *Cache {
	return &Cache{store: st, meters: map[string]*meterPieces{}}
}

// meterPieces are one meter's pieces in memory.
type meterPieces struct {
	mu sync.Mutex // one request of the meter at a time
	// mark: every piece in memory reflects the changes below it, or is
	// marked dirty.
	mark   int64
	synced bool // mark is set
	pieces map[span]*piece
	// names numbers the meter's customers (append only), so that
	// answers are assembled with slices, not maps.
	names []string
	index map[string]int32
}

// intern numbers the customers of p's values.
func (m *meterPieces) intern(p *piece) {
	p.idx = make([]int32, len(p.Values))
	for i, v := range p.Values {
		n, ok := m.index[v.Customer]
		if !ok {
			n = int32(len(m.names))
			m.names = append(m.names, v.Customer)
			m.index[v.Customer] = n
		}
		p.idx[i] = n
	}
}

type span struct{ from, to int64 }

func (s span) hour() int64 { return s.from - s.from%hourMs }

type piece struct {
	storage.UsagePiece
	dirty bool    // changed since computed: recomputed before use
	used  int64   // unix ms of the last request that used it
	idx   []int32 // the customers of Values, numbered (meterPieces.names)
}

func (c *Cache) meter(id string) *meterPieces {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.meters[id]
	if m == nil {
		m = &meterPieces{pieces: map[span]*piece{}, index: map[string]int32{}}
		c.meters[id] = m
	}
	return m
}

// Request is a meter's usage over [From, To): each customer's from its
// own start (GroupFrom, clipped to From; the others from From), as
// backtest.Window.GroupFrom.
type Request struct {
	Meter     *registry.Meter
	From, To  time.Time
	GroupFrom map[string]time.Time
	Now       time.Time
	// Round, when not zero (NewRound), names the round of requests this
	// one belongs to (a billing cycle): the meters of a round share one
	// look-up of what changed in the store.
	Round uint64
}

var rounds atomic.Uint64

// NewRound names a new round of requests (Request.Round).
func NewRound() uint64 { return rounds.Add(1) }

// start is customer g's start (unix ms).
func (r Request) start(g string) int64 {
	if t, ok := r.GroupFrom[g]; ok && t.After(r.From) {
		return t.UnixMilli()
	}
	return r.From.UnixMilli()
}

// belongs reports whether p is the part of its hour in the window of a
// customer starting at start.
func (r Request) belongs(start int64, p span) bool {
	h := p.hour()
	return p.from == max(start, h) && p.to == min(r.To.UnixMilli(), h+hourMs)
}

// spans are the pieces the request needs, in time order: for every
// customer start, its partial first hour; the whole hours; the partial
// last hour.
func (r Request) spans() []span {
	from, to := r.From.UnixMilli(), r.To.UnixMilli()
	starts := map[int64]bool{from: true}
	for g := range r.GroupFrom {
		if s := r.start(g); s < to {
			starts[s] = true
		}
	}
	set := map[span]bool{}
	for s := range starts {
		h := s - s%hourMs
		set[span{s, min(h+hourMs, to)}] = true
	}
	for h := from - from%hourMs + hourMs; h < to; h += hourMs {
		set[span{h, min(h+hourMs, to)}] = true
	}
	out := make([]span, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b span) int {
		if a.from != b.from {
			return int(a.from - b.from)
		}
		return int(a.to - b.to)
	})
	return out
}

// Aggregation is the meter's aggregation.
func (r Request) aggregation() string { return r.Meter.Latest().Aggregation }

// ErrNotCombinable: unique meters count distinct values, which do not add
// up over hours; their usage is one engine query over the window.
var ErrNotCombinable = errors.New("hours: a unique meter's usage does not combine over hours")

// pieces returns every needed piece in time order with its values (only
// customers with matched events), the customers' names by number, and
// whether any computation fell back to the VM (and why).
func (c *Cache) pieces(ctx context.Context, r Request) ([]*piece, []string, string, error) {
	if r.aggregation() == rules.AggUnique {
		return nil, nil, "", ErrNotCombinable
	}
	if !r.To.After(r.From) {
		return nil, nil, "", nil
	}
	need := r.spans()
	now := r.Now.UnixMilli()
	closed := func(s span) bool { return s.hour()+hourMs <= now }
	m := c.meter(r.Meter.ID)
	m.mu.Lock()
	defer m.mu.Unlock()
	since, check := m.mark, m.synced
	var absent []span
	for _, s := range need {
		if _, ok := m.pieces[s]; !ok && closed(s) {
			absent = append(absent, s)
		}
	}
	if len(absent) > 0 { // computed before, by this process or another?
		stored, err := c.store.Usage(ctx, r.Meter.ID, absent[0].from, absent[len(absent)-1].to)
		if err != nil {
			return nil, nil, "", err
		}
		for _, sp := range stored {
			s := span{sp.FromMs, sp.ToMs}
			if _, ok := m.pieces[s]; !ok {
				p := &piece{UsagePiece: sp}
				m.intern(p)
				m.pieces[s] = p
				if !check || sp.Mark < since {
					since, check = sp.Mark, true
				}
			}
		}
	}
	mark, changed, err := c.changes(ctx, r.Round, since, check && len(m.pieces) > 0)
	if err != nil {
		return nil, nil, "", err
	}
	for s, p := range m.pieces {
		if at, ok := changed[s.hour()]; ok && at >= p.Mark {
			p.dirty = true
		}
	}
	m.mark, m.synced = mark, true
	var todo []span
	out := make([]*piece, len(need))
	for i, s := range need {
		p := m.pieces[s]
		if p == nil || p.dirty || !current(r.Meter, p.UsagePiece) || !closed(s) {
			todo = append(todo, s)
			continue
		}
		p.used = now
		out[i] = p
	}
	for s, p := range m.pieces { // what no request used for a while
		if p.used < now-keep.Milliseconds() {
			delete(m.pieces, s)
		}
	}
	done, queries, fallback, err := compute(ctx, c.store, r, todo)
	if err != nil {
		return nil, nil, "", err
	}
	c.mu.Lock()
	c.stats.Queries += int64(queries)
	c.stats.Pieces += int64(len(todo))
	c.mu.Unlock()
	var put []storage.UsagePiece
	j := 0
	for i, s := range need {
		if out[i] != nil {
			continue
		}
		p := done[j]
		j++
		p.Mark, p.Version, p.used = mark, newest(r.Meter), now
		m.intern(p)
		out[i] = p
		if closed(s) {
			m.pieces[s] = p
			put = append(put, p.UsagePiece)
		}
	}
	if err := c.store.PutUsage(ctx, put); err != nil {
		return nil, nil, "", err
	}
	return out, m.names, fallback, nil
}

// changes reads the store's change mark, then (when check) the hours
// changed since since. The requests of one round (Request.Round) that ask
// with the same since share one answer: their kept hours are those of the
// round's first request, and what changed later is found by the next
// round (an older mark is still a true one, only a conservative one).
func (c *Cache) changes(ctx context.Context, round uint64, since int64, check bool) (int64, map[int64]int64, error) {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if last != nil && round != 0 && last.round == round && (!check || last.checked && last.since == since) {
		return last.mark, last.hours, nil
	}
	mark, err := c.store.ChangeMark(ctx)
	if err != nil {
		return 0, nil, err
	}
	ch := &changed{mark: mark, since: since, checked: check, round: round}
	if check {
		if ch.hours, err = c.store.ChangedHours(ctx, since); err != nil {
			return 0, nil, err
		}
	}
	c.mu.Lock()
	c.last = ch
	c.mu.Unlock()
	return ch.mark, ch.hours, nil
}

// changed is an answer of changes.
type changed struct {
	mark, since int64
	checked     bool
	hours       map[int64]int64
	round       uint64
}

// newest is the number of the meter's newest version.
func newest(m *registry.Meter) int { return m.Versions[len(m.Versions)-1].Version }

// current reports whether no version newer than the piece's takes effect
// before its end (versions take effect from now on, never in the past:
// the pieces of earlier hours stay valid).
func current(m *registry.Meter, p storage.UsagePiece) bool {
	for _, v := range m.Versions {
		if v.Version > p.Version && (v.EffectiveFrom == nil || v.EffectiveFrom.UnixMilli() < p.ToMs) {
			return false
		}
	}
	return true
}

// compute runs the backtest engine over the pieces (in time order), as
// few queries as pieces share hours: each query takes at most one piece
// of an hour (backtest.Window.Ranges, hourly buckets, every customer).
func compute(ctx context.Context, st storage.Store, r Request, todo []span) ([]*piece, int, string, error) {
	out := make([]*piece, len(todo))
	var fallback string
	queries := 0
	left := make([]int, len(todo))
	for i := range todo {
		left[i] = i
	}
	for len(left) > 0 {
		var layer, rest []int
		taken := map[int64]bool{}
		for _, i := range left {
			if h := todo[i].hour(); taken[h] {
				rest = append(rest, i)
			} else {
				taken[h] = true
				layer = append(layer, i)
			}
		}
		fb, err := computeLayer(ctx, st, r, todo, layer, out)
		if err != nil {
			return nil, 0, "", err
		}
		queries++
		if fb != "" {
			fallback = fb
		}
		left = rest
	}
	return out, queries, fallback, nil
}

// computeLayer computes pieces of distinct hours in one query.
func computeLayer(ctx context.Context, st storage.Store, r Request, todo []span, layer []int, out []*piece) (string, error) {
	var ranges [][2]int64
	byHour := map[int64]*piece{}
	for _, i := range layer {
		s := todo[i]
		p := &piece{UsagePiece: storage.UsagePiece{MeterID: r.Meter.ID, FromMs: s.from, ToMs: s.to}}
		out[i], byHour[s.hour()] = p, p
		if n := len(ranges); n > 0 && ranges[n-1][1] == s.from {
			ranges[n-1][1] = s.to // adjacent pieces: one range
		} else {
			ranges = append(ranges, [2]int64{s.from, s.to})
		}
	}
	from, to := time.UnixMilli(ranges[0][0]).UTC(), time.UnixMilli(ranges[len(ranges)-1][1]).UTC()
	vs, err := versions(r.Meter, from, to)
	if err != nil {
		return "", err
	}
	res, err := backtest.Usage(ctx, st, vs, backtest.Window{From: from, To: to, Bucket: backtest.BucketHour, Top: 1,
		GroupBuckets: true, Ranges: ranges})
	if err != nil {
		return "", err
	}
	for _, gb := range res.GroupBuckets { // by group, then time: each piece's values by customer
		p := byHour[gb.Start.UnixMilli()]
		v := storage.UsageValue{Customer: gb.Group, Events: gb.Events, Errors: gb.ValueErrors}
		if gb.Value != nil {
			v.Value, v.HasValue = *gb.Value, true
		}
		p.Values = append(p.Values, v)
	}
	return res.Fallback, nil
}

// Store is the store the cache keeps its pieces in.
func (c *Cache) Store() storage.Store { return c.store }
