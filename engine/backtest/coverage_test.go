package backtest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/meterd/meterd/rules"
)

// What the differential test must have compared, on each store, for its
// fixed cases to count as covering the meter language: every allowed
// construct of rules.Language, every root of the environment, nested
// paths, every aggregation, both group_by keys, two versions in one
// query, and meters that count blocked calls and meters that skip them
// (alone, and as two versions of one meter).
func requiredCoverage() []string {
	var req []string
	for _, c := range rules.Language {
		// if/else parses to the same node as ?: and cannot be told apart.
		if c.Allowed && c.Name != "if {} else {}" {
			req = append(req, c.Name)
		}
	}
	req = append(req, "unary -", "unary +", "in map", "nested path",
		"root metadata", "root company", "root user", "root request.headers", "root response.headers",
		"root request", "root response", "scalar field")
	for _, a := range []string{rules.AggCount, rules.AggSum, rules.AggMax, rules.AggMin, rules.AggUnique} {
		req = append(req, "aggregation "+a)
	}
	return append(req, "group_by "+rules.GroupByCompany, "group_by "+rules.GroupByUser, "two versions",
		"counts blocked calls", "skips blocked calls", "two versions, one counting blocked calls")
}

// constructs lists what a compiled meter uses (keys of requiredCoverage).
func constructs(m *rules.Meter) []string {
	set := map[string]bool{
		"aggregation " + m.Def.Aggregation: true,
		"group_by " + m.Def.GroupBy:        true,
	}
	if m.CountsBlocked() {
		set["counts blocked calls"] = true
	} else {
		set["skips blocked calls"] = true
	}
	v := &coverVisitor{set: set}
	for _, tr := range []*ast.Node{&m.FilterTree.Node, &m.ValueTree.Node} {
		ast.Walk(tr, v)
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type coverVisitor struct{ set map[string]bool }

func (v *coverVisitor) Visit(n *ast.Node) {
	switch n := (*n).(type) {
	case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.StringNode, *ast.BoolNode:
		v.set["literals"] = true
	case *ast.IdentifierNode:
		switch n.Value {
		case "metadata", "company", "user", "request", "response":
			v.set["root "+n.Value] = true
		default:
			v.set["scalar field"] = true
		}
	case *ast.MemberNode:
		v.set[`a.b / a["b"]`] = true
		if n.Optional {
			v.set["?."] = true
		}
		switch root, depth := memberRoot(n); {
		case (root == "request" || root == "response") && depth == 2: // request.headers.x
			v.set["root "+root+".headers"] = true
		case (root == "metadata" || root == "company" || root == "user") && depth >= 2:
			v.set["nested path"] = true
		}
	case *ast.ChainNode:
		v.set["?."] = true
	case *ast.UnaryNode:
		v.set[n.Operator] = true
		if n.Operator == "-" || n.Operator == "+" {
			v.set["unary "+n.Operator] = true
		}
	case *ast.BinaryNode:
		v.set[n.Operator] = true
		if n.Operator == "in" {
			if _, ok := n.Right.(*ast.ArrayNode); ok {
				v.set["[...] in"] = true
			} else {
				v.set["in map"] = true
			}
		}
	case *ast.ConditionalNode:
		v.set["?:"] = true
	case *ast.BuiltinNode:
		v.set[n.Name] = true
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			v.set[id.Value] = true
		}
	}
}

// memberRoot is the identifier a member chain starts from and the
// number of member accesses down to it.
func memberRoot(n ast.Node) (string, int) {
	depth := 0
	for {
		switch x := n.(type) {
		case *ast.MemberNode:
			depth++
			n = x.Node
		case *ast.ChainNode:
			n = x.Node
		case *ast.IdentifierNode:
			return x.Value, depth
		default:
			return "", depth
		}
	}
}

// missingCoverage lists the required constructs that count does not
// have, per backend.
func missingCoverage(count map[string]map[string]int, backends []string) []string {
	var miss []string
	for _, c := range requiredCoverage() {
		for _, b := range backends {
			if count[b][c] == 0 {
				miss = append(miss, b+": "+c)
			}
		}
	}
	return miss
}

// leastCovered names the n required constructs compared least often (on
// the store that compared them least), with their counts.
func leastCovered(count map[string]map[string]int, backends []string, n int) string {
	type kc struct {
		k string
		c int
	}
	var all []kc
	for _, c := range requiredCoverage() {
		least := -1
		for _, b := range backends {
			if x := count[b][c]; least < 0 || x < least {
				least = x
			}
		}
		all = append(all, kc{c, least})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].c < all[j].c })
	var out []string
	for _, x := range all[:min(n, len(all))] {
		out = append(out, fmt.Sprintf("%s %d", x.k, x.c))
	}
	return strings.Join(out, ", ")
}

func joinLines(xs []string) string { return strings.Join(xs, "\n") }
