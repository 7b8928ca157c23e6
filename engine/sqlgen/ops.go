package sqlgen

import (
	"strings"

	"github.com/expr-lang/expr/ast"

	"github.com/meterd/meterd/rules/re2"
	"github.com/meterd/meterd/storage"
)

func (t *tr) binary(n *ast.BinaryNode) (val, error) {
	switch n.Operator {
	case "and", "&&", "or", "||":
		return t.logical(n)
	case "??":
		return t.coalesce(n)
	case "in":
		return t.in(n)
	case "matches":
		return t.matches(n)
	}
	a, b, err := t.operands(n)
	if err != nil {
		return val{}, err
	}
	both := t.errOr(a.err, b.err)
	switch n.Operator {
	case "==", "!=":
		// Both sides statically int (or string) compile to OpEqualInt
		// (OpEqualString), which fails on anything else at run time: the
		// nil of an optional chain.
		if ka, ok := typeKind(n.Left); ok && (ka == kInt || ka == kString) && isPlainType(n.Left) && isPlainType(n.Right) {
			if kb, ok := typeKind(n.Right); ok && kb == ka {
				both = t.errOr(both, t.not(t.is(a, ka)), t.not(t.is(b, ka)))
			}
		}
		eq := t.eq(a, b)
		if n.Operator == "!=" {
			eq = t.not(eq)
		}
		return boolVal(eq, both), nil
	case "<", ">", "<=", ">=":
		return t.compare(n.Operator, a, b, both), nil
	case "+", "-", "*":
		return t.arith(n.Operator, a, b, both), nil
	case "/":
		ok := t.and(t.isAny(a, numKinds), t.isAny(b, numKinds))
		v := val{ks: one(kFloat), err: t.errOr(both, t.not(ok)), nan: true}
		if !t.isFalse(ok) {
			v.f = "(" + t.numF(a) + " / " + t.numF(b) + ")"
		}
		return v, nil
	case "%":
		ok := t.and(t.is(a, kInt), t.is(b, kInt))
		v := val{ks: one(kInt), err: t.errOr(both, t.not(ok))}
		if a.ks.has(kInt) && b.ks.has(kInt) {
			v.i = t.d.IntMod(a.i, b.i)
			v.err = t.errOr(v.err, "("+b.i+" = 0)")
		}
		return v, nil
	case "**", "^":
		return t.pow(n, a, b, both)
	case "contains", "startsWith", "endsWith":
		return t.stringTest(n.Operator, a, b, both), nil
	}
	return val{}, untranslatable(n.Operator, "unknown operator")
}

// operands translates both sides of a binary operator.
func (t *tr) operands(n *ast.BinaryNode) (a, b val, err error) {
	if a, err = t.node(n.Left); err != nil {
		return val{}, val{}, err
	}
	b, err = t.node(n.Right)
	return a, b, err
}

// logical: and/or short-circuit; a non-bool left side fails; the right
// side is the result as is when the left one does not decide.
func (t *tr) logical(n *ast.BinaryNode) (val, error) {
	a, b, err := t.operands(n)
	if err != nil {
		return val{}, err
	}
	isAnd := n.Operator == "and" || n.Operator == "&&"
	ab := a.b
	if !a.ks.has(kBool) {
		ab = t.d.False()
	}
	// evalRight: the left side does not decide.
	evalRight := ab
	decided := boolVal(t.d.False(), "")
	if !isAnd {
		evalRight = t.not(ab)
		decided = boolVal(t.d.True(), "")
	}
	var v val
	if b.ks.only(kBool) { // plain boolean logic
		if isAnd {
			v = boolVal(t.and(ab, b.b), "")
		} else {
			v = boolVal(t.or(ab, b.b), "")
		}
	} else {
		v = t.choose(evalRight, b, decided)
		v.text = ""
	}
	v.err = t.errOr(a.err, t.not(t.is(a, kBool)), t.and(evalRight, b.err))
	return v, nil
}

func (t *tr) coalesce(n *ast.BinaryNode) (val, error) {
	a, b, err := t.operands(n)
	if err != nil {
		return val{}, err
	}
	if _, ok := n.Right.(*ast.ChainNode); ok && b.ks.has(kNil) {
		// expr skips the chain's nil normalisation under ??: a chain
		// that stopped at a nil map leaves that typed nil as the value.
		b.nilMap = b.rootShort
	}
	isNil := t.is(a, kNil)
	left := a
	left.ks &^= one(kNil)
	left.nilMap = ""
	if left.ks == 0 { // a is always nil
		b.err = t.errOr(a.err, b.err)
		return b, nil
	}
	if _, ok := left.ks.single(); ok {
		left.kind = ""
	}
	v := t.choose(isNil, b, left)
	v.text = ""
	v.err = t.errOr(a.err, t.and(isNil, b.err))
	return v, nil
}

// eq is the VM's == (runtime.Equal): never fails; ints and floats compare
// as float64 (int with int exactly); other kinds must match; nils are
// equal; arrays and objects compare by value.
func (t *tr) eq(a, b val) string {
	var alts []string
	for k := kNil; k < nKinds; k++ {
		if !a.ks.has(k) || !b.ks.has(k) {
			continue
		}
		both := t.and(t.is(a, k), t.is(b, k))
		var same string
		switch k {
		case kNil:
			same = t.d.True()
		case kBool:
			same = "(" + a.b + " = " + b.b + ")"
		case kInt:
			same = "(" + a.i + " = " + b.i + ")"
		case kFloat:
			same = t.floatCmp("=", a.f, b.f, a.nan || b.nan)
		case kString:
			same = "(" + a.s + " = " + b.s + ")"
		case kArray, kObject:
			same = "(" + t.canonJSON(a.s) + " = " + t.canonJSON(b.s) + ")"
		}
		alts = append(alts, t.and(both, same))
	}
	if a.ks.has(kInt) && b.ks.has(kFloat) {
		alts = append(alts, t.and(t.is(a, kInt), t.is(b, kFloat), t.floatCmp("=", t.d.ToFloat(a.i), b.f, b.nan)))
	}
	if a.ks.has(kFloat) && b.ks.has(kInt) {
		alts = append(alts, t.and(t.is(a, kFloat), t.is(b, kInt), t.floatCmp("=", a.f, t.d.ToFloat(b.i), a.nan)))
	}
	return t.or(alts...)
}

// canonJSON makes equal JSON values equal texts: storage.Attrs stores
// arrays re-encoded (keys sorted, compact), and only -0 and 0 differ in
// text while being equal numbers. Objects are stored as a digest that
// already counts -0 as 0 (storage.ObjectDigest), which this leaves alone;
// rows stored before digests hold the object's text, as arrays.
func (t *tr) canonJSON(s string) string {
	return t.bind(t.d.ReplaceAll(s, t.d.Str(storage.NegZeroPattern), t.d.Str(`\1\2`)))
}

// compare: numbers with numbers, strings with strings (bytes); anything
// else fails.
func (t *tr) compare(op string, a, b val, both string) val {
	numOK := t.and(t.isAny(a, numKinds), t.isAny(b, numKinds))
	strOK := t.and(t.is(a, kString), t.is(b, kString))
	v := val{ks: one(kBool), err: t.errOr(both, t.not(t.or(numOK, strOK)))}
	var num, str string
	if !t.isFalse(numOK) {
		bothInt := t.and(t.is(a, kInt), t.is(b, kInt))
		num = t.floatCmp(op, t.numF(a), t.numF(b), a.nan || b.nan)
		if !t.isFalse(bothInt) {
			num = t.ifv(bothInt, "("+a.i+" "+op+" "+b.i+")", num)
		}
	}
	if !t.isFalse(strOK) {
		str = t.d.StrCmp(op, a.s, b.s)
	}
	v.b = t.ifv(numOK, num, str)
	if v.b == "" {
		v.b = t.d.False()
	}
	return v
}

// arith: + - * on ints wrap; with a float they are float; + joins
// strings.
func (t *tr) arith(op string, a, b val, both string) val {
	bothInt := t.and(t.is(a, kInt), t.is(b, kInt))
	numOK := t.and(t.isAny(a, numKinds), t.isAny(b, numKinds))
	strOK := t.d.False()
	if op == "+" {
		strOK = t.and(t.is(a, kString), t.is(b, kString))
	}
	floatOK := t.and(numOK, t.not(bothInt))
	v := val{err: t.errOr(both, t.not(t.or(numOK, strOK)))}
	if !t.isFalse(bothInt) {
		v.ks |= one(kInt)
		switch op {
		case "+":
			v.i = t.d.IntAdd(a.i, b.i)
		case "-":
			v.i = t.d.IntSub(a.i, b.i)
		case "*":
			v.i = t.d.IntMul(a.i, b.i)
		}
	}
	if !t.isFalse(floatOK) {
		v.ks |= one(kFloat)
		v.f = "(" + t.numF(a) + " " + op + " " + t.numF(b) + ")"
		v.nan = true // inf - inf, 0 * inf
	}
	if !t.isFalse(strOK) {
		v.ks |= one(kString)
		v.s = t.d.Concat(a.s, b.s)
	}
	if v.ks == 0 {
		v.ks = one(kNil) // always fails
		return v
	}
	if _, ok := v.ks.single(); !ok {
		code := func(k kind) string { return t.kindSQL(val{ks: one(k)}) }
		v.kind = t.d.If(bothInt, code(kInt), t.d.If(numOK, code(kFloat), code(kString)))
	}
	return v
}

// stringTest: contains, startsWith, endsWith give false when a side is
// nil and fail when a side is not a string.
func (t *tr) stringTest(op string, a, b val, both string) val {
	anyNil := t.or(t.is(a, kNil), t.is(b, kNil))
	strs := t.and(t.is(a, kString), t.is(b, kString))
	v := boolVal(t.d.False(), t.errOr(both, t.and(t.not(anyNil), t.not(strs))))
	if !t.isFalse(strs) {
		var test string
		switch op {
		case "contains":
			test = t.d.Contains(a.s, b.s)
		case "startsWith":
			test = t.d.HasPrefix(a.s, b.s)
		case "endsWith":
			test = t.d.HasSuffix(a.s, b.s)
		}
		v.b = t.and(strs, test)
	}
	return v
}

func (t *tr) matches(n *ast.BinaryNode) (val, error) {
	p, ok := n.Right.(*ast.StringNode)
	if !ok {
		return val{}, untranslatable("matches", "the pattern must be a constant string")
	}
	pattern, err := re2.Normalize(p.Value)
	if err != nil {
		return val{}, untranslatable("matches", "%v", err)
	}
	// Only versions saved before rules checked this get here.
	if size, _ := re2.ProgramSize(p.Value); size > re2.MaxProgram {
		return val{}, untranslatable("matches", "the pattern is too large for the stores' RE2 (about %d instructions, at most %d)", size, re2.MaxProgram)
	}
	a, err := t.node(n.Left)
	if err != nil {
		return val{}, err
	}
	// nil gives false; a non-string fails.
	v := boolVal(t.d.False(), t.errOr(a.err, t.not(t.isAny(a, one(kNil)|one(kString)))))
	if a.ks.has(kString) {
		v.b = t.and(t.is(a, kString), t.d.Match(a.s, t.d.Str(pattern)))
	}
	return v, nil
}

// in: membership in a constant list (== rules), or key presence in a
// map (the key must be a string; nil tests the key "").
func (t *tr) in(n *ast.BinaryNode) (val, error) {
	x, err := t.node(n.Left)
	if err != nil {
		return val{}, err
	}
	if arr, ok := n.Right.(*ast.ArrayNode); ok {
		var alts []string
		for _, e := range arr.Nodes {
			c, ok := constant(e)
			if !ok {
				return val{}, untranslatable("in", "the list must hold constants")
			}
			alts = append(alts, t.eq(x, t.constVal(c)))
		}
		return boolVal(t.or(alts...), x.err), nil
	}
	r, err := t.member(n.Right)
	if err != nil {
		return val{}, err
	}
	if r.what != refHeaders && r.what != refRoot {
		return val{}, untranslatable("in", "the right side must be a list or a map")
	}
	// nil tests the key ""; a typed nil map (val.nilMap) is not a
	// string key and fails.
	typedNil := t.and(t.is(x, kNil), t.orFalse(x.nilMap))
	v := boolVal(t.d.False(), t.errOr(x.err, t.not(t.isAny(x, one(kNil)|one(kString))), typedNil))
	var alts []string
	if x.ks.has(kNil) {
		alts = append(alts, t.and(t.is(x, kNil), t.keyIn(r, t.d.Str(""))))
	}
	if x.ks.has(kString) {
		test := t.keyIn(r, x.s)
		if r.what == refRoot {
			// A top-level key never contains "." in an event whose JSON
			// keys have none; the flattened key "a.b" is then a nested
			// one. Events with such keys are uncertain.
			lit, isLit := n.Left.(*ast.StringNode)
			switch {
			case isLit && !strings.Contains(lit.Value, "."):
				// Exact, unless an empty key's object lends its keys.
				if lit.Value != "" {
					t.uncertain(t.and(test, t.emptyKeyObject(r.which)), emptyKeyWhy(r.which))
				}
			case isLit:
				test = t.d.False()
			default:
				test = t.and(test, t.not(t.d.Contains(x.s, t.d.Str("."))))
			}
			if !isLit || strings.Contains(lit.Value, ".") {
				t.uncertain(t.dirty(jsonRoots[r.which]), `a key containing "." or an empty key in `+r.which+` (key presence is ambiguous in the flattened columns)`)
			}
		}
		alts = append(alts, t.and(t.is(x, kString), test))
	}
	v.b = t.or(alts...)
	return v, nil
}
