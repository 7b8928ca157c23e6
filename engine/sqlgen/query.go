package sqlgen

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/meterd/meterd/rules"
)

// Span is one meter version and when it takes effect. Spans of one query
// share the aggregation and group_by (rules/registry fixes them at
// creation).
type Span struct {
	Meter  *rules.Meter
	FromMs int64 // unix ms; the first span's is ignored (it covers everything before the second)
}

// Window is the part of a backtest the query needs.
type Window struct {
	FromMs, ToMs int64 // [From, To), unix ms, From >= 0
	BucketMs     int64 // bucket width; buckets start at multiples of it
	// Limit is the number of rows kept per grouping set, ordered by
	// value: at least the number of groups wanted and of buckets.
	Limit int
	// Group, when not "", keeps only the events of that billed customer
	// (its company_id or user_id, as the meter groups): the billing worker
	// reads one customer's buckets with it.
	Group string
	// GroupBuckets adds a row per (bucket, group) (set 3), all of them:
	// every customer's buckets in one query. Set 2 is then not limited
	// on ClickHouse (its caller keeps the largest groups).
	GroupBuckets bool
	// Live is the condition for the event rows that count
	// (storage.LiveCondition), "" when all do.
	Live string
	// GroupFromMs, when not empty, starts the window of the groups it
	// lists at their own time (unix ms, at or after FromMs): every
	// customer's usage over its own billing period, in one query.
	GroupFromMs map[string]int64
	// Ranges, when not empty, keeps only the events in one of these
	// [from, to) ranges (unix ms, within [FromMs, ToMs), in order, not
	// overlapping): engine/hours recomputes the hours that changed, wherever
	// they lie, in one query.
	Ranges [][2]int64
}

// Plan is a backtest query. Its rows are (set, bucket, grp, events,
// errors, value, has_value, uncertain, uncertain_mask, scanned), all
// BIGINT/Int64 except grp (text) and value (double):
//
//   - set 0: the total (bucket 0, grp ”), set 1: one row per bucket
//     (grp ”), set 2: one row per group (bucket 0), the Limit largest;
//     with Window.GroupBuckets, set 3: one row per (bucket, group).
//   - events: matched events; errors: their value errors; value: the
//     aggregate (0 when has_value is 0: max/min without a valid value).
//   - uncertain: rows the SQL cannot decide exactly (see package doc);
//     when the total row's is not 0, the result must not be used.
//     uncertain_mask: bit i set when Uncertain[i] occurred.
//   - scanned: events in the window (the same on every row).
//
// Rows of sets 1 to 3 with events = 0 carry only uncertain rows.
// When no event matched, ClickHouse returns no row at all.
type Plan struct {
	SQL       string
	Uncertain []string // what can make rows uncertain, by bit of uncertain_mask
	// CountSQL counts the events the query scans (one Int64), for when SQL
	// returned no row.
	CountSQL string
}

// Output column aliases of the per-event query.
const (
	outBucket  = "_b"
	outGroup   = "_g"
	outMatched = "_m"
	outErr     = "_e"
	outValue   = "_val"
	outIsText  = "_ut"
	outText    = "_us"
	outNum     = "_un"
	outUnc     = "_u"
	outUncMask = "_um"
)

type queryParts struct {
	certain bool // no row can be uncertain
	binds   []bind
	cols    []string
	outs    [][2]string // alias, expr
	agg     string
	w       Window
	scope   string // extra row predicates (Dialect.Live, Window.Group), "" for none
	from    string // the events source of the per-event query: "events" or a join
	starts  string // Window.GroupFromMs's row predicate for that query, "" for none
	// rows prunes the rows no span can match, "" for none; unlike scope,
	// the rows it drops are still scanned events.
	rows string
}

// notBlocked is the condition "the call was not blocked" on the
// blocked_by column col.
func notBlocked(col string) string { return "(" + col + " = '')" }

// liveScope is the scope every query over events starts from: the rows
// that count (storage.LiveCondition, "" when all do).
func liveScope(live string) string {
	if live != "" {
		return " AND " + live
	}
	return ""
}

// Query translates meter versions into one backtest query for d. It
// returns an *ErrUntranslatable when some construct has no exact SQL.
func Query(d Dialect, spans []Span, w Window) (*Plan, error) {
	if len(spans) == 0 {
		return nil, errors.New("sqlgen: no meter")
	}
	if w.BucketMs <= 0 || w.FromMs < 0 || w.ToMs <= w.FromMs || w.Limit <= 0 {
		return nil, fmt.Errorf("sqlgen: invalid window %+v", w)
	}
	def := spans[0].Meter.Def
	for _, s := range spans[1:] {
		if s.Meter.Def.Aggregation != def.Aggregation || s.Meter.Def.GroupBy != def.GroupBy {
			return nil, errors.New("sqlgen: versions of one meter must share aggregation and group_by")
		}
	}
	t := newTr(d)
	rows := make([]Row, len(spans))
	for i, s := range spans {
		r, err := translateMeter(t, s.Meter)
		if err != nil {
			return nil, err
		}
		rows[i] = r
	}
	// Versions apply by event time: the last span whose start is <= time.
	pick := func(field func(Row) string) string {
		e := field(rows[len(rows)-1])
		for i := len(rows) - 2; i >= 0; i-- {
			e = d.If("("+t.col("time_ms")+" < "+d.Int(spans[i+1].FromMs)+")", field(rows[i]), e)
		}
		return t.bind(e)
	}
	group := groupColumn(def.GroupBy)
	if len(t.unc) > 63 {
		return nil, untranslatable("meter", "too many kinds of uncertain values")
	}
	unc := t.d.False()
	if len(t.unc) > 0 {
		unc = t.or(t.unc...)
	}
	p := queryParts{agg: def.Aggregation, w: w, certain: len(t.unc) == 0, scope: scope(d, group, w), from: "events"}
	if !slices.ContainsFunc(spans, func(s Span) bool { return s.Meter.CountsBlocked() }) {
		// No version counts blocked calls: dropped early, they cannot make
		// the answer uncertain either.
		p.rows = " AND " + notBlocked("blocked_by")
	}
	if len(w.GroupFromMs) > 0 {
		p.from, p.starts = d.GroupStarts(group, w.GroupFromMs, w.FromMs)
	}
	p.outs = [][2]string{
		{outBucket, "(" + t.col("time_ms") + " - (" + t.col("time_ms") + " % " + d.Int(w.BucketMs) + "))"},
		{outGroup, t.col(group)},
		{outMatched, pick(func(r Row) string { return r.Matched })},
		{outErr, pick(func(r Row) string { return r.ValueErr })},
		{outValue, pick(func(r Row) string { return r.Value })},
		{outUnc, unc},
		{outUncMask, t.uncertainMask()},
	}
	if def.Aggregation == rules.AggUnique {
		p.outs = append(p.outs,
			[2]string{outIsText, pick(func(r Row) string { return r.IsText })},
			[2]string{outText, pick(func(r Row) string { return r.Text })},
			[2]string{outNum, pick(func(r Row) string { return r.Num })})
	}
	p.binds = t.binds
	p.cols = sortedKeys(t.usesCols)
	q := d.query(p)
	if max := d.maxQueryBytes(); max > 0 && len(q) > max {
		return nil, untranslatable("meter", "its query is %d bytes, more than %s parses (%d)", len(q), d.Name(), max)
	}
	return &Plan{SQL: q, Uncertain: t.uncWhy, CountSQL: countSQL(d, p)}, nil
}

// CountQuery counts the events a backtest over w of a meter grouping by
// groupBy scans (Plan.CountSQL): engine/hours answers a backtest from
// stored hours, but scanned_events from the events.
func CountQuery(d Dialect, groupBy string, w Window) string {
	return countSQL(d, queryParts{w: w, scope: scope(d, groupColumn(groupBy), w)})
}

func countSQL(d Dialect, p queryParts) string {
	return "SELECT " + d.Int64("count(*)") + " FROM events WHERE " + p.timeRange()
}

// groupColumn is the column a meter grouping by groupBy groups on.
func groupColumn(groupBy string) string {
	if groupBy == rules.GroupByUser {
		return rules.GroupByUser
	}
	return rules.GroupByCompany
}

// scope is the row predicates of w besides time (Live, Group).
func scope(d Dialect, group string, w Window) string {
	sc := liveScope(w.Live)
	if w.Group != "" {
		sc += " AND " + group + " = " + d.Str(w.Group)
	}
	return sc
}

func (p queryParts) timeRange() string {
	return "time_ms >= " + strconv.FormatInt(p.w.FromMs, 10) + " AND time_ms < " + strconv.FormatInt(p.w.ToMs, 10) + rangesCond(p.w.Ranges) + p.scope
}

// rangesCond is Window.Ranges as a row predicate (" AND (...)"), "" for
// none: comparisons on time_ms, which both stores prune by (ClickHouse's
// primary key, DuckDB's zone maps).
func rangesCond(rs [][2]int64) string {
	if len(rs) == 0 {
		return ""
	}
	xs := make([]string, len(rs))
	for i, r := range rs {
		xs[i] = "(time_ms >= " + strconv.FormatInt(r[0], 10) + " AND time_ms < " + strconv.FormatInt(r[1], 10) + ")"
	}
	return " AND (" + strings.Join(xs, " OR ") + ")"
}

// rowFilter keeps the rows that matter: matched or uncertain ones.
func (p queryParts) rowFilter() string {
	if p.certain {
		return outMatched
	}
	return "(" + outMatched + " OR " + outUnc + ")"
}

func (p queryParts) outList() string {
	var xs []string
	for _, o := range p.outs {
		xs = append(xs, o[1]+" AS "+o[0])
	}
	return strings.Join(xs, ",\n  ")
}

// perEvent is the per-event query: the columns the meter reads, then the
// bindings in nested projections (a projection's aliases are used by the
// projections above it), then the output expressions.
//
// DuckDB gets one projection per binding level. ClickHouse analyses deep
// nesting slowly (its cost grows with depth times width), so there
// consecutive levels share one SELECT as long as their aliases stay small
// when expanded: ClickHouse expands the aliases of one SELECT into a tree,
// which grows exponentially with the depth of shared subexpressions (code
// 168, AST is too big). Each projection passes on only the columns used
// above it.
func (p queryParts) perEvent(expandAliases bool) string {
	var levels [][]bind
	for _, b := range p.binds {
		for len(levels) <= b.level {
			levels = append(levels, nil)
		}
		levels[b.level] = append(levels[b.level], b)
	}
	// Group levels into projections.
	var projs [][]bind
	size := map[string]int{} // expanded length of the aliases of the current projection
	total := 0
	for _, bs := range levels {
		grown, sizes := 0, make([]int, len(bs))
		for i, b := range bs {
			sizes[i] = expandedLen(b.expr, size)
			grown += sizes[i]
		}
		if len(projs) == 0 || !expandAliases || total+grown > maxExpanded {
			projs = append(projs, nil)
			clear(size)
			total, grown = 0, 0
			for i, b := range bs {
				sizes[i] = len(b.expr)
				grown += sizes[i]
			}
		}
		projs[len(projs)-1] = append(projs[len(projs)-1], bs...)
		for i, b := range bs {
			size[b.name] = sizes[i]
		}
		total += grown
	}
	// usedAbove[i]: identifiers used by the projections above i and the
	// outputs.
	usedAbove := make([]map[string]bool, len(projs))
	used := map[string]bool{}
	for _, o := range p.outs {
		addIdents(used, o[1])
	}
	for i := len(projs) - 1; i >= 0; i-- {
		usedAbove[i] = maps.Clone(used)
		for _, b := range projs[i] {
			addIdents(used, b.expr)
		}
	}
	cols := p.cols
	if len(cols) == 0 {
		cols = []string{"time_ms"}
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + p.from + " WHERE " + p.timeRange() + p.starts + p.rows
	avail := slices.Clone(cols)
	for i, bs := range projs {
		var sel, next []string
		for _, c := range avail {
			if usedAbove[i][c] {
				sel = append(sel, c)
				next = append(next, c)
			}
		}
		for _, b := range bs {
			sel = append(sel, b.expr+" AS "+b.name)
			if usedAbove[i][b.name] {
				next = append(next, b.name)
			}
		}
		q = "SELECT " + strings.Join(sel, ",\n  ") + "\nFROM (" + q + ")"
		avail = next
	}
	return "SELECT " + p.outList() + "\nFROM (" + q + ")"
}

// maxExpanded bounds the text of one ClickHouse projection's expressions
// with their aliases expanded (its limit, max_expanded_ast_elements, is
// 500,000 nodes; the text is a few characters per node).
const maxExpanded = 200_000

// expandedLen is the length of expr with the aliases of size expanded.
func expandedLen(expr string, size map[string]int) int {
	n := len(expr)
	for _, id := range aliasRef.FindAllString(expr, -1) {
		if s, ok := size[id]; ok {
			n += s - len(id)
		}
	}
	return n
}

var identRe = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// addIdents adds the identifiers of a SQL expression to set (words inside
// string literals too: they only keep a column that is not needed).
func addIdents(set map[string]bool, expr string) {
	for _, id := range identRe.FindAllString(expr, -1) {
		set[id] = true
	}
}

// query for DuckDB: the per-event expressions (perEvent), then one
// aggregation with GROUPING SETS (total, per bucket, per group) and a
// window function keeping the Limit largest rows per set.
func (DuckDB) query(p queryParts) string {
	q := p.perEvent(false)

	valid := outMatched + " AND NOT " + outErr
	var value, has string
	switch p.agg {
	case rules.AggCount:
		value, has = "CAST(count(*) FILTER (WHERE "+outMatched+") AS DOUBLE)", "1"
	case rules.AggSum:
		value, has = "coalesce(sum("+outValue+") FILTER (WHERE "+valid+"), 0)", "1"
	case rules.AggMax, rules.AggMin:
		value = "coalesce(" + p.agg + "(" + outValue + ") FILTER (WHERE " + valid + "), 0)"
		has = "CAST(count(*) FILTER (WHERE " + valid + ") > 0 AS BIGINT)"
	case rules.AggUnique:
		value = "CAST(count(DISTINCT " + outText + ") FILTER (WHERE " + valid + " AND " + outIsText + ") + count(DISTINCT " + outNum + ") FILTER (WHERE " + valid + " AND NOT " + outIsText + ") AS DOUBLE)"
		has = "1"
	}
	sets, set3, keep := "", "", ""
	if p.w.GroupBuckets {
		sets = ", (" + outBucket + ", " + outGroup + ")"
		set3 = "WHEN GROUPING(" + outBucket + ") = 0 AND GROUPING(" + outGroup + ") = 0 THEN 3 "
		keep = " OR s = 3"
	}
	return "WITH r AS (" + q + "),\nagg AS (SELECT CASE " + set3 + "WHEN GROUPING(" + outBucket + ") = 0 THEN 1 WHEN GROUPING(" + outGroup + ") = 0 THEN 2 ELSE 0 END AS s,\n" +
		"  coalesce(" + outBucket + ", 0) AS bucket, coalesce(" + outGroup + ", '') AS grp,\n" +
		"  count(*) FILTER (WHERE " + outMatched + ") AS n, count(*) FILTER (WHERE " + outMatched + " AND " + outErr + ") AS errs,\n" +
		"  " + value + " AS value, " + has + " AS has, count(*) FILTER (WHERE " + outUnc + ") AS unc, bit_or(" + outUncMask + ") AS umask\n" +
		"  FROM r WHERE " + p.rowFilter() + "\n" +
		"  GROUP BY GROUPING SETS ((" + outBucket + "), (" + outGroup + "), ()" + sets + "))\n" +
		"SELECT CAST(s AS BIGINT), CAST(bucket AS BIGINT), grp, CAST(n AS BIGINT), CAST(errs AS BIGINT), CAST(value AS DOUBLE), CAST(has AS BIGINT), CAST(unc AS BIGINT), CAST(coalesce(umask, 0) AS BIGINT),\n" +
		"  (SELECT count(*) FROM events WHERE " + p.timeRange() + ") AS scanned\n" +
		"FROM (SELECT *, row_number() OVER (PARTITION BY s ORDER BY has DESC, value DESC, n DESC, grp) AS rn FROM agg)\n" +
		"WHERE rn <= " + strconv.Itoa(p.w.Limit) + keep
}

// query for ClickHouse 18.16 (no GROUPING SETS): the per-event
// expressions (perEvent), aggregated per (bucket, group) with mergeable
// states; then ARRAY JOIN [0, 1, 2] re-aggregates those rows into the
// total, per bucket and per group sets, and LIMIT BY keeps the Limit
// largest per set.
func (ClickHouse) query(p queryParts) string {
	// The filter must not go into the WHERE of a SELECT that defines it
	// as an alias: 18.16's PREWHERE optimizer crashes the server on a
	// WHERE referencing an alias of a conjunction (see the regression
	// "server crash on an aliased conjunction in WHERE").
	inner := p.perEvent(true)

	valid := outMatched + " AND NOT " + outErr
	agg2 := []string{
		outBucket, outGroup,
		"countIf(" + outMatched + ") AS _n", "countIf(" + outMatched + " AND " + outErr + ") AS _errs",
		"countIf(" + outUnc + ") AS _unc", "groupBitOr(toUInt64(" + outUncMask + ")) AS _umask", "countIf(" + valid + ") AS _valid",
	}
	value, has := "toFloat64(sum(_n))", "1"
	switch p.agg {
	case rules.AggSum:
		agg2 = append(agg2, "sumIf("+outValue+", "+valid+") AS _vs")
		value = "sum(_vs)"
	case rules.AggMax, rules.AggMin:
		agg2 = append(agg2, p.agg+"If("+outValue+", "+valid+") AS _vx")
		value, has = p.agg+"If(_vx, _valid > 0)", "sum(_valid) > 0"
	case rules.AggUnique:
		agg2 = append(agg2,
			"uniqExactIfState("+outText+", "+valid+" AND "+outIsText+") AS _st",
			"uniqExactIfState("+outNum+", "+valid+" AND NOT "+outIsText+") AS _sn")
		value = "uniqExactIfMerge(_st) + uniqExactIfMerge(_sn)"
	}
	mid := "SELECT " + strings.Join(agg2, ", ") + "\nFROM (" + inner + ")\nWHERE " + p.rowFilter() + "\nGROUP BY " + outBucket + ", " + outGroup
	sets, limit := "[0, 1, 2]", "LIMIT "+strconv.Itoa(p.w.Limit)+" BY set_"
	if p.w.GroupBuckets { // mid's rows are set 3 already; no LIMIT BY keeps all of them
		sets, limit = "[0, 1, 2, 3]", ""
	}
	return "SELECT toInt64(_s) AS set_, toInt64(if(_s = 1 OR _s = 3, " + outBucket + ", 0)) AS bucket, if(_s >= 2, " + outGroup + ", '') AS grp,\n" +
		"  toInt64(sum(_n)) AS events, toInt64(sum(_errs)) AS errors, toFloat64(" + value + ") AS value, toInt64(" + has + ") AS has_value,\n" +
		"  toInt64(sum(_unc)) AS uncertain, toInt64(groupBitOr(_umask)) AS uncertain_mask,\n" +
		"  toInt64((SELECT count() FROM events WHERE " + p.timeRange() + ")) AS scanned\n" +
		"FROM (" + mid + ")\nARRAY JOIN " + sets + " AS _s\n" +
		"GROUP BY _s, bucket, grp\n" +
		"ORDER BY set_, has_value DESC, value DESC, events DESC, grp\n" + limit
}
