// Package sqlgen translates compiled meters (rules.Meter) into SQL for
// the event stores, so that a backtest is one columnar query that agrees
// exactly with the reference evaluator (rules.Meter.Eval, expr's VM).
//
// # How the translation models expr
//
// SQL NULL logic is not expr's, so nothing relies on it. Each node of the
// checked tree becomes a record of SQL expressions (val): whether
// evaluating it fails (err), its dynamic kind when it is not static (nil,
// bool, int, float, string, array, object; a metadata value's kind is its
// stored JSON type code), and its value per kind. Parents combine them
// following the VM: and/or/??/?: evaluate their right side only when the
// left one does not decide, so its errors count only then; == never fails;
// < fails on mismatched kinds; contains gives false on nil; int + - *
// wrap at 64 bits; and so on (see rules/doc.go). Statically typed fields
// (request.route, response.status, ...) need no kind checks, so a typical
// meter becomes plain SQL; only metadata and traits carry the dynamic
// machinery. Every SQL primitive is total (ClickHouse evaluates both
// branches of if), so errors are computed, never raised.
//
// # Uncertain rows
//
// A few things cannot be decided exactly in SQL for every row: nested
// JSON paths when an event has a JSON key containing "." (the flattened
// columns are then ambiguous), lower/upper of non-ASCII text (case tables
// differ), float() of long decimal strings on ClickHouse (its parser is
// not correctly rounded), subnormal results of ** 2 and ** -1. The query
// counts such rows; when there are any, the engine runs the VM instead.
//
// # Untranslatable meters
//
// ** with an exponent other than 0, 1, 2, -1 and trim(s, chars) with
// computed chars give ErrUntranslatable; the engine runs the VM.
package sqlgen

import (
	"sort"
	"strings"

	"github.com/meterd/meterd/rules"
)

// Row is a meter's per-event SQL: expressions over the events table's
// columns and the aliases in Binds.
type Row struct {
	Matched  string // bool: the filter is true
	ValueErr string // bool: matched, but the value is missing
	Value    string // Float64: the value (sum, max, min; 1 for count)
	// Unique meters: whether the value is a string, the string, the
	// number (-0 normalised to 0).
	IsText, Text, Num string
}

// translateMeter translates one meter into t's bindings.
func translateMeter(t *tr, m *rules.Meter) (Row, error) {
	f, err := t.node(m.FilterTree.Node)
	if err != nil {
		return Row{}, err
	}
	var r Row
	fb := f.b
	if !f.ks.has(kBool) {
		fb = t.d.False()
	}
	matched := []string{t.not(f.err), t.is(f, kBool), fb}
	if !m.CountsBlocked() { // a blocked call does not match (rules.Meter.Eval)
		matched = append([]string{notBlocked(t.col("blocked_by"))}, matched...)
	}
	r.Matched = t.bind(t.and(matched...))
	if m.Def.Aggregation == rules.AggCount {
		r.ValueErr, r.Value = t.d.False(), t.d.Float(1)
		return r, nil
	}
	v, err := t.node(m.ValueTree.Node)
	if err != nil {
		return Row{}, err
	}
	unique := m.Def.Aggregation == rules.AggUnique
	okKinds := []string{t.is(v, kInt)}
	if v.ks.has(kFloat) {
		okKinds = append(okKinds, t.and(t.is(v, kFloat), t.d.IsFinite(v.f)))
	}
	if unique {
		okKinds = append(okKinds, t.is(v, kString))
	}
	r.ValueErr = t.bind(t.or(v.err, t.not(t.or(okKinds...))))
	num := t.d.Float(0)
	if v.ks&numKinds != 0 {
		num = t.bind(t.numF(v))
	}
	r.Value = num
	if unique {
		r.IsText = t.bind(t.is(v, kString))
		r.Text = "''"
		if v.ks.has(kString) {
			r.Text = v.s
		}
		// Both zeros are one value.
		r.Num = t.bind(t.d.If("("+num+" = 0)", t.d.Float(0), num))
	}
	return r, nil
}

// Explain returns the per-event SQL of a meter in a dialect, for
// inspection and tests: the bindings, then the row's expressions.
func Explain(d Dialect, m *rules.Meter) (string, error) {
	t := newTr(d)
	r, err := translateMeter(t, m)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, bd := range t.binds {
		b.WriteString(bd.name + " = " + bd.expr + "\n")
	}
	b.WriteString("matched = " + r.Matched + "\nvalue_error = " + r.ValueErr + "\nvalue = " + r.Value + "\n")
	if len(t.unc) > 0 {
		b.WriteString("uncertain = " + t.or(t.unc...) + "\n")
	}
	return b.String(), nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
