package sqlgen

import (
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
)

// What a field path resolves to.
const (
	refValue   = iota // a value (v)
	refStruct         // request or response
	refHeaders        // request.headers or response.headers
	refRoot           // metadata, company or user
)

type ref struct {
	what int
	name string // the path as written, for messages
	v    val
	// refStruct: "request" or "response". refHeaders: "req" or "resp".
	// refRoot: "metadata", "company" or "user".
	which string
	// For JSON values: the flattened key (with the trait prefix) and the
	// root it was read from.
	key  string
	root string
}

// Scalar fields of Env and their columns (int columns as Int64).
var scalarFields = map[string]struct {
	col string
	k   kind
}{
	"duration_ms":   {"duration_ms", kInt},
	"time":          {"time_ms", kInt},
	"user_id":       {"user_id", kString},
	"company_id":    {"company_id", kString},
	"session_token": {"session_token", kString},
	"blocked_by":    {"blocked_by", kString},
	"weight":        {"weight", kInt},
}

var requestFields = map[string]struct {
	col string
	k   kind
}{
	"verb": {"verb", kString}, "route": {"route", kString}, "uri": {"uri", kString},
	"host": {"host", kString}, "ip": {"ip", kString}, "api_version": {"api_version", kString},
	"body_size": {"req_size", kInt},
}

var responseFields = map[string]struct {
	col string
	k   kind
}{
	"status": {"status", kInt}, "body_size": {"resp_size", kInt},
}

// JSON roots: the flattened columns and the raw text column.
type jsonRoot struct {
	prefix, keys, types, strs, nums, text string
}

var jsonRoots = map[string]jsonRoot{
	"metadata": {"", "meta_keys", "meta_types", "meta_strs", "meta_nums", "metadata"},
	"company":  {"company.", "trait_keys", "trait_types", "trait_strs", "trait_nums", "company_traits"},
	"user":     {"user.", "trait_keys", "trait_types", "trait_strs", "trait_nums", "user_traits"},
}

func (t *tr) col(name string) string {
	t.usesCols[name] = true
	return name
}

// column is a static field's value.
func (t *tr) column(col string, k kind) val {
	c := t.col(col)
	if k == kInt {
		return val{ks: one(kInt), i: t.d.Int64(c)}
	}
	return val{ks: one(kString), s: c}
}

// hasResponse is the SQL condition "the call had a response".
func (t *tr) hasResponse() string {
	return "(" + t.col("has_response") + ")"
}

// member resolves an identifier or a member chain.
func (t *tr) member(n ast.Node) (ref, error) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if f, ok := scalarFields[n.Value]; ok {
			return ref{what: refValue, name: n.Value, v: t.column(f.col, f.k)}, nil
		}
		switch n.Value {
		case "request", "response":
			return ref{what: refStruct, name: n.Value, which: n.Value}, nil
		case "metadata", "company", "user":
			return ref{what: refRoot, name: n.Value, which: n.Value}, nil
		}
		return ref{}, untranslatable(n.Value, "unknown field")
	case *ast.ChainNode:
		t.inChain++
		r, err := t.member(n.Node)
		t.inChain--
		if err != nil || r.what != refValue || r.v.short == "" {
			return r, err
		}
		// The chain stopped at a nil: its value is nil, and nothing
		// after the stop was evaluated.
		v := r.v
		short := v.short
		v.short = ""
		// Kept for a ?? whose right side this chain is (see val.nilMap).
		v.rootShort = r.v.rootShort
		v.err = t.errOr(t.and(t.not(short), v.err))
		if !v.ks.only(kNil) {
			v.ks |= one(kNil)
			v.kind = t.d.If(short, "0", t.kindSQL(r.v))
		}
		r.v = t.bindVal(v)
		return r, nil
	case *ast.MemberNode:
		return t.fetch(n)
	}
	return ref{}, untranslatable("member", "unexpected %T in a field path", n)
}

func (t *tr) fetch(n *ast.MemberNode) (ref, error) {
	base, err := t.member(n.Node)
	if err != nil {
		return ref{}, err
	}
	prop, ok := n.Property.(*ast.StringNode)
	if !ok {
		return ref{}, untranslatable("a[key expr]", "keys must be constant strings")
	}
	key := prop.Value
	optional := n.Optional && t.inChain > 0
	name := base.name + "." + key
	switch base.what {
	case refStruct:
		if base.which == "request" {
			if key == "headers" {
				return ref{what: refHeaders, name: name, which: "req"}, nil
			}
			if f, ok := requestFields[key]; ok {
				return ref{what: refValue, name: name, v: t.column(f.col, f.k)}, nil
			}
		} else {
			if key == "headers" {
				return ref{what: refHeaders, name: name, which: "resp"}, nil
			}
			if f, ok := responseFields[key]; ok {
				// A call without a response reads 0.
				v := t.column(f.col, f.k)
				v.i = t.d.If(t.hasResponse(), v.i, t.d.Int(0))
				return ref{what: refValue, name: name, v: v}, nil
			}
		}
		return ref{}, untranslatable(name, "unknown field")
	case refHeaders:
		keys, vals := t.col(base.which+"_header_keys"), t.col(base.which+"_header_values")
		idx := t.bind(t.d.KeyIndex(keys, t.d.Str(key)))
		v := val{ks: one(kString), s: t.d.Elem(vals, idx, "''")}
		if base.which == "resp" {
			// Without a response the headers map is nil: every key reads
			// "", and ?. stops the chain.
			v.s = t.d.If(t.hasResponse(), v.s, "''")
			if optional {
				v.short = t.not(t.hasResponse())
				v.rootShort = v.short
			}
		}
		return ref{what: refValue, name: name, v: v}, nil
	case refRoot:
		root := jsonRoots[base.which]
		v := t.lookup(root, root.prefix+key)
		present := "(" + t.keyIndex(root, root.prefix+key) + " > 0)"
		t.uncertain(t.and(present, t.emptyKeyObject(base.which)), emptyKeyWhy(base.which))
		if optional {
			// metadata?.x stops the chain when the object is nil, i.e.
			// when its text is empty, {} or null (rules.EnvFromEvent).
			v.short = t.rootNil(root)
			v.rootShort = v.short
		}
		return ref{what: refValue, name: name, v: v, key: root.prefix + key, root: base.which}, nil
	case refValue:
		if base.root == "" {
			return ref{}, untranslatable(name, "fields are read from the environment, not from a computed value")
		}
		root := jsonRoots[base.root]
		bv := base.v
		// Fetching from nil fails (or stops an optional chain), from an
		// object gives the child (nil when missing), from anything else
		// fails.
		isNil := t.is(bv, kNil)
		notShort := t.not(bv.short)
		stop := ""
		if optional {
			stop = t.and(notShort, t.not(bv.err), isNil)
		}
		key2 := base.key + "." + key
		v := t.lookup(root, key2)
		v.short = t.errOr(bv.short, stop)
		v.rootShort = bv.rootShort
		v.err = t.errOr(bv.err, t.and(notShort, t.not(stop), t.not(t.is(bv, kObject))))
		// A nested key is ambiguous in the flattened columns when a JSON
		// key of the event contains "." or is empty.
		t.uncertain(t.dirty(root), `a key containing "." or an empty key in `+base.root+" (nested paths are ambiguous in the flattened columns)")
		return ref{what: refValue, name: name, v: t.bindVal(v), key: key2, root: base.root}, nil
	}
	return ref{}, untranslatable(name, "unexpected field path")
}

// lookup reads one flattened key: its kind is the stored JSON type code
// (nil when missing), its value the stored number, text or flag.
func (t *tr) lookup(root jsonRoot, key string) val {
	idx := t.keyIndex(root, key)
	text := t.bind(t.d.Elem(t.col(root.strs), idx, "''"))
	num := t.bind(t.d.Elem(t.col(root.nums), idx, "0"))
	return val{
		ks:   jsonKinds,
		kind: t.bind(t.d.Elem(t.col(root.types), idx, "0")),
		b:    "(" + num + " = 1)",
		f:    num,
		s:    text,
		text: text,
	}
}

// keyIndex is the 1-based position of a flattened key, 0 when absent.
func (t *tr) keyIndex(root jsonRoot, key string) string {
	return t.bind(t.d.KeyIndex(t.col(root.keys), t.d.Str(key)))
}

// rootNil is "the JSON object is nil in the environment".
func (t *tr) rootNil(root jsonRoot) string {
	c := t.col(root.text)
	return t.bind(c + " IN ('', '{}', 'null')")
}

// dirtyPattern finds, in a JSON text, a key containing "." (also written
// \u002e) or an empty key: a "." followed by string characters up to a
// closing quote and a colon. It can also fire on other text; that only
// sends a backtest to the VM.
const dirtyPattern = `(\.|\\u002[eE])(\\.|[^"\\])*"\s*:|""\s*:`

func (t *tr) dirty(root jsonRoot) string {
	return t.d.Match(t.col(root.text), t.d.Str(dirtyPattern))
}

// emptyKeyObject is "the object has an empty key holding an object":
// storage flattens that object's children without a prefix ({"":{"a":1}}
// gives the keys "" and "a"), so they read like top-level keys.
// storage.FlattenJSON sorts keys and stores user traits before company
// traits, so for metadata and user the empty key can only be the first
// entry (one array read instead of a search on every row).
func (t *tr) emptyKeyObject(which string) string {
	root := jsonRoots[which]
	object := strconv.Itoa(int(kObject))
	if which == "company" {
		idx := t.bind(t.d.KeyIndex(t.col(root.keys), t.d.Str(root.prefix)))
		return "(" + t.d.Elem(t.col(root.types), idx, "0") + " = " + object + ")"
	}
	return t.bind(t.and("("+t.d.Elem(t.col(root.keys), "1", "''")+" = "+t.d.Str(root.prefix)+")",
		"("+t.d.Elem(t.col(root.types), "1", "0")+" = "+object+")"))
}

func emptyKeyWhy(root string) string {
	return "an empty key holding an object in " + root + " (its keys read like top-level keys in the flattened columns)"
}

// keyIn is "key in <map>" for a string key expression.
func (t *tr) keyIn(r ref, key string) string {
	switch r.what {
	case refHeaders:
		has := t.d.Has(t.col(r.which+"_header_keys"), key)
		if r.which == "resp" {
			return t.and(t.hasResponse(), has)
		}
		return has
	case refRoot:
		root := jsonRoots[r.which]
		k := key
		if root.prefix != "" {
			k = t.d.Concat(t.d.Str(root.prefix), key)
		}
		return t.d.Has(t.col(root.keys), k)
	}
	return t.d.False()
}

var _ = strings.Contains
