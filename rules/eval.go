package rules

import (
	"math"
	"sync"

	"github.com/expr-lang/expr/vm"
)

// memoryBudget bounds what one evaluation may allocate in the VM (the
// allow-list leaves little that allocates: string concatenation, lists).
const memoryBudget = 10_000

// Result is a meter's verdict on one call.
//
//   - Matched: the filter evaluated to true. Any runtime error (nil or
//     mismatched types in <, arithmetic, not, a condition...) or a non-bool
//     result makes it false, following expr's evaluation order and
//     short-circuits.
//   - ValueError: the call matched but its value is missing: a runtime
//     error, nil, a non-number (for unique: neither a number nor a
//     string), NaN or ±Inf. Such a call adds nothing; aggregators count
//     it under value errors.
//   - Value: the value as float64 (ints converted) when matched without
//     a value error and not IsText. Count meters give 1.
//   - Text, IsText: unique meters only, a string value.
type Result struct {
	Matched    bool
	ValueError bool
	Value      float64
	Text       string
	IsText     bool
}

// vms reuses VMs: a vm.VM is not safe for concurrent use, and allocating
// one per call would dominate the cost of small expressions.
var vms = sync.Pool{New: func() any { return &vm.VM{MemoryBudget: memoryBudget} }}

// Eval runs the meter on one call: the filter, then (when matched, and
// unless the meter counts) the value. A blocked call (env.BlockedBy not
// empty) does not match a meter that does not count blocked calls
// (CountsBlocked), whatever its filter says. It is the reference
// semantics that SQL translations must reproduce. Safe for concurrent
// use. Weight is not applied: a meter that wants sample-rate correction
// says value: weight (or metadata.x * weight).
func (m *Meter) Eval(env *Env) Result {
	v := vms.Get().(*vm.VM)
	r := m.eval(v, env)
	vms.Put(v)
	return r
}

func (m *Meter) eval(v *vm.VM, env *Env) Result {
	if env.BlockedBy != "" && !m.countsBlocked {
		return Result{}
	}
	out, err := v.Run(m.filter, env)
	if err != nil || out != true {
		return Result{}
	}
	if m.Def.Aggregation == AggCount {
		return Result{Matched: true, Value: 1}
	}
	out, err = v.Run(m.value, env)
	if err != nil {
		return Result{Matched: true, ValueError: true}
	}
	switch x := out.(type) {
	case int:
		return Result{Matched: true, Value: float64(x)}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return Result{Matched: true, ValueError: true}
		}
		return Result{Matched: true, Value: x}
	case string:
		if m.Def.Aggregation == AggUnique {
			return Result{Matched: true, Text: x, IsText: true}
		}
	}
	return Result{Matched: true, ValueError: true}
}
