package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/meterd/meterd/engine/backtest"
)

// Config is what `meterd bench backtest` takes.
type Config struct {
	Store  string // see OpenFresh
	Events int
	Runs   int
	SkipVM bool
	JSON   bool // print the Report as JSON instead of text
}

// jsonReport is Report with the ratios and targets spelt out.
type jsonReport struct {
	Report
	Store       string  `json:"store"`
	Meter       any     `json:"meter"`
	LoadMs      float64 `json:"load_ms"`
	SQLMs       float64 `json:"sql_ms"`
	HandMs      float64 `json:"hand_ms"`
	VMMs        float64 `json:"vm_ms,omitempty"`
	VMOverSQL   float64 `json:"vm_over_sql,omitempty"`
	SQLOverHand float64 `json:"sql_over_hand"`
	Targets     any     `json:"targets"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Backtest runs `meterd bench backtest`: a fresh store, c.Events events,
// the typical meter timed on SQL, VM and the hand-written query. Progress
// goes to stderr, the report to w.
func Backtest(ctx context.Context, c Config, w io.Writer) error {
	if c.Events <= 0 {
		return fmt.Errorf("events must be positive")
	}
	st, desc, cleanup, err := OpenFresh(ctx, c.Store)
	if err != nil {
		return err
	}
	defer cleanup()
	progress := stderrProgress()
	progress("store: %s", desc)
	r, err := RunBacktest(ctx, st, c.Events, Options{Load: true, SkipVM: c.SkipVM, Runs: c.Runs, Progress: progress})
	if err != nil {
		return err
	}
	meter := map[string]any{"filter": Typical.Filter, "value": Typical.Value, "aggregation": Typical.Aggregation,
		"group_by": Typical.GroupBy, "bucket": backtest.BucketHour, "from": From, "to": To}
	if c.JSON {
		j := jsonReport{Report: r, Store: desc, Meter: meter, LoadMs: ms(r.Load), SQLMs: ms(r.SQL), HandMs: ms(r.Hand), SQLOverHand: r.SQLOverHand(),
			Targets: map[string]any{"vm_over_sql_min": TargetSpeedup, "sql_over_hand_max": TargetOverHand}}
		if !r.SkippedVM {
			j.VMMs, j.VMOverSQL = ms(r.VM), r.SQLSpeedup()
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	fmt.Fprintf(w, "meterd bench backtest: %s, %d events over %s .. %s\n", r.Backend, r.Events, From.Format(time.DateOnly), To.Format(time.DateOnly))
	fmt.Fprintf(w, "  store:        %s\n", desc)
	fmt.Fprintf(w, "  meter:        filter %s\n                value %s, %s by %s, hourly buckets, top %d\n", Typical.Filter, Typical.Value, Typical.Aggregation, Typical.GroupBy, typicalTop)
	fmt.Fprintf(w, "  load:         %s (%.0f events/s)\n", r.Load.Round(time.Millisecond), float64(r.Events)/r.Load.Seconds())
	fmt.Fprintf(w, "  SQL (engine): %10s  best of %d\n", r.SQL.Round(time.Millisecond), r.Runs)
	fmt.Fprintf(w, "  hand-written: %10s  best of %d   SQL/hand %.2f  (target <= %.1f: %s)\n", r.Hand.Round(time.Millisecond), r.Runs, r.SQLOverHand(), TargetOverHand, met(r.SQLOverHand() <= TargetOverHand))
	if r.SkippedVM {
		fmt.Fprintf(w, "  VM:           skipped\n")
	} else {
		fmt.Fprintf(w, "  VM:           %10s  one run     VM/SQL %.1fx  (target >= %.0fx: %s)\n", r.VM.Round(time.Millisecond), r.SQLSpeedup(), TargetSpeedup, met(r.SQLSpeedup() >= TargetSpeedup))
	}
	paths := "SQL, VM and hand-written"
	if r.SkippedVM {
		paths = "SQL and hand-written"
	}
	if r.Agree {
		fmt.Fprintf(w, "  answers:      %s agree (matched %d events, total %s)\n", paths, r.Matched, strconv.FormatFloat(r.Total, 'f', -1, 64))
	} else {
		fmt.Fprintf(w, "  answers:      DISAGREE (matched %d events, total %s)\n", r.Matched, strconv.FormatFloat(r.Total, 'f', -1, 64))
		for _, d := range r.Disagree {
			fmt.Fprintf(w, "                %s\n", d)
		}
		return fmt.Errorf("the backtest paths disagree")
	}
	return nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
