package backtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// The differential test's generators: events with awkward data and
// meters from a grammar over the whole environment and every allowed
// construct of rules.Language.

// Keys of metadata and traits: expressions and events draw from the same
// pool so that paths hit present keys, missing keys and every JSON type.
var (
	topKeys    = []string{"n", "s", "t", "u", "nul", "obj", "arr", "big", "tokens", "plan", "z"}
	nestedKeys = []string{"b", "c", "d", "tier"}
	weirdKeys  = []string{"a.b", "", "key with space", "obj.b", "é"}
)

// jsonValues are awkward JSON values as text.
var jsonValues = []string{
	`0`, `-0`, `1`, `-1`, `1.5`, `150`, `-7`, `0.1`, `2.5`, `-2.5`, `1e300`, `-1e300`, `1.7976931348623157e308`,
	`5e-324`, `9007199254740993`, `1e21`, `123456789012345678`, `9.223372036854775807e18`, `4.5e15`, `0.49999999999999994`,
	`""`, `"150"`, `"1.5"`, `" 12"`, `"-0"`, `"abc"`, `"ü"`, `"ß"`, `"İ"`, `"émbed-😀"`, `"a.b"`, `"x\ny"`, `"007"`,
	`"1e400"`, `"9223372036854775808"`, `"-9223372036854775808"`, `"\""`, `"\\"`, `"K"`, `"/v1/search"`, `"SEARCH"`,
	`"1.91168508050049"`, `"123456789012345678901234567890"`, `"+.5e-3"`, `" a \t"`, `"\u00a0x\u2003"`, `"pro"`, `"1_0"`,
	`true`, `false`, `null`,
	`[]`, `[1,"x"]`, `[0]`, `[-0]`, `[[1],{"a":-0}]`, `["a,]","b"]`,
	`{}`, `{"b":2}`, `{"b":-0}`, `{"c":{"d":"x"}}`, `{"tier":"pro","b":[1]}`,
}

type eventGen struct {
	r     *rand.Rand
	base  time.Time
	span  time.Duration
	weird bool // use keys with "." and empty keys (the SQL path then defers to the VM)
}

func (g *eventGen) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

// object is a random JSON object text of depth at most d.
func (g *eventGen) object(d int) string {
	n := g.r.IntN(6)
	seen := map[string]bool{}
	var parts []string
	for range n {
		k := g.pick(topKeys)
		if d < 2 {
			k = g.pick(nestedKeys)
		}
		if g.weird && g.r.IntN(6) == 0 {
			k = g.pick(weirdKeys)
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		v := g.pick(jsonValues)
		if d > 0 && g.r.IntN(4) == 0 {
			v = g.object(d - 1)
		}
		kj, _ := json.Marshal(k)
		parts = append(parts, string(kj)+":"+v)
	}
	sp := ""
	if g.r.IntN(10) == 0 {
		sp = " " // a non-nil empty object in the VM when n == 0
	}
	return "{" + sp + strings.Join(parts, ",") + "}"
}

func (g *eventGen) event(i int) storage.Event {
	r := g.r
	at := g.base.Add(time.Duration(r.Int64N(int64(g.span)))).Truncate(time.Millisecond)
	id := fmt.Sprintf("ev-%d-%d", g.base.Unix(), i)
	companies := []string{"c1", "c2", "c3", "", "ç-ü"}
	users := []string{"u1", "u2", "u3", "u4", ""}
	routes := []string{"/v1/search", "/v1/users/7", "/v2/orders", "/health", "/", "/v1/ü", ""}
	e := storage.Event{
		ID: id, ExternalID: id, Format: storage.FormatMoesif, Time: at, ReceivedAt: at,
		Verb: g.pick([]string{"GET", "POST", "DELETE"}), Route: g.pick(routes), Host: g.pick([]string{"api.example.com", "x", ""}),
		IP: "10.0.0." + strconv.Itoa(r.IntN(4)), APIVersion: g.pick([]string{"", "2024-01-01"}),
		RequestSize: []int64{0, 1, 512, 1 << 40}[r.IntN(4)],
		UserID:      g.pick(users), CompanyID: g.pick(companies), SessionToken: g.pick([]string{"", "s1", "s2"}),
		Weight:   []int64{1, 1, 10, 0}[r.IntN(4)],
		Metadata: g.object(2), UserTraits: g.object(1), CompanyTraits: g.object(1),
	}
	e.URI = "https://api.example.com" + e.Route
	if r.IntN(3) == 0 {
		e.URI += "?q=ü&page=" + strconv.Itoa(r.IntN(3))
	}
	e.RequestHeaders = map[string]string{}
	for _, k := range []string{"x-api-key", "content-type", "user-agent"} {
		if r.IntN(2) == 0 {
			e.RequestHeaders[k] = g.pick([]string{"live_1", "test_2", "", "application/json", "ü"})
		}
	}
	if r.IntN(8) != 0 {
		e.HasResponse = true
		e.Status = []int32{200, 200, 201, 400, 404, 500}[r.IntN(6)]
		e.DurationMs = []int64{0, 1, 35, 800}[r.IntN(4)]
		e.ResponseTime = at.Add(time.Duration(e.DurationMs) * time.Millisecond)
		e.ResponseSize = []int64{0, 10, 2_000_000}[r.IntN(3)]
		e.ResponseHeaders = map[string]string{}
		if r.IntN(3) != 0 {
			e.ResponseHeaders["content-type"] = g.pick([]string{"application/json", "text/plain", ""})
		}
	} else if r.IntN(2) == 0 {
		// Headers stored for a call without a response are not visible.
		e.ResponseHeaders = map[string]string{"content-type": "text/plain"}
	}
	if r.IntN(4) == 0 { // blocked by a governance rule: most meters skip it
		e.BlockedBy = g.pick([]string{"r1", "6650a1b2c3d4e5f601234567", "ü"})
	}
	return e
}

// events returns n events in [base, base+span), plus some repeats of
// earlier ids (duplicates the store drops).
func (g *eventGen) events(n int) []storage.Event {
	out := make([]storage.Event, 0, n+n/8)
	for i := range n {
		out = append(out, g.event(i))
		if i > 0 && g.r.IntN(8) == 0 {
			dup := out[g.r.IntN(len(out))]
			dup.Metadata = g.object(1) // a retry: same id, different content
			out = append(out, dup)
		}
	}
	return out
}

// exprGen generates meter expressions. Productions are type-directed so
// that most pass the checker; the rest are skipped.
type exprGen struct {
	r    *rand.Rand
	used map[string]int // constructs generated, for coverage
}

func (g *exprGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g *exprGen) mark(c string)            { g.used[c]++ }

var intLits = []string{"0", "1", "2", "7", "-3", "200", "150", "1_000", "0x2A", "9223372036854775807", "-9223372036854775807", "4611686018427387904", "1000000007"}
var floatLits = []string{"0.0", "1.5", "0.1", "2.5", "-2.5", "1e300", "1e-300", "1e6", "0.49999999999999994", "4.5e15", "9.2e18"}
var strLits = []string{`""`, `"a"`, `"ü"`, `"150"`, `"/v1/"`, `"ß"`, `"pro"`, `"SEARCH"`, `"é"`, `"1.5"`, `"-12"`, `" 12"`, `"x\ny"`, `'K'`, "`raw`", `"😀"`, `"a.b"`, `"\u00a0"`}
var patterns = []string{`^/v1/`, `search`, `(?i)SEARCH`, `^.$`, `ü`, `(?i)ß`, `\d+`, `^$`, `a|b`, `[a-c]+`, `\p{L}`, `(?s)x.y`, `x.y`, `^\w+$`, `(?i)k`, `o{2,3}`, `\bv1\b`, `(?m)^y`, `[^a]`, `é`, `(?i)[é]`, `^(a|b)*?$`, `\.`, `^-?\d+(\.\d+)?$`}

func (g *exprGen) path() string {
	root := g.pick("metadata", "metadata", "metadata", "company", "user")
	k := g.pick(topKeys...)
	if root != "metadata" {
		k = g.pick("plan", "n", "s", "t", "obj", "tier", "arr")
	}
	p := root + "." + k
	if g.r.IntN(8) == 0 {
		p = root + `["` + g.pick("key with space", "é", k) + `"]`
		g.mark(`a["b"]`)
	}
	if g.r.IntN(8) == 0 {
		p = root + "?." + k
		g.mark("?.")
	}
	for g.r.IntN(3) == 0 {
		sep := "."
		if g.r.IntN(2) == 0 {
			sep = "?."
			g.mark("?.")
		}
		p += sep + g.pick(nestedKeys...)
		g.mark("nested path")
	}
	return p
}

func (g *exprGen) field(typ string) string {
	switch typ {
	case "int":
		return g.pick("response.status", "response.body_size", "request.body_size", "duration_ms", "time", "weight")
	case "str":
		f := g.pick("request.route", "request.verb", "request.uri", "request.host", "request.ip", "request.api_version",
			"user_id", "company_id", "session_token", "blocked_by", `request.headers["x-api-key"]`, `response.headers["content-type"]`,
			`request.headers.accept`, `response.headers?.["content-type"]`, `request.headers?.["x-api-key"]`)
		if strings.Contains(f, "headers") {
			g.mark("headers")
		}
		return f
	}
	return g.path()
}

// any is an expression of any (often dynamic) type.
func (g *exprGen) any(d int) string {
	switch g.r.IntN(5) {
	case 0:
		return g.num(d)
	case 1:
		return g.str(d)
	case 2:
		return g.bool(d)
	}
	if d > 0 && g.r.IntN(4) == 0 {
		switch g.r.IntN(3) {
		case 0:
			g.mark("??")
			return "(" + g.any(d-1) + " ?? " + g.any(d-1) + ")"
		case 1:
			g.mark("?:")
			return "(" + g.bool(d-1) + " ? " + g.any(d-1) + " : " + g.any(d-1) + ")"
		default:
			g.mark("and/or value")
			return "(" + g.bool(d-1) + " " + g.pick("and", "or", "&&", "||") + " " + g.any(d-1) + ")"
		}
	}
	if g.r.IntN(6) == 0 {
		return "nil"
	}
	return g.path()
}

func (g *exprGen) bool(d int) string {
	if d <= 0 {
		switch g.r.IntN(4) {
		case 0:
			return g.pick("true", "false")
		case 1:
			return g.path()
		default:
			return g.num(0) + " " + g.cmpOp() + " " + g.num(0)
		}
	}
	switch g.r.IntN(17) {
	case 0, 1:
		op := g.pick("and", "or", "&&", "||")
		g.mark(op)
		return "(" + g.bool(d-1) + " " + op + " " + g.bool(d-1) + ")"
	case 2:
		op := g.pick("not ", "!")
		g.mark(op)
		return op + "(" + g.bool(d-1) + ")"
	case 3:
		op := g.cmpOp()
		return "(" + g.num(d-1) + " " + op + " " + g.num(d-1) + ")"
	case 4:
		op := g.cmpOp()
		return "(" + g.str(d-1) + " " + op + " " + g.str(d-1) + ")"
	case 5:
		op := g.pick("==", "!=", "<", ">=")
		g.mark(op + " dynamic")
		return "(" + g.any(d-1) + " " + op + " " + g.any(d-1) + ")"
	case 6:
		op := g.pick("contains", "startsWith", "endsWith", "not contains", "not startsWith", "not endsWith")
		g.mark(strings.TrimPrefix(op, "not "))
		return "(" + g.str(d-1) + " " + op + " " + g.str(d-1) + ")"
	case 7:
		g.mark("matches")
		return "(" + g.str(d-1) + " " + g.pick("matches", "not matches") + " " + strconv.Quote(g.pick(patterns...)) + ")"
	case 8:
		g.mark("in list")
		n := 1 + g.r.IntN(4)
		var xs []string
		for range n {
			xs = append(xs, g.pick(append(append(append([]string{"nil", "true", "false"}, intLits...), floatLits...), strLits...)...))
		}
		return "(" + g.any(d-1) + " " + g.pick("in", "not in") + " [" + strings.Join(xs, ", ") + "])"
	case 9:
		g.mark("in map")
		m := g.pick("metadata", "company", "user", "request.headers", "response.headers")
		return "(" + g.pick(g.str(d-1), `"s"`, `"obj"`, `"plan"`, `"x-api-key"`, `"a.b"`, `""`, g.any(d-1)) + " " + g.pick("in", "not in") + " " + m + ")"
	case 10:
		g.mark("?:")
		if g.r.IntN(2) == 0 {
			g.mark("if else")
			return "(if " + g.bool(d-1) + " { " + g.bool(d-1) + " } else { " + g.bool(d-1) + " })"
		}
		return "(" + g.bool(d-1) + " ? " + g.bool(d-1) + " : " + g.bool(d-1) + ")"
	case 11:
		g.mark("??")
		return "(" + g.any(d-1) + " ?? " + g.bool(d-1) + ")"
	case 12:
		g.mark("chained <")
		return "(" + g.num(d-1) + " < " + g.num(d-1) + " <= " + g.num(d-1) + ")"
	case 13:
		return "(" + g.bool(d-1) + " " + g.pick("==", "!=") + " " + g.bool(d-1) + ")"
	}
	return g.any(d - 1)
}

func (g *exprGen) cmpOp() string {
	op := g.pick("==", "!=", "<", ">", "<=", ">=")
	g.mark(op)
	return op
}

func (g *exprGen) num(d int) string {
	if d <= 0 || g.r.IntN(4) == 0 {
		switch g.r.IntN(4) {
		case 0:
			return g.pick(intLits...)
		case 1:
			return g.pick(floatLits...)
		case 2:
			return g.field("int")
		}
		return g.path()
	}
	switch g.r.IntN(12) {
	case 0, 1, 2:
		op := g.pick("+", "-", "*", "/", "%", "+", "-", "*")
		g.mark(op)
		return "(" + g.num(d-1) + " " + op + " " + g.num(d-1) + ")"
	case 3:
		op := g.pick("**", "^")
		g.mark(op)
		return "(" + g.num(d-1) + " " + op + " " + g.pick("2", "0", "1", "-1", "2.0", "3", "0.5") + ")"
	case 4:
		op := g.pick("-", "+")
		g.mark("unary " + op)
		return op + "(" + g.num(d-1) + ")"
	case 5:
		f := g.pick("abs", "ceil", "floor", "round")
		g.mark(f)
		return f + "(" + g.num(d-1) + ")"
	case 6:
		g.mark("len")
		return "len(" + g.pick(g.str(d-1), g.path()) + ")"
	case 7:
		f := g.pick("int", "float")
		g.mark(f)
		return f + "(" + g.any(d-1) + ")"
	case 8:
		g.mark("?:")
		return "(" + g.bool(d-1) + " ? " + g.num(d-1) + " : " + g.num(d-1) + ")"
	case 9:
		g.mark("??")
		return "(" + g.path() + " ?? " + g.num(d-1) + ")"
	}
	return g.path()
}

func (g *exprGen) str(d int) string {
	if d <= 0 || g.r.IntN(4) == 0 {
		switch g.r.IntN(3) {
		case 0:
			return g.pick(strLits...)
		case 1:
			return g.field("str")
		}
		return g.path()
	}
	switch g.r.IntN(9) {
	case 0:
		g.mark("+ string")
		return "(" + g.str(d-1) + " + " + g.str(d-1) + ")"
	case 1:
		f := g.pick("lower", "upper")
		g.mark(f)
		return f + "(" + g.str(d-1) + ")"
	case 2:
		g.mark("trim")
		if g.r.IntN(2) == 0 {
			return "trim(" + g.str(d-1) + ")"
		}
		return "trim(" + g.str(d-1) + ", " + g.pick(`"/"`, `"x "`, `"ü"`, `""`, `"a-c"`) + ")"
	case 3:
		f := g.pick("trimPrefix", "trimSuffix")
		g.mark(f)
		if g.r.IntN(3) == 0 {
			return f + "(" + g.str(d-1) + ")"
		}
		return f + "(" + g.str(d-1) + ", " + g.str(d-1) + ")"
	case 4:
		g.mark("string")
		return "string(" + g.pick(g.path(), g.field("int"), g.bool(d-1), g.str(d-1), g.pick(intLits...)) + ")"
	case 5:
		g.mark("?:")
		return "(" + g.bool(d-1) + " ? " + g.str(d-1) + " : " + g.str(d-1) + ")"
	case 6:
		g.mark("??")
		return "(" + g.path() + " ?? " + g.str(d-1) + ")"
	}
	return g.field("str")
}

// meter generates a random definition.
func (g *exprGen) meter() rules.Definition {
	agg := g.pick(rules.AggCount, rules.AggSum, rules.AggSum, rules.AggMax, rules.AggMin, rules.AggUnique)
	d := rules.Definition{Name: "fuzz", Aggregation: agg, GroupBy: g.pick(rules.GroupByCompany, rules.GroupByUser)}
	d.Filter = g.bool(1 + g.r.IntN(4))
	if g.r.IntN(5) == 0 {
		d.Filter = "true"
	}
	switch agg {
	case rules.AggCount:
	case rules.AggUnique:
		d.Value = g.pick(g.str(g.r.IntN(3)), g.num(g.r.IntN(3)), g.path(), "user_id")
	default:
		d.Value = g.pick(g.num(g.r.IntN(4)), g.path(), g.any(2))
	}
	if g.r.IntN(8) == 0 { // a meter that counts blocked calls, or some of them
		g.mark("blocked_by")
		d.Filter = "(" + d.Filter + ") " + g.pick("and", "or") + " " +
			g.pick(`blocked_by != ""`, `blocked_by == ""`, `blocked_by == "r1"`, `blocked_by in ["ü", "r1"]`, `(blocked_by startsWith "6650")`)
	}
	return d
}
