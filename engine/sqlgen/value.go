package sqlgen

import (
	"regexp"
	"strconv"
	"strings"
)

// kind is a dynamic type of the meter language. The codes of nil to
// object are storage's JSON type codes (meta_types), so a metadata value's
// kind is read straight from the column.
type kind uint8

const (
	kNil kind = iota
	kBool
	kFloat
	kString
	kArray
	kObject
	kInt
	nKinds
)

// kinds is a set of kinds.
type kinds uint8

func one(k kind) kinds           { return 1 << k }
func (s kinds) has(k kind) bool  { return s&one(k) != 0 }
func (s kinds) only(k kind) bool { return s == one(k) }
func (s kinds) single() (kind, bool) {
	for k := kNil; k < nKinds; k++ {
		if s == one(k) {
			return k, true
		}
	}
	return 0, false
}

const (
	jsonKinds = 1<<kNil | 1<<kBool | 1<<kFloat | 1<<kString | 1<<kArray | 1<<kObject
	numKinds  = 1<<kInt | 1<<kFloat
)

// val is one translated node: SQL expressions for the value's dynamic
// kind, whether evaluating it fails, and its value per kind. A field is
// meaningful only for rows where the node does not fail and has that
// kind; it is "" when the node can never have that kind.
type val struct {
	ks   kinds
	kind string // SQL kind code; "" when ks is a single kind
	err  string // SQL bool: evaluation fails; "" when it never does

	b string // bool
	i string // Int64
	f string // Float64
	s string // String; for arrays their compact JSON text, for objects their stored digest (or text)

	// Set for values read from metadata, company or user: the stored text
	// of the value (numbers formatted as storage.Attrs does), for string().
	text string
	// Inside an optional chain: the chain stopped at a nil (the whole
	// chain is then nil). "" when it cannot. rootShort: it stopped at
	// the root, a nil map (metadata, company, user, response.headers).
	short, rootShort string
	// nilMap: when the value is nil, it is a typed nil map. expr leaves
	// one as the value of a ?? b?.c when the chain b?.c stops at a nil
	// map (it skips the chain's nil normalisation under ??); it differs
	// from nil only for len (0) and as the key of in (fails).
	nilMap string
	// nan: the float value may be NaN (computed floats; JSON numbers and
	// constants never are). DuckDB orders NaN above everything and equal
	// to itself, so its comparisons need guards.
	nan bool
}

// tr is the state of one translation: the dialect, the bindings of
// subexpressions to column aliases (so that shared subtrees are written
// once and the SQL grows linearly with the expression), and the
// conditions under which a row is uncertain.
type tr struct {
	d        Dialect
	binds    []bind
	byExpr   map[string]string
	unc      []string
	uncWhy   []string
	inChain  int
	usesCols map[string]bool
}

type bind struct {
	name, expr string
	level      int
}

func newTr(d Dialect) *tr {
	return &tr{d: d, byExpr: map[string]string{}, usesCols: map[string]bool{}}
}

var aliasRef = regexp.MustCompile(`\b_v[0-9]+\b`)

// bind names expr as a column alias unless it is short; equal
// expressions share one alias.
func (t *tr) bind(expr string) string {
	if expr == "" || len(expr) <= 24 || isAlias(expr) {
		return expr
	}
	if name, ok := t.byExpr[expr]; ok {
		return name
	}
	name := "_v" + strconv.Itoa(len(t.binds)+1)
	level := 0
	for _, ref := range aliasRef.FindAllString(expr, -1) {
		if l := t.levelOf(ref); l+1 > level {
			level = l + 1
		}
	}
	t.binds = append(t.binds, bind{name, expr, level})
	t.byExpr[expr] = name
	return name
}

func isAlias(s string) bool {
	return strings.HasPrefix(s, "_v") && aliasRef.MatchString(s) && aliasRef.FindString(s) == s
}

func (t *tr) levelOf(alias string) int {
	n, err := strconv.Atoi(alias[2:])
	if err != nil || n < 1 || n > len(t.binds) {
		return 0
	}
	return t.binds[n-1].level
}

// bindVal binds every field of v.
func (t *tr) bindVal(v val) val {
	v.kind = t.bind(v.kind)
	v.err = t.bind(v.err)
	v.b = t.bind(v.b)
	v.i = t.bind(v.i)
	v.f = t.bind(v.f)
	v.s = t.bind(v.s)
	v.text = t.bind(v.text)
	v.short = t.bind(v.short)
	v.rootShort = t.bind(v.rootShort)
	v.nilMap = t.bind(v.nilMap)
	return v
}

// uncertain records that rows where cond holds cannot be decided exactly
// by the SQL translation (the engine then runs the VM).
func (t *tr) uncertain(cond, why string) {
	if cond == "" || cond == t.d.False() {
		return
	}
	for i, w := range t.uncWhy {
		if w == why {
			t.unc[i] = t.bind(t.or(t.unc[i], cond))
			return
		}
	}
	t.unc = append(t.unc, t.bind(cond))
	t.uncWhy = append(t.uncWhy, why)
}

// uncertainMask is an Int64 with bit i set when uncertainty i holds.
func (t *tr) uncertainMask() string {
	if len(t.unc) == 0 {
		return t.d.Int(0)
	}
	var terms []string
	for i, c := range t.unc {
		terms = append(terms, t.d.If(c, t.d.Int(1<<i), t.d.Int(0)))
	}
	return "(" + strings.Join(terms, " + ") + ")"
}

// Boolean algebra with constant folding ("" counts as false).

func (t *tr) isTrue(x string) bool  { return x == t.d.True() }
func (t *tr) isFalse(x string) bool { return x == "" || x == t.d.False() }

func (t *tr) and(xs ...string) string {
	var out []string
	for _, x := range xs {
		switch {
		case t.isFalse(x):
			return t.d.False()
		case t.isTrue(x):
		default:
			out = append(out, "("+x+")")
		}
	}
	if len(out) == 0 {
		return t.d.True()
	}
	if len(out) == 1 {
		return out[0]
	}
	return "(" + strings.Join(out, " AND ") + ")"
}

func (t *tr) or(xs ...string) string {
	var out []string
	for _, x := range xs {
		switch {
		case t.isTrue(x):
			return t.d.True()
		case t.isFalse(x):
		default:
			out = append(out, "("+x+")")
		}
	}
	if len(out) == 0 {
		return t.d.False()
	}
	if len(out) == 1 {
		return out[0]
	}
	return "(" + strings.Join(out, " OR ") + ")"
}

func (t *tr) not(x string) string {
	switch {
	case t.isFalse(x):
		return t.d.True()
	case t.isTrue(x):
		return t.d.False()
	}
	return "(NOT (" + x + "))"
}

// errOr is like or but keeps "" (cannot fail) when nothing can fail.
func (t *tr) errOr(xs ...string) string {
	r := t.or(xs...)
	if t.isFalse(r) {
		return ""
	}
	return r
}

// ifv is a conditional over one field; "" fields mean "no such value".
func (t *tr) ifv(cond, a, b string) string {
	switch {
	case a == "" && b == "":
		return ""
	case a == "":
		return b
	case b == "":
		return a
	case t.isTrue(cond) || a == b:
		return a
	case t.isFalse(cond):
		return b
	}
	return t.d.If(cond, a, b)
}

// kindSQL is v's kind code as SQL.
func (t *tr) kindSQL(v val) string {
	if k, ok := v.ks.single(); ok {
		return strconv.Itoa(int(k))
	}
	if v.kind == "" { // no kind at all (cannot happen for a valid node)
		return "0"
	}
	return v.kind
}

// is is the SQL condition "v has kind k".
func (t *tr) is(v val, k kind) string {
	switch {
	case !v.ks.has(k):
		return t.d.False()
	case v.ks.only(k):
		return t.d.True()
	}
	return "(" + v.kind + " = " + strconv.Itoa(int(k)) + ")"
}

// isAny is "v has one of the kinds in s".
func (t *tr) isAny(v val, s kinds) string {
	var xs []string
	for k := kNil; k < nKinds; k++ {
		if s.has(k) {
			xs = append(xs, t.is(v, k))
		}
	}
	return t.or(xs...)
}

// numF is v as Float64 for its numeric kinds.
func (t *tr) numF(v val) string {
	switch {
	case v.ks.has(kInt) && v.ks.has(kFloat):
		return t.d.If(t.is(v, kInt), t.d.ToFloat(v.i), v.f)
	case v.ks.has(kInt):
		return t.d.ToFloat(v.i)
	}
	return v.f
}

// choose is cond ? a : b as a value (errors are the caller's).
func (t *tr) choose(cond string, a, b val) val {
	switch {
	case t.isTrue(cond):
		a.err = ""
		return a
	case t.isFalse(cond):
		b.err = ""
		return b
	}
	v := val{ks: a.ks | b.ks}
	if _, ok := v.ks.single(); !ok {
		v.kind = t.d.If(cond, t.kindSQL(a), t.kindSQL(b))
	}
	pick := func(fa, fb string, ka, kb bool) string {
		if !ka {
			fa = ""
		}
		if !kb {
			fb = ""
		}
		return t.ifv(cond, fa, fb)
	}
	v.b = pick(a.b, b.b, a.ks.has(kBool), b.ks.has(kBool))
	v.i = pick(a.i, b.i, a.ks.has(kInt), b.ks.has(kInt))
	v.f = pick(a.f, b.f, a.ks.has(kFloat), b.ks.has(kFloat))
	v.s = pick(a.s, b.s, a.ks&(1<<kString|1<<kArray|1<<kObject) != 0, b.ks&(1<<kString|1<<kArray|1<<kObject) != 0)
	if a.text != "" && b.text != "" {
		v.text = t.ifv(cond, a.text, b.text)
	}
	v.nan = a.nan && a.ks.has(kFloat) || b.nan && b.ks.has(kFloat)
	if a.nilMap != "" || b.nilMap != "" {
		v.nilMap = t.d.If(cond, t.orFalse(a.nilMap), t.orFalse(b.nilMap))
	}
	return v
}

// orFalse is x, or false for "".
func (t *tr) orFalse(x string) string {
	if x == "" {
		return t.d.False()
	}
	return x
}

// floatCmp compares two Float64 values with IEEE semantics (NaN is
// unordered and unequal to everything).
func (t *tr) floatCmp(op, a, b string, nan bool) string {
	if !nan {
		return "(" + a + " " + op + " " + b + ")"
	}
	return t.d.FloatCmp(op, a, b)
}

// boolVal is a bool value.
func boolVal(b, err string) val { return val{ks: one(kBool), b: b, err: err} }
