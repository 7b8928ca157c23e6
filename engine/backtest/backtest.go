// Package engine answers backtests: what a meter would have measured over
// stored events, per time bucket and per billed customer. It runs a meter
// as one columnar SQL query in the store (engine/sqlgen translates the
// meter) and falls back to streaming the events through expr's VM (the
// reference semantics, rules.Meter.Eval) when the translation cannot be
// exact; both give the same answer (see differential_test.go).
package backtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meterd/meterd/engine/sqlgen"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// Version is one version of a saved meter and when it takes effect. The
// versions of one meter share aggregation and group_by.
type Version struct {
	Meter *rules.Meter
	From  time.Time // zero for the first version (it covers all earlier events)
}

// Engine choices for Run.
type Engine string

const (
	Auto Engine = ""    // SQL when exact, else the VM
	SQL  Engine = "sql" // SQL only: fails with *sqlgen.ErrUntranslatable or ErrUncertain
	VM   Engine = "vm"  // the VM only (the reference)
)

// ErrUncertain is returned by the SQL engine when some events in the
// window hold values its translation cannot decide exactly (see
// engine/sqlgen); Auto then runs the VM.
type ErrUncertain struct {
	Events  int64
	Reasons []string
}

func (e *ErrUncertain) Error() string {
	return fmt.Sprintf("%d events cannot be decided exactly in SQL: %s", e.Events, strings.Join(e.Reasons, "; "))
}

// Backtest runs an unsaved meter over a window: SQL when exact, else the
// VM (Result.Engine and Result.Fallback say which and why).
func Backtest(ctx context.Context, st storage.Store, m *rules.Meter, w Window) (*Result, error) {
	return Run(ctx, st, []Version{{Meter: m}}, w, Auto)
}

// BacktestSQL runs a meter as SQL only.
func BacktestSQL(ctx context.Context, st storage.Store, m *rules.Meter, w Window) (*Result, error) {
	return Run(ctx, st, []Version{{Meter: m}}, w, SQL)
}

// BacktestVM runs a meter on the VM only: every event in the window is
// streamed through rules.Meter.Eval and rules.Aggregator.
func BacktestVM(ctx context.Context, st storage.Store, m *rules.Meter, w Window) (*Result, error) {
	return Run(ctx, st, []Version{{Meter: m}}, w, VM)
}

// Usage runs a saved meter's versions, each over the events of the span
// where it was effective (one query).
func Usage(ctx context.Context, st storage.Store, versions []Version, w Window) (*Result, error) {
	return Run(ctx, st, versions, w, Auto)
}

// Run runs meter versions over a window on the chosen engine.
func Run(ctx context.Context, st storage.Store, versions []Version, w Window, e Engine) (*Result, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if err := checkVersions(versions); err != nil {
		return nil, err
	}
	start := time.Now()
	var res *Result
	var err error
	switch e {
	case VM:
		res, err = runVM(ctx, st, versions, w)
	case SQL:
		res, err = runSQL(ctx, st, versions, w)
	case Auto:
		res, err = runSQL(ctx, st, versions, w)
		var fallback string
		if NotExact(err) || errors.Is(err, errNoDialect) {
			fallback = err.Error()
		}
		if fallback != "" {
			res, err = runVM(ctx, st, versions, w)
			if res != nil {
				res.Fallback = fallback
			}
		}
	default:
		return nil, fmt.Errorf("engine: unknown engine %q", e)
	}
	if err != nil {
		return nil, err
	}
	res.TookMs = time.Since(start).Milliseconds()
	return res, nil
}

func checkVersions(vs []Version) error {
	if len(vs) == 0 {
		return errors.New("engine: no meter")
	}
	for i, v := range vs {
		if v.Meter == nil {
			return errors.New("engine: nil meter")
		}
		if i > 0 {
			if v.Meter.Def.Aggregation != vs[0].Meter.Def.Aggregation || v.Meter.Def.GroupBy != vs[0].Meter.Def.GroupBy {
				return errors.New("engine: versions of one meter must share aggregation and group_by")
			}
			if !v.From.After(vs[i-1].From) {
				return errors.New("engine: versions must be in order of their start")
			}
		}
	}
	return nil
}

// versionAt is the version effective at ms: the last one starting at or
// before it.
func versionAt(vs []Version, ms int64) *rules.Meter {
	i := len(vs) - 1
	for i > 0 && ms < vs[i].From.UnixMilli() {
		i--
	}
	return vs[i].Meter
}

// NotExact reports whether err says SQL cannot answer a backtest exactly:
// the meter has a construct without an exact translation
// (*sqlgen.ErrUntranslatable), or the window holds rows SQL cannot decide
// (*ErrUncertain). Engine Auto then answers on the VM.
func NotExact(err error) bool {
	var untranslatable *sqlgen.ErrUntranslatable
	var uncertain *ErrUncertain
	return errors.As(err, &untranslatable) || errors.As(err, &uncertain)
}

// emptyTotal is the value of an aggregate over no matched events.
func emptyTotal(agg string) *float64 {
	switch agg {
	case rules.AggMax, rules.AggMin:
		return nil
	}
	return valuePtr(0, true)
}

func sortBuckets(bs []Bucket) {
	slices.SortFunc(bs, func(a, b Bucket) int { return a.Start.Compare(b.Start) })
}
