package governance

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/rules"
	gov "github.com/meterd/meterd/rules/governance"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/storage"
)

// Evaluator runs the rules over today's customers.
type Evaluator struct {
	Store    storage.Store
	Rules    *gov.Registry
	Meters   *registry.Registry
	Profiles Profiles
	Now      func() time.Time // nil: time.Now
	// Hours answers usage() from usage kept per closed hour
	// (engine/hours); nil: the evaluator's own.
	Hours *hours.Cache
}

func (e *Evaluator) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// Match is a customer a rule holds for, and why.
type Match struct {
	Customer string `json:"customer"`
	// Values are the values the condition read for this customer (the
	// paths of rules.Condition.Reads).
	Values map[string]any `json:"values"`
	// Calls7d is the customer's calls over the last 7 days (previews).
	Calls7d *int64 `json:"calls_7d,omitempty"`
	// fill are the values of the response's placeholders, as strings.
	fill map[string]string
}

// Snapshot is one round's outcome: what the agents are served until the
// next one.
type Snapshot struct {
	At    time.Time
	Rules []*gov.Rule // the active rules, as served
	// Matches are, by rule id, the customers the rule holds for now,
	// sorted by id.
	Matches map[string][]Match
	// Evaluated counts the customers evaluated, by applies_to.
	Evaluated map[string]int
	// Failed says, by rule id, why a rule could not be evaluated this
	// round (it then lists nobody: the agents keep serving other rules).
	Failed map[string]string
	// RulesDoc and ConfigDoc are the bodies of GET /v1/rules and
	// /v1/config; ETag changes whenever either does.
	RulesDoc, ConfigDoc []byte
	ETag                string
}

// Empty is the snapshot before the first round: no rules.
func Empty() *Snapshot {
	s := &Snapshot{Matches: map[string][]Match{}, Evaluated: map[string]int{}, Failed: map[string]string{}}
	s.render()
	return s
}

// Evaluate runs a round: every active rule over the customers of its kind.
func (e *Evaluator) Evaluate(ctx context.Context) (*Snapshot, error) {
	all, err := e.Rules.List(ctx)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{At: e.now(), Matches: map[string][]Match{}, Evaluated: map[string]int{}, Failed: map[string]string{}}
	kinds := map[string]bool{}
	for _, r := range all {
		if r.Active() {
			s.Rules = append(s.Rules, r)
			kinds[r.AppliesTo] = true
		}
	}
	sort.Slice(s.Rules, func(i, j int) bool { return s.Rules[i].ID < s.Rules[j].ID })
	if len(s.Rules) > 0 {
		w, err := e.readWorld(ctx, sortedKeys(kinds))
		if err != nil {
			return nil, err
		}
		for kind, cs := range w.customers {
			s.Evaluated[kind] = len(cs)
		}
		usage := usageCache{}
		for _, r := range s.Rules {
			ms, err := e.match(ctx, w, usage, r.AppliesTo, r.Latest().Spec)
			if err != nil {
				s.Failed[r.ID] = err.Error()
				continue
			}
			s.Matches[r.ID] = ms
		}
	}
	s.render()
	return s, nil
}

// usageCache keeps one round's usage queries: (kind, meter) -> customer ->
// usage.
type usageCache map[string]map[string]float64

// match runs one rule version over the customers of its kind.
func (e *Evaluator) match(ctx context.Context, w *world, usage usageCache, kind string, spec gov.Spec) ([]Match, error) {
	cond, cerr := rules.CompileCondition("condition", spec.Condition)
	if cerr != nil {
		return nil, cerr
	}
	cs := w.customers[kind]
	byMeter := map[string]map[string]float64{}
	for _, call := range cond.Usage {
		key := kind + "|" + call.Arg
		if usage[key] == nil {
			u, err := e.usage(ctx, cs, w.now, call.Arg)
			if err != nil {
				return nil, err
			}
			usage[key] = u
		}
		byMeter[call.Arg] = usage[key]
	}
	names := spec.Placeholders()
	var out []Match
	for _, id := range sortedKeys(cs) {
		env := cs[id].env
		env.Usage = func(meter string) float64 { return byMeter[meter][id] }
		ok, _ := cond.Eval(&env)
		if !ok {
			continue
		}
		m := Match{Customer: id, Values: map[string]any{}, fill: map[string]string{}}
		for _, path := range cond.Reads {
			m.Values[path], _ = env.Value(path)
		}
		for _, name := range names {
			if v, ok := env.Value(name); ok {
				if text, ok := agentText(v); ok {
					m.fill[name] = text
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// agentText is a value as the agents want it: a string (the Python agents
// fail on anything else); false for nil, which they show as UNKNOWN.
func agentText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return fmt.Sprint(v), true
}

// Preview is what an unsaved rule would do now.
type Preview struct {
	At        time.Time `json:"at"`
	Evaluated int       `json:"evaluated"` // customers of its kind evaluated
	Matching  []Match   `json:"matching"`  // those it holds for, with their calls over 7 days
}

// Preview runs a rule definition over today's customers without saving
// it; errors are the definition's (a fault.List) or the store's.
func (e *Evaluator) Preview(ctx context.Context, d gov.Definition) (*Preview, error) {
	if _, err := e.Rules.Check(ctx, d); err != nil {
		return nil, err
	}
	w, err := e.readWorld(ctx, []string{d.AppliesTo})
	if err != nil {
		return nil, err
	}
	ms, err := e.match(ctx, w, usageCache{}, d.AppliesTo, d.Spec())
	if err != nil {
		return nil, err
	}
	p := &Preview{At: w.now, Evaluated: len(w.customers[d.AppliesTo]), Matching: ms}
	if p.Matching == nil {
		p.Matching = []Match{}
	}
	if len(ms) > 0 {
		calls, err := e.calls(ctx, d.AppliesTo, w.now.Add(-7*24*time.Hour), w.now)
		if err != nil {
			return nil, err
		}
		for i := range p.Matching {
			n := calls[p.Matching[i].Customer]
			p.Matching[i].Calls7d = &n
		}
	}
	return p, nil
}

// Governing lists, for one customer of a kind, the rules that hold for it
// in the snapshot and what made them hold.
func (s *Snapshot) Governing(kind, id string) []RuleMatch {
	out := []RuleMatch{}
	for _, r := range s.Rules {
		if r.AppliesTo != kind {
			continue
		}
		for _, m := range s.Matches[r.ID] {
			if m.Customer == id {
				out = append(out, RuleMatch{RuleID: r.ID, Name: r.Name, Block: r.Latest().Block, Status: r.Latest().Response.Status, Values: m.Values})
			}
		}
	}
	return out
}

// RuleMatch is a rule holding for a customer.
type RuleMatch struct {
	RuleID string         `json:"rule_id"`
	Name   string         `json:"name"`
	Block  bool           `json:"block"`
	Status int            `json:"status"`
	Values map[string]any `json:"values"`
}
