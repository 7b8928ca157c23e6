package backtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// regEvent is a compact event for regression cases; zero fields take the
// defaults of (*regEvent).event.
type regEvent struct {
	meta, user, company string
	status              int32 // 0: no response
	route, verb         string
	userID, companyID   string
	reqSize             int64
	respHeaders         map[string]string
}

func (r regEvent) event(id string, at time.Time) storage.Event {
	e := storage.Event{
		ID: id, Format: storage.FormatMoesif, Time: at, ReceivedAt: at,
		Verb: r.verb, Route: r.route, URI: "https://x" + r.route, UserID: r.userID, CompanyID: r.companyID,
		RequestSize: r.reqSize, Metadata: r.meta, UserTraits: r.user, CompanyTraits: r.company, Weight: 1,
		ResponseHeaders: r.respHeaders,
	}
	if e.Verb == "" {
		e.Verb = "GET"
	}
	if r.status != 0 {
		e.HasResponse, e.Status, e.ResponseTime = true, r.status, at
	}
	return e
}

// Every disagreement the differential test (or review) found, kept as a
// case. Each names what went wrong; wantMatched is the VM's documented
// answer, so the case fails if the VM itself changes.
var regressions = []struct {
	name        string
	def         rules.Definition
	events      []regEvent
	wantMatched int64
	// uncertain: SQL cannot decide these events exactly; it must say so
	// (ErrUncertain), and Backtest must answer with the VM.
	uncertain bool
}{
	{
		// expr compiles == of two static strings (ints) to OpEqualString
		// (OpEqualInt), which fails on the nil of an optional chain.
		name: "static == fails on an optional chain's nil",
		def:  rules.Definition{Filter: `user_id != response.headers?.["content-type"]`, Aggregation: rules.AggCount},
		events: []regEvent{
			{userID: "u1"}, // no response: headers nil, the chain gives nil, != fails
			{userID: "u1", status: 200, respHeaders: map[string]string{"content-type": "u1"}},
			{userID: "u1", status: 200},
		},
		wantMatched: 1,
	},
	{
		// DuckDB orders NaN above every number and equal to itself.
		name:        "NaN compares false",
		def:         rules.Definition{Filter: `0 <= response.status / request.body_size`, Aggregation: rules.AggCount},
		events:      []regEvent{{}, {status: 200}, {status: 200, reqSize: 10}},
		wantMatched: 2, // 200/0 = +Inf and 20, not 0/0 = NaN
	},
	{
		name:        "NaN is unequal to itself",
		def:         rules.Definition{Filter: `response.status / 0 != response.status / 0`, Aggregation: rules.AggCount},
		events:      []regEvent{{}, {status: 200}},
		wantMatched: 1,
	},
	{
		// ClickHouse cannot parse "x != NOT (y)": every NOT is parenthesised.
		name:        "negation as an operand",
		def:         rules.Definition{Filter: `(not (request.verb endsWith user_id)) != (request.verb contains "G")`, Aggregation: rules.AggCount},
		events:      []regEvent{{userID: "T"}, {userID: "x"}, {verb: "POST", userID: "x"}},
		wantMatched: 2,
	},
	{
		// ClickHouse 18.16's PREWHERE optimizer segfaults the server on
		// a WHERE referencing an alias of a conjunction.
		name:        "server crash on an aliased conjunction in WHERE",
		def:         rules.Definition{Filter: `response.status == 200 or metadata.s > 100`, Aggregation: rules.AggCount},
		events:      []regEvent{{status: 200, meta: `{"s":"150"}`}, {status: 404, meta: `{"s":"150"}`}, {status: 404, meta: `{"s":150}`}},
		wantMatched: 2,
	},
	{
		// ClickHouse 18.16's groupBitOr takes unsigned integers only.
		name:        "uncertainty mask of a certain result",
		def:         rules.Definition{Filter: `lower(request.route) == "/v1/search"`, Aggregation: rules.AggCount},
		events:      []regEvent{{route: "/V1/Search"}, {route: "/v2"}},
		wantMatched: 1,
	},
	{
		// ClickHouse 18.16 names a literal by its value: the -0 of
		// toFloat64(-0) (Int8) and the query's 0s (UInt8 booleans) were
		// one column of type Int8, and -If aggregates rejected it as a
		// condition (code 43). Found with METERD_DIFF_SEED=1795993743320035962.
		name: "-0.0 literal turned the query's false into Int8",
		def: rules.Definition{Filter: `((4611686018427387904 < 9.2e18 <= -(0.0)) == not ((metadata?.t <= 'K')))`,
			Value: `(request.body_size - (0 ** 0))`, Aggregation: rules.AggMin},
		events: []regEvent{
			{meta: `{"t":"A"}`, reqSize: 10}, // false == not true: matched
			{meta: `{"t":"Z"}`},              // false == not false
			{meta: `{"t":1}`},                // 1 <= "K" fails
			{},                               // metadata?.t is nil: <= fails
		},
		wantMatched: 1,
	},
	{
		// ClickHouse expands the aliases of one SELECT into a tree: the
		// shared subexpressions of a long optional chain grew it
		// exponentially past max_expanded_ast_elements (code 168, "AST is
		// too big"). The per-event query now nests projections, each
		// small when expanded. Found with METERD_DIFF_SEED=1795994103587196836.
		name: "optional chain too big for ClickHouse's alias expansion",
		def: rules.Definition{Filter: `(company["key with space"]?.b.tier?.tier?.tier.tier.b?.b?.b?.b matches "(?i)[é]")`,
			Value: `company?.t`, Aggregation: rules.AggSum},
		events: []regEvent{
			{company: `{"t":5,"key with space":{"b":{"tier":{"tier":{"tier":{"tier":{"b":{"b":{"b":{"b":"É"}}}}}}}}}}`},
			{company: `{"t":1,"key with space":{"b":{"tier":{"tier":{"tier":{"tier":{"b":{"b":{"b":{"b":"e"}}}}}}}}}}`},
			{company: `{"t":2,"key with space":{"b":null}}`}, // .tier of nil fails
			{company: `{"t":3}`}, // ?. stops at the missing key: nil matches nothing
		},
		wantMatched: 1,
	},
	{
		// storage flattens {"":{"tier":-7}} to the keys "" and "tier": the
		// empty key's children read like top-level keys. Found with
		// METERD_DIFF_SEED=886855937321501490.
		name: "an empty key's object lends its keys to the top level",
		def:  rules.Definition{Filter: `true`, Value: `user.tier`, Aggregation: rules.AggMax, GroupBy: rules.GroupByUser},
		events: []regEvent{
			{user: `{"c":"ß","":{"d":0,"tier":-7,"b":" 12"}}`}, // user.tier is nil: a value error
			{user: `{"tier":"x"}`},
		},
		wantMatched: 2,
		uncertain:   true,
	},
	{
		// The same in company traits (stored after the user's) and metadata.
		name: "an empty key's object lends its keys to company and metadata",
		def:  rules.Definition{Filter: `true`, Value: `company.plan + metadata.tokens`, Aggregation: rules.AggSum},
		events: []regEvent{
			{user: `{"a":1}`, company: `{"":{"plan":5}}`, meta: `{"tokens":1}`},
			{company: `{"plan":2}`, meta: `{"":{"tokens":7},"b":1}`},
			{company: `{"plan":2}`, meta: `{"tokens":3}`},
		},
		wantMatched: 3,
		uncertain:   true,
	},
	{
		name:        "an empty key's object lends its keys to in",
		def:         rules.Definition{Filter: `"tier" in user`, Aggregation: rules.AggCount},
		events:      []regEvent{{user: `{"":{"tier":1}}`}, {user: `{"tier":1}`}, {user: `{"":1,"b":2}`}},
		wantMatched: 1,
		uncertain:   true,
	},
	{
		// ClickHouse 18.16 folds <= and >= of two constant strings wrongly
		// when one is a proper prefix of the other ('' >= 'SEARCH' is 1).
		// Found with METERD_DIFF_SEED=377742196938473528.
		name:        "constant string >= a longer one",
		def:         rules.Definition{Filter: `("" >= "SEARCH")`, Value: `metadata.u`, Aggregation: rules.AggSum},
		events:      []regEvent{{meta: `{"u":1}`}, {}},
		wantMatched: 0,
	},
	{
		name:        "constant string comparisons with prefixes",
		def:         rules.Definition{Filter: `"x" <= "xy" and "xy" >= "x" and not ("x" >= "xy") and not ("xy" <= "x") and "x" >= "x"`, Aggregation: rules.AggCount},
		events:      []regEvent{{}, {}},
		wantMatched: 2,
	},
	{
		// expr skips a chain's nil normalisation when the chain is an
		// operand of ??: a ?? b?.c is then the typed nil map at which the
		// chain stopped (response.headers without a response, a nil
		// metadata), and len of it is 0 where len(nil) fails. Found with
		// METERD_DIFF_SEED=176766169098984350.
		name: "a ?? chain that stopped at a nil map has length 0",
		def:  rules.Definition{Filter: `(-9223372036854775807 < len((metadata.arr ?? response.headers?.["content-type"])))`, Aggregation: rules.AggCount},
		events: []regEvent{
			{meta: `{"plan":-0}`, respHeaders: map[string]string{"content-type": "text/plain"}}, // no response: len 0
			{meta: `{"plan":1}`, status: 200, respHeaders: map[string]string{"content-type": "abc"}},
			{meta: `{"arr":[1]}`},
			{meta: `{"arr":5}`}, // len(5) fails
		},
		wantMatched: 3,
	},
	{
		name:        "a ?? chain stopped at a nil metadata",
		def:         rules.Definition{Filter: `len(metadata.x ?? metadata?.y) == 0`, Aggregation: rules.AggCount},
		events:      []regEvent{{meta: `{}`}, {meta: `{"a":1}`} /* y is a missing key: nil, len fails */},
		wantMatched: 1,
	},
	{
		// ... and as the key of in, the typed nil map fails (nil tests "").
		name:        "a ?? chain stopped at a nil map as the key of in",
		def:         rules.Definition{Filter: `not ((metadata.x ?? metadata?.y) in company)`, Aggregation: rules.AggCount},
		events:      []regEvent{{meta: `{}`}, {meta: `{"a":1}`}},
		wantMatched: 1,
	},
}

func TestRegressions(t *testing.T) {
	ctx := context.Background()
	s := newDiffStores(t)
	for i, c := range regressions {
		at := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 72 * time.Hour)
		var evs []storage.Event
		for j, e := range c.events {
			evs = append(evs, e.event("reg-"+at.Format("20060102")+"-"+string(rune('a'+j)), at.Add(time.Duration(j)*time.Minute)))
		}
		insert(t, s.duck, evs)
		if s.ch != nil {
			insert(t, s.ch, evs)
		}
		c.def.Name = c.name
		m := compile(t, c.def)
		w := Window{From: at, To: at.Add(24 * time.Hour), Bucket: BucketHour, Top: MaxTop}
		vm, err := BacktestVM(ctx, s.duck, m, w)
		if err != nil {
			t.Fatal(err)
		}
		if vm.MatchedEvents != c.wantMatched {
			t.Errorf("%s: the VM matched %d, want %d", c.name, vm.MatchedEvents, c.wantMatched)
		}
		if !c.uncertain {
			s.check(t, ctx, c.name, []Version{{Meter: m}}, w, true)
			continue
		}
		for _, st := range []storage.Store{s.duck, s.ch} {
			if st == nil {
				continue
			}
			var unc *ErrUncertain
			if _, err := BacktestSQL(ctx, st, m, w); !errors.As(err, &unc) {
				t.Errorf("%s: %s: SQL should report uncertain events, got %v", c.name, st.Backend(), err)
			}
			got, err := Backtest(ctx, st, m, w)
			if err != nil {
				t.Fatal(err)
			}
			if d := compareResults(got, vm, tol{}); d != "" || got.Engine != EngineVM {
				t.Errorf("%s: %s: Backtest (engine %s) differs from the VM:\n%s", c.name, st.Backend(), got.Engine, d)
			}
		}
	}
}
