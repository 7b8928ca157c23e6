// Package rules is meterd's meter language: the environment a meter sees
// (Env, Fields), the definition and its validation (Definition, Compile),
// the allowed constructs (Language), the reference evaluator (Meter.Eval)
// and the reference aggregation (Aggregator). docs/meters.md is the user
// guide; its tables are generated from Fields and Language.
//
// # Reference semantics
//
// The meaning of a filter or value is what expr's VM computes when it runs
// the checked tree (Meter.FilterTree, Meter.ValueTree) compiled WITHOUT
// expr's optimiser (the optimiser changes results: it turns
// `x in ["a"]` into a map lookup that fails on a float x), with int, float
// and string replaced by the stricter conversions of funcs.go. A runtime
// error anywhere on the evaluated path makes the filter false and the
// value a value error, honouring short-circuits. A call a governance
// rule blocked (blocked_by not empty) matches only meters whose filter
// reads blocked_by (Meter.CountsBlocked).
//
// # Tree contract (for translators)
//
// After Compile succeeds, the trees contain only these shapes; node.Type()
// is the static type (interface{} when unknown, e.g. a metadata value):
//
//   - *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode,
//     *ast.StringNode.
//   - *ast.IdentifierNode: a scalar field (duration_ms, time, user_id,
//     company_id, session_token, weight, blocked_by) or the root of a
//     member chain.
//   - *ast.MemberNode: Property is always an *ast.StringNode (a constant
//     key), Method is false, Node is an IdentifierNode, MemberNode or
//     ChainNode. Paths: request.<field>, response.<field> (see Fields),
//     request.headers[<lower-case key>], response.headers[<key>], and
//     metadata/company/user followed by any number of keys, each non-empty
//     and without ".". Optional marks ?. (nil base → nil, instead of an
//     error). A whole struct or map (request, metadata, request.headers)
//     appears only as the right side of in.
//   - *ast.ChainNode wraps a member chain that contains ?.
//   - *ast.UnaryNode: not, !, -, +. "a not in b", "a not contains b", ...
//     parse as not(binary).
//   - *ast.BinaryNode: == != < > <= >= and && or || + - * / % ** ^ ??
//     contains startsWith endsWith matches in. For in, Right is an
//     *ast.ArrayNode of constants (literals, or unary -/+ on a number) or
//     the path metadata, company, user, request.headers or
//     response.headers. For matches, Right is an *ast.StringNode holding
//     a valid RE2 pattern. A chained comparison (1 < a < 10) becomes
//     (1 < a) && (a < 10) sharing the node a.
//   - *ast.ConditionalNode (Ternary or if/else: same meaning).
//   - *ast.BuiltinNode: len, lower, upper, trim, trimPrefix, trimSuffix,
//     abs, ceil, floor, round (expr's builtins).
//   - *ast.CallNode whose Callee is an *ast.IdentifierNode int, float or
//     string, with one argument. string's argument has static type int,
//     bool or string, or is a metadata/company/user path.
//
// Traps: and/or evaluate to their right operand as is when the left one
// does not decide, so `(true and metadata.s) != false` is true for a
// string s; == and != never fail (values of different types are unequal,
// int and float compare as float64); contains/startsWith/endsWith/matches
// give false on nil and fail on non-strings; "in" on a map fails for a
// non-string key; `%` is int-only; int + - * wrap at 64 bits.
package rules
