package sqlgen

import (
	"fmt"
	"reflect"

	"github.com/expr-lang/expr/ast"
)

// ErrUntranslatable says that a meter uses a construct this translation
// cannot reproduce exactly; the engine runs such meters on the VM.
type ErrUntranslatable struct {
	Construct string // e.g. "**", "trim"
	Reason    string
}

func (e *ErrUntranslatable) Error() string {
	return fmt.Sprintf("%s cannot be translated to SQL: %s", e.Construct, e.Reason)
}

func untranslatable(construct, format string, args ...any) error {
	return &ErrUntranslatable{Construct: construct, Reason: fmt.Sprintf(format, args...)}
}

// node translates one node of a checked tree (see the tree contract in
// package rules). The result is bound: its fields are short.
func (t *tr) node(n ast.Node) (val, error) {
	v, err := t.node1(n)
	if err != nil {
		return val{}, err
	}
	return t.bindVal(t.fill(v)), nil
}

// fill gives every kind of v a value expression (zero constants for
// kinds that only occur when v fails), so that parents can use them.
func (t *tr) fill(v val) val {
	if v.ks == 0 {
		v.ks = one(kNil)
	}
	if v.ks.has(kBool) && v.b == "" {
		v.b = t.d.False()
	}
	if v.ks.has(kInt) && v.i == "" {
		v.i = t.d.Int(0)
	}
	if v.ks.has(kFloat) && v.f == "" {
		v.f = t.d.Float(0)
	}
	if v.ks&(one(kString)|one(kArray)|one(kObject)) != 0 && v.s == "" {
		v.s = "''"
	}
	if _, ok := v.ks.single(); ok {
		v.kind = ""
	} else if v.kind == "" {
		v.kind = "0"
	}
	return v
}

func (t *tr) node1(n ast.Node) (val, error) {
	switch n := n.(type) {
	case *ast.NilNode:
		return val{ks: one(kNil)}, nil
	case *ast.BoolNode:
		if n.Value {
			return boolVal(t.d.True(), ""), nil
		}
		return boolVal(t.d.False(), ""), nil
	case *ast.IntegerNode:
		if k, _ := typeKind(n); k == kFloat { // the checker made it a float constant
			return val{ks: one(kFloat), f: t.d.Float(float64(n.Value))}, nil
		}
		return val{ks: one(kInt), i: t.d.Int(int64(n.Value))}, nil
	case *ast.FloatNode:
		return val{ks: one(kFloat), f: t.d.Float(n.Value)}, nil
	case *ast.StringNode:
		return val{ks: one(kString), s: t.d.Str(n.Value)}, nil
	case *ast.IdentifierNode, *ast.MemberNode, *ast.ChainNode:
		r, err := t.member(n)
		if err != nil {
			return val{}, err
		}
		if r.what != refValue {
			return val{}, untranslatable("whole map", "%s is not a value", r.name)
		}
		return r.v, nil
	case *ast.UnaryNode:
		return t.unary(n)
	case *ast.BinaryNode:
		return t.binary(n)
	case *ast.ConditionalNode:
		return t.conditional(n)
	case *ast.BuiltinNode:
		return t.builtin(n)
	case *ast.CallNode:
		return t.call(n)
	}
	return val{}, untranslatable(fmt.Sprintf("%T", n), "not part of the meter language")
}

// constant folds a literal or a unary minus/plus on a number literal (the
// elements of an in list): Go computes it exactly as the VM does.
func constant(n ast.Node) (any, bool) {
	switch n := n.(type) {
	case *ast.NilNode:
		return nil, true
	case *ast.BoolNode:
		return n.Value, true
	case *ast.IntegerNode:
		if k, _ := typeKind(n); k == kFloat {
			return float64(n.Value), true
		}
		return n.Value, true
	case *ast.FloatNode:
		return n.Value, true
	case *ast.StringNode:
		return n.Value, true
	case *ast.UnaryNode:
		c, ok := constant(n.Node)
		if !ok || (n.Operator != "-" && n.Operator != "+") {
			return nil, false
		}
		if n.Operator == "+" {
			return c, true
		}
		switch x := c.(type) {
		case int:
			return -x, true
		case float64:
			return -x, true
		}
	}
	return nil, false
}

// constVal is the value of a Go constant.
func (t *tr) constVal(c any) val {
	switch x := c.(type) {
	case nil:
		return val{ks: one(kNil)}
	case bool:
		if x {
			return boolVal(t.d.True(), "")
		}
		return boolVal(t.d.False(), "")
	case int:
		return val{ks: one(kInt), i: t.d.Int(int64(x))}
	case float64:
		return val{ks: one(kFloat), f: t.d.Float(x)}
	case string:
		return val{ks: one(kString), s: t.d.Str(x)}
	}
	panic(fmt.Sprintf("constVal(%T)", c))
}

func (t *tr) unary(n *ast.UnaryNode) (val, error) {
	if c, ok := constant(n); ok {
		return t.constVal(c), nil
	}
	x, err := t.node(n.Node)
	if err != nil {
		return val{}, err
	}
	switch n.Operator {
	case "+": // compiles to nothing: no check at all
		return x, nil
	case "-":
		v := val{ks: x.ks & numKinds}
		v.err = t.errOr(x.err, t.not(t.isAny(x, numKinds)))
		if x.ks.has(kInt) {
			v.i = t.d.IntNeg(x.i)
		}
		if x.ks.has(kFloat) {
			v.f = "(-" + x.f + ")"
			v.nan = x.nan
		}
		if _, ok := v.ks.single(); !ok && v.ks != 0 {
			v.kind = x.kind
		}
		if v.ks == 0 {
			v.ks = one(kNil) // always fails
		}
		return v, nil
	case "not", "!":
		return boolVal(t.not(x.b), t.errOr(x.err, t.not(t.is(x, kBool)))), nil
	}
	return val{}, untranslatable(n.Operator, "unknown unary operator")
}

func (t *tr) conditional(n *ast.ConditionalNode) (val, error) {
	c, err := t.node(n.Cond)
	if err != nil {
		return val{}, err
	}
	a, err := t.node(n.Exp1)
	if err != nil {
		return val{}, err
	}
	b, err := t.node(n.Exp2)
	if err != nil {
		return val{}, err
	}
	cond := c.b
	if !c.ks.has(kBool) {
		cond = t.d.False()
	}
	v := t.choose(cond, a, b)
	v.text = ""
	v.err = t.errOr(c.err, t.not(t.is(c, kBool)), t.and(cond, a.err), t.and(t.not(cond), b.err))
	return v, nil
}

// typeKind is the static kind of a checked node, when it has one.
func typeKind(n ast.Node) (kind, bool) {
	typ := n.Type()
	if typ == nil {
		return 0, false
	}
	switch typ.Kind() {
	case reflect.Bool:
		return kBool, true
	case reflect.Int:
		return kInt, true
	case reflect.Float64:
		return kFloat, true
	case reflect.String:
		return kString, true
	}
	return 0, false
}

// isPlainType is the compiler's isSimpleType: a type of no package.
func isPlainType(n ast.Node) bool {
	typ := n.Type()
	return typ != nil && typ.PkgPath() == ""
}
