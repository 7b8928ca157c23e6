package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/engine/hours"
	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/rules/registry"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/eventgen"
)

// BillingConfig is what `meterd bench billing` takes.
type BillingConfig struct {
	Store     string // see backends.Fresh
	Events    int    // loaded before the first cycle
	Customers int
	Meters    int
	// Late is the share of the new events that are late, by up to
	// LateWithin.
	Late       float64
	LateWithin time.Duration
}

// Billing targets and defaults (issue 12).
const (
	TargetSteadyOverFull = 0.05
	DefaultCustomers     = 1000
	DefaultMeters        = 5
	newShare             = 0.001 // new events before the steady-state cycle, of Events
)

// billingMeters are the bench's meters, the i-th of M being
// billingMeters[i % 5] (with a filter on i beyond the fifth).
var billingMeters = []rules.Definition{
	Typical,
	{Name: "calls", Filter: `response.status < 400`, Aggregation: rules.AggCount, GroupBy: rules.GroupByCompany},
	{Name: "request bytes", Filter: `request.verb == "POST"`, Value: "request.body_size", Aggregation: rules.AggSum, GroupBy: rules.GroupByCompany},
	{Name: "largest completion", Filter: `request.route == "/v1/completions"`, Value: "metadata.tokens", Aggregation: rules.AggMax, GroupBy: rules.GroupByCompany},
	{Name: "errors", Filter: `response.status >= 400`, Aggregation: rules.AggCount, GroupBy: rules.GroupByCompany},
}

// BillingReport is one run's figures.
type BillingReport struct {
	Backend              string
	Events, New, Late    int
	Customers, Meters    int
	Load, Wait           time.Duration
	Full, Steady, Recomp time.Duration // first cycle (nothing kept), steady-state cycle, full recompute
	Agree                bool
	Disagree             []string
	// Kept is what the store keeps for the hours: rows of usage_hours and,
	// where the store tells (ClickHouse), bytes on disk by table.
	KeptRows int64
	Bytes    map[string]int64
}

// Ratio is the steady-state cycle over the first, full one.
func (r BillingReport) Ratio() float64 { return float64(r.Steady) / float64(r.Full) }

// Billing runs `meterd bench billing`: a fresh store with c.Events events
// of c.Customers customers over the current period (30 days so far, from
// a start inside an hour), c.Meters meters; it times the first cycle
// (nothing kept: every hour computed and kept) and, after 0.1 % more
// events arrive (c.Late of them late), a steady-state cycle; it checks
// that the steady-state totals equal a full recompute's. A cycle here is
// the billing worker's computation of every customer's units
// (billing.Worker.Measure), without the Stripe requests.
func Billing(ctx context.Context, c BillingConfig, w io.Writer) error {
	if c.Events <= 0 || c.Customers <= 0 || c.Meters <= 0 {
		return fmt.Errorf("events, customers and meters must be positive")
	}
	st, desc, cleanup, err := openFresh(ctx, c.Store, "billing")
	if err != nil {
		return err
	}
	defer cleanup()
	progress := stderrProgress()
	progress("store: %s", desc)
	r, err := RunBilling(ctx, st, c, progress)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "meterd bench billing: %s, %d events, %d customers, %d meters\n", r.Backend, r.Events, r.Customers, r.Meters)
	fmt.Fprintf(w, "  store:              %s\n", desc)
	fmt.Fprintf(w, "  load:               %s (%.0f events/s)\n", r.Load.Round(time.Millisecond), float64(r.Events)/r.Load.Seconds())
	if r.Wait > 0 {
		fmt.Fprintf(w, "  waited:             %s (the store's change margin: history older than it)\n", r.Wait.Round(time.Second))
	}
	fmt.Fprintf(w, "  first cycle:        %10s  (every hour computed and kept)\n", r.Full.Round(time.Millisecond))
	fmt.Fprintf(w, "  steady-state cycle: %10s  after %d new events, %d of them late by up to %s\n", r.Steady.Round(time.Millisecond), r.New, r.Late, c.LateWithin)
	fmt.Fprintf(w, "  full recompute:     %10s  (one query per meter over the period, as before hours were kept)\n", r.Recomp.Round(time.Millisecond))
	fmt.Fprintf(w, "  steady / full:      %.4f  (target <= %.2f: %s)\n", r.Ratio(), TargetSteadyOverFull, met(r.Ratio() <= TargetSteadyOverFull))
	fmt.Fprintf(w, "  per million events: first cycle %s, full recompute %s\n", perMillion(r.Full, r.Events), perMillion(r.Recomp, r.Events))
	if !r.Agree {
		fmt.Fprintf(w, "  totals:             DISAGREE with the full recompute\n")
		for _, d := range r.Disagree {
			fmt.Fprintf(w, "                      %s\n", d)
		}
		return fmt.Errorf("the steady-state totals differ from a full recompute")
	}
	fmt.Fprintf(w, "  totals:             equal to the full recompute's (%d customers x %d meters)\n", r.Customers, r.Meters)
	fmt.Fprintf(w, "  kept:               %d usage_hours rows", r.KeptRows)
	for _, t := range slices.Sorted(maps.Keys(r.Bytes)) {
		fmt.Fprintf(w, ", %s %.1f MB", t, float64(r.Bytes[t])/1e6)
	}
	fmt.Fprintln(w)
	return nil
}

func perMillion(d time.Duration, events int) time.Duration {
	return time.Duration(float64(d) * 1e6 / float64(events)).Round(time.Millisecond)
}

// RunBilling loads the events into st (empty) and times the cycles.
func RunBilling(ctx context.Context, st storage.Store, c BillingConfig, progress func(string, ...any)) (BillingReport, error) {
	r := BillingReport{Backend: st.Backend(), Events: c.Events, Customers: c.Customers, Meters: c.Meters}
	now := time.Now().UTC()
	start := now.Add(-30 * 24 * time.Hour).Truncate(time.Hour).Add(17*time.Minute + 23*time.Second)
	period := stripestate.Period{Start: start, End: start.Add(31 * 24 * time.Hour)}
	reg := registry.New(st, nil)
	var meters []*registry.Meter
	for i := range c.Meters {
		d := billingMeters[i%len(billingMeters)]
		d.Name = fmt.Sprintf("%s %d", d.Name, i)
		if i >= len(billingMeters) {
			d.Filter = fmt.Sprintf("(%s) and request.body_size >= %d", d.Filter, i)
		}
		m, err := reg.Create(ctx, d, "", "bench")
		if err != nil {
			return r, err
		}
		meters = append(meters, m)
	}
	periods := map[string]stripestate.Period{}
	for i := range c.Customers {
		periods["company-"+strconv.Itoa(i)] = period
	}
	progress("loading %d events of %d customers over %s .. %s", c.Events, c.Customers, start.Format(time.DateTime), now.Format(time.DateTime))
	t := time.Now()
	if err := loadCustomers(ctx, st, loadSeed, c.Events, c.Customers, start, now, progress); err != nil {
		return r, err
	}
	r.Load = time.Since(t)
	// A real store's history is older than the change margin; this one's
	// must be too, or the first cycle's hours are changed for the next.
	if r.Wait = st.ChangeMargin(); r.Wait > 0 {
		progress("waiting %s (the store's change margin)", r.Wait)
		time.Sleep(r.Wait + time.Second)
	}
	worker := &billing.Worker{Store: st, Hours: hours.New(st)}
	progress("first cycle")
	t = time.Now()
	if _, err := worker.Measure(ctx, time.Now(), meters, periods); err != nil {
		return r, err
	}
	r.Full = time.Since(t)
	r.New = max(1, int(float64(c.Events)*newShare))
	if c.LateWithin > 0 {
		r.Late = int(float64(r.New) * min(max(c.Late, 0), 1))
	}
	progress("%d new events, %d late", r.New, r.Late)
	if err := addNew(ctx, st, c, r.New, r.Late); err != nil {
		return r, err
	}
	progress("steady-state cycle")
	at := time.Now()
	t = time.Now()
	got, err := worker.Measure(ctx, at, meters, periods)
	if err != nil {
		return r, err
	}
	r.Steady = time.Since(t)
	progress("full recompute")
	t = time.Now()
	want, err := (&billing.Worker{Store: st, Recompute: true}).Measure(ctx, at, meters, periods)
	if err != nil {
		return r, err
	}
	r.Recomp = time.Since(t)
	for i := range want {
		if got[i] != want[i] && len(r.Disagree) < 10 {
			r.Disagree = append(r.Disagree, fmt.Sprintf("meter %s, %s: %d, full recompute %d", want[i].Meter, want[i].Customer, got[i].Total, want[i].Total))
		}
	}
	r.Agree = len(r.Disagree) == 0 && len(got) == len(want)
	r.KeptRows, r.Bytes, err = kept(ctx, st)
	return r, err
}

// kept counts usage_hours' rows and, on ClickHouse, the bytes on disk of
// the tables the hours add and of events (compressed), for comparison.
func kept(ctx context.Context, st storage.Store) (int64, map[string]int64, error) {
	var rows int64
	count := `SELECT CAST(count(*) AS BIGINT) FROM usage_hours`
	if st.Backend() == "clickhouse" {
		count = `SELECT toInt64(count()) FROM usage_hours`
	}
	if err := scanRows(ctx, st, count, func(s func(...any) error) error { return s(&rows) }); err != nil {
		return 0, nil, err
	}
	if st.Backend() != "clickhouse" {
		return rows, nil, nil
	}
	bytes := map[string]int64{}
	err := scanRows(ctx, st, `SELECT table, toInt64(sum(bytes_on_disk)) FROM system.parts
		WHERE database = currentDatabase() AND active AND table IN ('events', 'usage_hours', 'event_stamps', 'events_local', 'usage_hours_local', 'event_stamps_local')
		GROUP BY table`, func(s func(...any) error) error {
		var t string
		var n int64
		err := s(&t, &n)
		bytes[t] += n
		return err
	})
	return rows, bytes, err
}

// scanRows runs a query and calls row for every row with its Scan.
func scanRows(ctx context.Context, st storage.Store, q string, row func(scan func(...any) error) error) error {
	rs, err := st.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		if err := row(rs.Scan); err != nil {
			return err
		}
	}
	return rs.Err()
}

// loadCustomers inserts n eventgen events over [from, to), in time order,
// each of one of the customers at random.
func loadCustomers(ctx context.Context, st storage.Store, seed int64, n, customers int, from, to time.Time, progress func(string, ...any)) error {
	const batch = 50_000
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	next := n / 10
	for i := 0; i < n; i += batch {
		k := min(batch, n-i)
		a := from.Add(time.Duration(float64(to.Sub(from)) * float64(i) / float64(n)))
		b := from.Add(time.Duration(float64(to.Sub(from)) * float64(i+k) / float64(n)))
		evs := eventgen.Generate(seed+int64(i/batch), k, a, b) // ids differ by seed
		assign(evs, rng, customers)
		if _, err := st.Insert(ctx, evs); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if i+k >= next && i+k < n {
			progress("loaded %d events", i+k)
			next += n / 10
		}
	}
	return nil
}

// assign gives each event one of the customers at random.
func assign(evs []storage.Event, rng *rand.Rand, customers int) {
	for j := range evs {
		c := rng.IntN(customers)
		evs[j].CompanyID, evs[j].UserID = "company-"+strconv.Itoa(c), "user-"+strconv.Itoa(c)+"-"+strconv.Itoa(rng.IntN(10))
	}
}

// addNew inserts n new events in one batch: those not late over the last
// minute, the late ones anywhere in the c.LateWithin before it.
func addNew(ctx context.Context, st storage.Store, c BillingConfig, n, late int) error {
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(2, 2))
	evs := eventgen.Generate(newSeed, n, now.Add(-time.Minute), now)
	assign(evs, rng, c.Customers)
	for i := range evs[:late] {
		evs[i].Time = now.Add(-time.Minute - time.Duration(rng.Int64N(int64(c.LateWithin)))).Truncate(time.Millisecond)
	}
	_, err := st.Insert(ctx, evs)
	return err
}

// Seeds of the loaded and the new events (eventgen's ids carry the seed's
// low 32 bits: they must differ).
const (
	loadSeed = 1_000_000
	newSeed  = 3_000_000
)
