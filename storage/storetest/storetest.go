// Package storetest is the suite every storage.Store passes: the DuckDB
// and ClickHouse backends run it from their own tests.
package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// Opener returns a fresh, empty store opened with o and registers its
// cleanup on t.
type Opener func(t *testing.T, o storage.Options) storage.Store

// Run runs the whole suite; each subtest gets its own store.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Dedup", testDedup},
		{"DedupOddIDs", testDedupOddIDs},
		{"DedupWhateverTheTime", testDedupWhateverTheTime},
		{"ListOrderFiltersAndPages", testListPages},
		{"CallFilters", testCallFilters},
		{"Stats", testStats},
		{"StatsEmpty", testStatsEmpty},
		{"Profiles", testProfiles},
		{"SchemaVersion", testSchemaVersion},
		{"BigBatch", testBigBatch},
		{"CanceledInsertStoresNothing", testCanceledInsert},
		{"ScanEventsAndQuery", testScanAndQuery},
		{"MeterLog", testMeterLog},
		{"Journal", testJournal},
		{"WorkerBeats", testBeats},
		{"ChangedHours", testChangedHours},
		{"UsageCache", testUsageCache},
		{"ClosedIsUnavailable", testClosedIsUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t, storage.Options{})) })
	}
	t.Run("DedupWindow", func(t *testing.T) { testDedupWindow(t, open) })
}

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
)

// full is an event with every field set to something that could be lost.
func full(id string, at time.Time) storage.Event {
	return storage.Event{
		ID: id, ExternalID: "ext-" + id, Format: storage.FormatMoesif,
		Time: at, ReceivedAt: at.Add(1500 * time.Millisecond),
		Verb: "POST", URI: "https://api.example.com/v1/search?q=ü%20x", Route: "/v1/search",
		Host: "api.example.com", IP: "2001:db8::1", APIVersion: "2025-01-01",
		RequestHeaders: map[string]string{"content-type": "application/json", "x-emoji": "😀"},
		RequestSize:    1 << 40, RequestBody: `{"q":"x"}`,
		HasResponse: true, ResponseTime: at.Add(123 * time.Millisecond), Status: 201,
		ResponseHeaders: map[string]string{"content-length": "77"}, ResponseSize: 77, ResponseBody: "ok",
		DurationMs: 123, UserID: "user-😀", CompanyID: "company-ü", SessionToken: "sess",
		SubscriptionID: "sub_1", Direction: "Incoming", Weight: 9_007_199_254_740_993, BlockedBy: "rule-ü😀",
		Metadata:      `{"tokens":42,"plan":{"tier":"pro"},"s":"ü😀","n":null,"b":true,"a":[1,"x"]}`,
		UserTraits:    `{"name":"Ann"}`,
		CompanyTraits: `{"plan":"enterprise","seats":12}`,
	}
}

func insert(t *testing.T, s storage.Store, evs ...storage.Event) storage.InsertResult {
	t.Helper()
	r, err := s.Insert(ctx, evs)
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	return r
}

func list(t *testing.T, s storage.Store, f storage.EventFilter) []storage.Event {
	t.Helper()
	evs, err := s.ListEvents(ctx, f)
	if err != nil {
		t.Fatalf("ListEvents(%+v): %v", f, err)
	}
	return evs
}

func count(t *testing.T, s storage.Store) int64 {
	t.Helper()
	st, err := s.Stats(ctx, storage.EventFilter{})
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st.Count
}

// normal is what a store gives back for e: nil header maps come back empty.
func normal(e storage.Event) storage.Event {
	if e.RequestHeaders == nil {
		e.RequestHeaders = map[string]string{}
	}
	if e.ResponseHeaders == nil {
		e.ResponseHeaders = map[string]string{}
	}
	for _, p := range []*string{&e.Metadata, &e.UserTraits, &e.CompanyTraits} {
		if *p == "" {
			*p = "{}"
		}
	}
	return e
}

func testRoundTrip(t *testing.T, s storage.Store) {
	a := full("a", t0)
	noResp := storage.Event{ID: "b", ExternalID: "b", Format: storage.FormatMoesif, Time: t0.Add(time.Second),
		ReceivedAt: t0.Add(2 * time.Second), Verb: "GET", URI: "/x", Route: "/x", Weight: 1}
	ce := storage.Event{ID: "ce_1", ExternalID: "evt-1", Format: storage.FormatCloudEvents,
		Time: t0.Add(2 * time.Second), ReceivedAt: t0.Add(3 * time.Second), Type: "tokens", Source: "svc",
		Subject: "acme", CompanyID: "acme", Weight: 1, Metadata: `{"tokens":-1.5e-7}`}
	if r := insert(t, s, a, noResp, ce); r.Inserted != 3 || r.Duplicates != 0 {
		t.Fatalf("InsertResult %+v, want 3 inserted", r)
	}
	got := list(t, s, storage.EventFilter{})
	want := []storage.Event{normal(ce), normal(noResp), normal(a)}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("event %s round trip:\n got %+v\nwant %+v", want[i].ID, got[i], want[i])
		}
	}
}

func testDedup(t *testing.T, s storage.Store) {
	batch := []storage.Event{full("a", t0), full("b", t0.Add(time.Minute)), full("a", t0)}
	if r := insert(t, s, batch...); r.Inserted != 2 || r.Duplicates != 1 || !reflect.DeepEqual(r.New, []bool{true, true, false}) {
		t.Fatalf("first insert %+v, want 2 inserted 1 duplicate, New [true true false]", r)
	}
	if r := insert(t, s, batch...); r.Inserted != 0 || r.Duplicates != 3 {
		t.Fatalf("retried batch %+v, want 0 inserted 3 duplicates", r)
	}
	if r := insert(t, s, full("b", t0.Add(time.Minute)), full("c", t0.Add(2*time.Minute))); r.Inserted != 1 || r.Duplicates != 1 || !reflect.DeepEqual(r.New, []bool{false, true}) {
		t.Fatalf("overlapping batch %+v, want 1 inserted 1 duplicate", r)
	}
	if n := count(t, s); n != 3 {
		t.Fatalf("count %d after retries, want 3", n)
	}
}

// testDedupOddIDs: ids with characters that quoting, escaping or encoding
// could alter are still recognised when sent again, and no two are taken
// for one another.
func testDedupOddIDs(t *testing.T, s storage.Store) {
	odd := []string{`"q"`, `back\slash`, "nul\x00byte", "tab\tnew\nline", "<html>&amp;", "ü😀\u2028",
		"'; DROP TABLE events; --", "$[*]", strings.Repeat("long", 100), " ", "%", "_", "a,b", "[1]"}
	var evs []storage.Event
	for i, id := range odd {
		evs = append(evs, full(id, t0.Add(time.Duration(i)*time.Second)))
	}
	if r := insert(t, s, evs...); r.Inserted != len(odd) {
		t.Fatalf("first insert %+v, want %d inserted", r, len(odd))
	}
	if r := insert(t, s, evs...); r.Inserted != 0 || r.Duplicates != len(odd) {
		t.Fatalf("same batch again %+v, want %d duplicates", r, len(odd))
	}
	near := []storage.Event{full(`\"q\"`, t0), full("nul", t0.Add(2*time.Second)), full("nul\x00", t0.Add(2*time.Second))}
	if r := insert(t, s, near...); r.Inserted != len(near) {
		t.Fatalf("ids close to stored ones %+v, want all %d inserted", r, len(near))
	}
	if n := count(t, s); n != int64(len(odd)+len(near)) {
		t.Fatalf("count %d, want %d", n, len(odd)+len(near))
	}
}

// testDedupWhateverTheTime: an identity is stored once, whatever times its
// repeats carry (a CloudEvent without time is stamped with its arrival, a
// client may resend a transaction_id with another request.time): the first
// stored copy wins, in a later batch as within one.
func testDedupWhateverTheTime(t *testing.T, s storage.Store) {
	first := full("a", t0)
	if r := insert(t, s, first, full("b", t0.Add(time.Second))); r.Inserted != 2 {
		t.Fatalf("first insert %+v, want 2 inserted", r)
	}
	later, earlier := full("a", t0.Add(26*time.Hour)), full("a", t0.Add(-40*24*time.Hour))
	later.Metadata, earlier.Metadata = `{"tokens":1000}`, `{"tokens":1000}`
	r := insert(t, s, later, full("c", t0.Add(26*time.Hour)), earlier)
	if r.Inserted != 1 || r.Duplicates != 2 || !reflect.DeepEqual(r.New, []bool{false, true, false}) {
		t.Fatalf("repeats of a at other times %+v, want only c new", r)
	}
	// Within one batch, the first copy wins too.
	in := []storage.Event{full("d", t0.Add(time.Hour)), full("d", t0.Add(3*time.Hour))}
	if r := insert(t, s, in...); r.Inserted != 1 || !reflect.DeepEqual(r.New, []bool{true, false}) {
		t.Fatalf("one batch with d twice at two times %+v, want the first new", r)
	}
	got := list(t, s, storage.EventFilter{})
	if len(got) != 4 {
		t.Fatalf("%d events stored, want 4 (a, b, c, d): %v", len(got), ids(got))
	}
	for _, e := range got {
		switch e.ID {
		case "a":
			if !e.Time.Equal(t0) || e.Metadata != normal(first).Metadata {
				t.Errorf("a stored as %v %s, want the first copy (%v)", e.Time, e.Metadata, t0)
			}
		case "d":
			if !e.Time.Equal(t0.Add(time.Hour)) {
				t.Errorf("d stored at %v, want the first copy's time", e.Time)
			}
		}
	}
}

// testDedupWindow: with a DedupWindow, an identity is remembered for that
// long after its first copy arrived, whatever the times carried.
func testDedupWindow(t *testing.T, open Opener) {
	s := open(t, storage.Options{DedupWindow: time.Hour})
	at := func(id string, eventTime, received time.Time) storage.Event {
		e := full(id, eventTime)
		e.ReceivedAt = received
		return e
	}
	insert(t, s, at("a", t0, t0))
	if r := insert(t, s, at("a", t0.Add(50*time.Minute), t0.Add(50*time.Minute))); r.Duplicates != 1 {
		t.Fatalf("repeat within the window %+v, want a duplicate", r)
	}
	if r := insert(t, s, at("a", t0.Add(90*time.Minute), t0.Add(90*time.Minute))); r.Inserted != 1 {
		t.Fatalf("repeat after the window %+v, want it stored (the identity is forgotten)", r)
	}
}

func testListPages(t *testing.T, s storage.Store) {
	var evs []storage.Event
	for i := 0; i < 25; i++ {
		e := full(fmt.Sprintf("e%02d", i), t0.Add(time.Duration(i/3)*time.Second)) // three events share each time
		e.UserID = fmt.Sprintf("u%d", i%2)
		e.CompanyID = fmt.Sprintf("c%d", i%3)
		evs = append(evs, e)
	}
	insert(t, s, evs...)
	// Pages of 4, newest first, following the cursor of each page's last row.
	var seen []string
	f := storage.EventFilter{Limit: 4}
	for page := 0; ; page++ {
		got := list(t, s, f)
		for _, e := range got {
			seen = append(seen, e.ID)
		}
		if len(got) < 4 {
			break
		}
		last := got[len(got)-1]
		f.BeforeTime, f.BeforeID = last.Time, last.ID
		if page > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != 25 {
		t.Fatalf("pages returned %d events, want 25: %v", len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		// time desc then id desc means ids strictly descend here.
		if seen[i] >= seen[i-1] {
			t.Fatalf("order broken at %d: %v", i, seen)
		}
	}
	// Half-open time window and the customer filters.
	got := list(t, s, storage.EventFilter{From: t0.Add(time.Second), To: t0.Add(3 * time.Second)})
	if len(got) != 6 || got[0].ID != "e08" || got[5].ID != "e03" {
		t.Fatalf("window [1s,3s): got %v", ids(got))
	}
	got = list(t, s, storage.EventFilter{UserID: "u1", CompanyID: "c0"})
	for _, e := range got {
		if e.UserID != "u1" || e.CompanyID != "c0" {
			t.Fatalf("filter leaked %s (%s, %s)", e.ID, e.UserID, e.CompanyID)
		}
	}
	if len(got) != 4 { // i%2==1 and i%3==0: 3, 9, 15, 21
		t.Fatalf("user+company filter: got %v", ids(got))
	}
}

// testCallFilters: route, verb, CloudEvents type, status (exact, a class,
// or no response), blocked calls (any rule, none, one rule), format,
// subject, the client's id and the arrival time, in lists, pages and
// stats alike.
func testCallFilters(t *testing.T, s storage.Store) {
	var evs []storage.Event
	for i, st := range []int32{200, 201, 404, 429, 500, 0, 200, 404} {
		e := full(fmt.Sprintf("f%d", i), t0.Add(time.Duration(i)*time.Second))
		e.Status, e.HasResponse = st, st != 0
		if i%2 == 1 {
			e.Route, e.Verb = "/v1/other", "GET"
		}
		e.BlockedBy = []string{"", "r1", "r2", "", "", "r1", "", "r2"}[i]
		evs = append(evs, e)
	}
	ce := storage.Event{ID: "ce", ExternalID: "ce", Format: storage.FormatCloudEvents, Time: t0, ReceivedAt: t0,
		Type: "tokens.used", Source: "svc", Weight: 1}
	ce2 := storage.Event{ID: "ce2", ExternalID: "evt-2", Format: storage.FormatCloudEvents, Time: t0.Add(9 * time.Second),
		ReceivedAt: t0.Add(time.Hour), Type: "tokens.used", Source: "svc", Subject: "acme", CompanyID: "acme", Weight: 1}
	insert(t, s, append(evs, ce, ce2)...)
	cases := []struct {
		name string
		f    storage.EventFilter
		want []string // newest first
	}{
		{"route", storage.EventFilter{Route: "/v1/other"}, []string{"f7", "f5", "f3", "f1"}},
		{"verb", storage.EventFilter{Verb: "POST"}, []string{"f6", "f4", "f2", "f0"}},
		{"type", storage.EventFilter{Type: "tokens.used"}, []string{"ce2", "ce"}},
		{"format", storage.EventFilter{Format: storage.FormatCloudEvents}, []string{"ce2", "ce"}},
		{"subject", storage.EventFilter{Subject: "acme"}, []string{"ce2"}},
		{"external id", storage.EventFilter{ExternalID: "ext-f3"}, []string{"f3"}},
		{"received from", storage.EventFilter{ReceivedFrom: t0.Add(time.Minute)}, []string{"ce2"}},
		{"received before", storage.EventFilter{ReceivedTo: t0.Add(3 * time.Second)}, []string{"f1", "f0", "ce"}},
		{"exact status", storage.EventFilter{ByStatus: true, StatusMin: 404, StatusMax: 404}, []string{"f7", "f2"}},
		{"4xx", storage.EventFilter{ByStatus: true, StatusMin: 400, StatusMax: 499}, []string{"f7", "f3", "f2"}},
		{"no response", storage.EventFilter{Route: "/v1/other", ByStatus: true, StatusMin: 0, StatusMax: 0}, []string{"f5"}},
		{"route and 2xx", storage.EventFilter{Route: "/v1/search", ByStatus: true, StatusMin: 200, StatusMax: 299}, []string{"f6", "f0"}},
		{"nothing", storage.EventFilter{Route: "/v1/none"}, []string{}},
		{"blocked", storage.EventFilter{ByBlocked: true, Blocked: true}, []string{"f7", "f5", "f2", "f1"}},
		{"not blocked", storage.EventFilter{ByBlocked: true}, []string{"ce2", "f6", "f4", "f3", "f0", "ce"}},
		{"blocked by r2", storage.EventFilter{BlockedBy: "r2"}, []string{"f7", "f2"}},
		{"blocked by r1 and 2xx", storage.EventFilter{BlockedBy: "r1", ByStatus: true, StatusMin: 200, StatusMax: 299}, []string{"f1"}},
	}
	for _, c := range cases {
		if got := ids(list(t, s, c.f)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: listed %v, want %v", c.name, got, c.want)
		}
		paged := c.f
		paged.Limit = 1
		if got := list(t, s, paged); len(c.want) > 0 && (len(got) != 1 || got[0].ID != c.want[0]) {
			t.Errorf("%s: first page of one is %v, want %s", c.name, ids(got), c.want[0])
		}
		st, err := s.Stats(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Count != int64(len(c.want)) {
			t.Errorf("%s: stats count %d, want %d", c.name, st.Count, len(c.want))
		}
	}
}

func ids(evs []storage.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func testStats(t *testing.T, s storage.Store) {
	a := full("a", t0)
	b := full("b", t0.Add(time.Hour))
	b.UserID, b.Metadata = "", `{"tokens":"many","plan":{"tier":"free","seats":3}}`
	b.CompanyTraits = `{"plan":"free","seats":"many"}`
	c := full("c", t0.Add(2*time.Hour))
	c.UserID, c.CompanyID, c.Metadata = "other", "other-co", `{}`
	c.UserTraits, c.CompanyTraits = `{}`, `{"billing":{"cycle":"annual"}}`
	insert(t, s, a, b, c)
	st, err := s.Stats(ctx, storage.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 3 || !st.First.Equal(t0) || !st.Last.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("count/first/last: %+v", st)
	}
	if st.DistinctUsers != 2 || st.DistinctCompanies != 2 {
		t.Fatalf("distinct users %d companies %d, want 2 and 2 (anonymous calls not counted)", st.DistinctUsers, st.DistinctCompanies)
	}
	want := []storage.KeyStat{
		{Key: "a", Type: "array", Count: 1}, {Key: "b", Type: "boolean", Count: 1},
		{Key: "n", Type: "null", Count: 1}, {Key: "plan", Type: "object", Count: 2},
		{Key: "plan.seats", Type: "number", Count: 1}, {Key: "plan.tier", Type: "string", Count: 2},
		{Key: "s", Type: "string", Count: 1},
		{Key: "tokens", Type: "number", Count: 1}, {Key: "tokens", Type: "string", Count: 1},
	}
	if !reflect.DeepEqual(st.MetadataKeys, want) {
		t.Fatalf("metadata keys:\n got %+v\nwant %+v", st.MetadataKeys, want)
	}
	want = []storage.KeyStat{
		{Key: "company.billing", Type: "object", Count: 1}, {Key: "company.billing.cycle", Type: "string", Count: 1},
		{Key: "company.plan", Type: "string", Count: 2},
		{Key: "company.seats", Type: "number", Count: 1}, {Key: "company.seats", Type: "string", Count: 1},
		{Key: "user.name", Type: "string", Count: 2},
	}
	if !reflect.DeepEqual(st.TraitKeys, want) {
		t.Fatalf("trait keys:\n got %+v\nwant %+v", st.TraitKeys, want)
	}
	st, err = s.Stats(ctx, storage.EventFilter{From: t0.Add(time.Minute), CompanyID: "company-ü"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 1 || !st.First.Equal(t0.Add(time.Hour)) || st.DistinctUsers != 0 {
		t.Fatalf("filtered stats %+v", st)
	}
	want = []storage.KeyStat{ // only b's traits: the filter applies to them too
		{Key: "company.plan", Type: "string", Count: 1}, {Key: "company.seats", Type: "string", Count: 1},
		{Key: "user.name", Type: "string", Count: 1},
	}
	if !reflect.DeepEqual(st.TraitKeys, want) {
		t.Fatalf("filtered trait keys:\n got %+v\nwant %+v", st.TraitKeys, want)
	}
}

func testStatsEmpty(t *testing.T, s storage.Store) {
	st, err := s.Stats(ctx, storage.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Count != 0 || !st.First.IsZero() || !st.Last.IsZero() || len(st.MetadataKeys) != 0 || len(st.TraitKeys) != 0 {
		t.Fatalf("empty store stats %+v", st)
	}
}

func testProfiles(t *testing.T, s storage.Store) {
	p1 := storage.Profile{Kind: storage.KindCompany, ID: "acme", Metadata: `{"plan":"free"}`,
		ModifiedAt: t0, ReceivedAt: t0.Add(time.Second), Raw: `{"company_id":"acme"}`}
	p2 := p1
	p2.Metadata, p2.ModifiedAt = `{"plan":"pro"}`, t0.Add(time.Hour)
	u := storage.Profile{Kind: storage.KindUser, ID: "u1", CompanyID: "acme", Metadata: `{}`,
		ModifiedAt: t0.Add(time.Minute), ReceivedAt: t0.Add(time.Minute), Raw: `{"user_id":"u1"}`}
	if err := s.PutProfiles(ctx, []storage.Profile{p2}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutProfiles(ctx, []storage.Profile{p1, u}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Profiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.Profile{p1, u, p2} // by (ModifiedAt, ReceivedAt), not by arrival
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("profiles:\n got %+v\nwant %+v", got, want)
	}
}

func testSchemaVersion(t *testing.T, s storage.Store) {
	v, err := s.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("SchemaVersion = %d, %v; want >= 1", v, err)
	}
}

func testBigBatch(t *testing.T, s storage.Store) {
	evs := eventgen.Generate(3, 20_000, t0.Add(-24*time.Hour), t0)
	if r := insert(t, s, evs...); r.Inserted != 20_000 {
		t.Fatalf("inserted %d of 20000", r.Inserted)
	}
	if r := insert(t, s, evs[5000:6000]...); r.Duplicates != 1000 {
		t.Fatalf("re-sent slice: %+v", r)
	}
	if n := count(t, s); n != 20_000 {
		t.Fatalf("count %d, want 20000", n)
	}
	got := list(t, s, storage.EventFilter{Limit: 1})
	if len(got) != 1 || !reflect.DeepEqual(got[0], normal(evs[len(evs)-1])) {
		t.Fatalf("newest event differs:\n got %+v\nwant %+v", got, normal(evs[len(evs)-1]))
	}
}

func testCanceledInsert(t *testing.T, s storage.Store) {
	insert(t, s, full("kept", t0))
	c, cancel := context.WithCancel(ctx)
	cancel()
	evs := eventgen.Generate(4, 500, t0, t0.Add(time.Hour))
	if _, err := s.Insert(c, evs); err == nil {
		t.Fatal("Insert with a canceled context succeeded")
	}
	if n := count(t, s); n != 1 {
		t.Fatalf("count %d after a failed insert, want 1 (nothing of the failed batch)", n)
	}
}

func testScanAndQuery(t *testing.T, s storage.Store) {
	evs := eventgen.Generate(9, 300, t0, t0.Add(time.Hour))
	insert(t, s, evs...)
	var got []storage.Event
	err := s.ScanEvents(ctx, storage.EventFilter{From: evs[10].Time, To: evs[200].Time}, func(e *storage.Event) error {
		got = append(got, *e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 190 || !reflect.DeepEqual(got[0], normal(evs[10])) || !reflect.DeepEqual(got[189], normal(evs[199])) {
		t.Fatalf("ScanEvents [10,200): %d events", len(got))
	}
	stop := fmt.Errorf("stop")
	n := 0
	if err := s.ScanEvents(ctx, storage.EventFilter{}, func(*storage.Event) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("ScanEvents did not stop on the callback's error: %v after %d", err, n)
	}
	rows, err := s.Query(ctx, "SELECT toString(count()) FROM events WHERE status = 200")
	if s.Backend() == "duckdb" {
		rows, err = s.Query(ctx, "SELECT CAST(count(*) AS VARCHAR) FROM events WHERE status = 200")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var c string
	if !rows.Next() || rows.Scan(&c) != nil {
		t.Fatal("Query returned no row")
	}
	want := 0
	for _, e := range evs {
		if e.Status == 200 {
			want++
		}
	}
	if c != fmt.Sprint(want) {
		t.Fatalf("Query counted %s, want %d", c, want)
	}
}

func testMeterLog(t *testing.T, s storage.Store) {
	recs := []storage.MeterRecord{
		{MeterID: "m_b", Seq: 1, Kind: storage.MeterCreated, At: t0, Actor: "admin", Version: 1, Body: `{"name":"b"}`},
		{MeterID: "m_a", Seq: 1, Kind: storage.MeterCreated, At: t0, Actor: "admin", Version: 1, Body: `{"name":"a ü"}`},
		{MeterID: "m_a", Seq: 2, Kind: storage.MeterVersion, At: t0.Add(time.Hour), Actor: "ann", Version: 2,
			EffectiveFrom: t0.Add(2 * time.Hour), Body: `{"filter":"true"}`},
		{MeterID: "m_a", Seq: 3, Kind: storage.MeterArchived, At: t0.Add(3 * time.Hour), Actor: "bob", Body: `{}`},
	}
	for _, r := range recs {
		if err := s.AppendMeterRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	dup := recs[2]
	dup.Body = `{"filter":"false"}`
	if err := s.AppendMeterRecord(ctx, dup); err != storage.ErrConflict {
		t.Fatalf("repeated (meter, seq): %v, want ErrConflict", err)
	}
	all, err := s.MeterRecords(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []storage.MeterRecord{recs[1], recs[2], recs[3], recs[0]}; !reflect.DeepEqual(all, want) {
		t.Fatalf("all records:\n got %+v\nwant %+v", all, want)
	}
	one, err := s.MeterRecords(ctx, "m_b")
	if err != nil || !reflect.DeepEqual(one, recs[:1]) {
		t.Fatalf("m_b records %+v, %v", one, err)
	}
}

func testJournal(t *testing.T, s storage.Store) {
	ev := func(key string, at time.Time, body string) storage.JournalEntry {
		return storage.JournalEntry{Stream: storage.StreamStripeEvents, Key: key, At: at, Body: body}
	}
	entries := []storage.JournalEntry{
		ev("evt_2", t0.Add(time.Minute), `{"id":"evt_2"}`),
		ev("evt_1", t0, `{"id":"evt_1","s":"ü😀"}`),
		ev("evt_0", t0.Add(time.Minute), `{"id":"evt_0"}`),
		{Stream: storage.StreamBillingLedger, Key: "evt_1", At: t0, Body: `{"ledger":true}`}, // same key, other stream
	}
	for _, e := range entries {
		if err := s.AppendJournal(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// A repeated delivery is refused and changes nothing, whatever its body.
	if err := s.AppendJournal(ctx, ev("evt_1", t0.Add(time.Hour), `{"id":"evt_1","other":1}`)); err != storage.ErrConflict {
		t.Fatalf("repeated key: %v, want ErrConflict", err)
	}
	got, err := s.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamStripeEvents})
	if err != nil {
		t.Fatal(err)
	}
	if want := []storage.JournalEntry{entries[1], entries[2], entries[0]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("stream ordered by (at, key):\n got %+v\nwant %+v", got, want)
	}
	got, err = s.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamStripeEvents, From: t0.Add(time.Second)})
	if err != nil || !reflect.DeepEqual(got, []storage.JournalEntry{entries[2], entries[0]}) {
		t.Fatalf("From filter: %+v, %v", got, err)
	}
	got, err = s.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamBillingLedger, Key: "evt_1"})
	if err != nil || !reflect.DeepEqual(got, entries[3:]) {
		t.Fatalf("Key filter: %+v, %v", got, err)
	}
	if got, err := s.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamBillingSettings}); err != nil || len(got) != 0 {
		t.Fatalf("empty stream: %+v, %v", got, err)
	}
}

func testBeats(t *testing.T, s storage.Store) {
	live := func(since time.Time) []string {
		t.Helper()
		ws, err := s.LiveWorkers(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, w := range ws {
			names = append(names, w.Worker)
			if w.At.Before(since) {
				t.Errorf("%s last seen %v, before %v", w.Worker, w.At, since)
			}
		}
		return names
	}
	if ws := live(time.Time{}); len(ws) != 0 {
		t.Fatalf("live workers of a new store: %v", ws)
	}
	for _, b := range []struct {
		w  string
		at time.Duration
	}{{"b", 0}, {"a", time.Second}, {"c", 2 * time.Second}, {"b", 3 * time.Second}, {"c", time.Second}} {
		if err := s.Beat(ctx, b.w, t0.Add(b.at)); err != nil {
			t.Fatal(err)
		}
	}
	// c's later mark stands although an earlier one came after it.
	if ws, err := s.LiveWorkers(ctx, t0.Add(2*time.Second)); err != nil || len(ws) != 2 || !ws[1].At.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("newest marks since +2s: %+v, %v; want c at +2s", ws, err)
	}
	for since, want := range map[time.Duration][]string{
		0: {"a", "b", "c"}, time.Second: {"a", "b", "c"}, 1500 * time.Millisecond: {"b", "c"},
		2 * time.Second: {"b", "c"}, 3 * time.Second: {"b"}, 4 * time.Second: nil,
	} {
		if got := live(t0.Add(since)); !reflect.DeepEqual(got, want) {
			t.Errorf("live since +%v: %v, want %v", since, got, want)
		}
	}
	if err := s.Retire(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	// At once: the next worker takes over without waiting for b's marks
	// to age, and a mark of b's still in flight does not bring it back.
	if got := live(time.Time{}); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Fatalf("after retiring b: %v, want [a c]", got)
	}
	if err := s.Beat(ctx, "b", t0.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := live(time.Time{}); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Fatalf("after a late mark of retired b: %v, want [a c]", got)
	}
}
