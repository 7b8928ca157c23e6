package rules

import (
	"testing"

	"github.com/expr-lang/expr/ast"
)

// TestTreeContract checks the shapes that doc.go promises translators,
// over every expression of the semantics tests.
func TestTreeContract(t *testing.T) {
	var trees []ast.Node
	for _, c := range filterCases {
		trees = append(trees, mustCompile(t, Definition{Filter: c.filter, Aggregation: AggCount}).FilterTree.Node)
	}
	for _, c := range valueCases {
		trees = append(trees, mustCompile(t, Definition{Filter: "true", Value: c.value, Aggregation: c.agg}).ValueTree.Node)
	}
	seen := map[string]bool{}
	for _, tree := range trees {
		ast.Find(tree, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode,
				*ast.IdentifierNode, *ast.ChainNode, *ast.ConditionalNode, *ast.ArrayNode:
			case *ast.MemberNode:
				if _, ok := n.Property.(*ast.StringNode); !ok || n.Method {
					t.Errorf("member %s", n)
				}
			case *ast.UnaryNode:
				if !allowedUnary[n.Operator] {
					t.Errorf("unary %s", n.Operator)
				}
			case *ast.BinaryNode:
				seen[n.Operator] = true
				if !allowedBinary[n.Operator] {
					t.Errorf("binary %s", n.Operator)
				}
				if n.Operator == "matches" {
					if _, ok := n.Right.(*ast.StringNode); !ok {
						t.Errorf("matches %s", n)
					}
				}
			case *ast.BuiltinNode:
				seen[n.Name] = true
				if !allowedBuiltins[n.Name] {
					t.Errorf("builtin %s", n.Name)
				}
			case *ast.CallNode:
				id, ok := n.Callee.(*ast.IdentifierNode)
				if !ok || !allowedFunctions[id.Value] || len(n.Arguments) != 1 {
					t.Errorf("call %s", n)
				} else {
					seen[id.Value] = true
				}
			default:
				t.Errorf("unexpected node %T: %s", n, n)
			}
			return false
		})
	}
	// The semantics tests exercise every allowed operator and function.
	for _, c := range Language {
		if c.Allowed && c.Kind != "syntax" && !seen[c.Name] {
			switch c.Name {
			case "not", "!", "?.", "?:": // not binary nodes
			default:
				t.Errorf("%s is allowed but no semantics test uses it", c.Name)
			}
		}
	}
}
