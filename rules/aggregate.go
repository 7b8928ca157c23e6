package rules

import (
	"cmp"
	"slices"
)

// Row is one aggregate: of one group in one bucket (Buckets), or of one
// group over everything added (Totals, Bucket 0).
//
// Value by aggregation, over the group's (and bucket's) matched calls:
//   - count: the number of matched calls (value errors cannot happen).
//   - sum: the sum of the values, skipping value errors (0 if none).
//   - max, min: the largest/smallest value, skipping value errors;
//     HasValue is false when no call had a valid value.
//   - unique: the number of distinct values, skipping value errors. A
//     number and a string are never the same value; numbers compare as
//     float64 (1 and 1.0 are one value, 0 and -0 too).
//
// Group totals of unique are distinct over the whole period, not the sum
// of the buckets. A group appears only once one of its calls matched.
type Row struct {
	Group       string
	Bucket      int64
	Value       float64
	HasValue    bool
	Matched     int64 // matched calls
	ValueErrors int64 // matched calls whose value was missing
}

// Aggregator folds meter results into per-bucket and per-group rows. It
// is the reference for the SQL aggregation (and the VM fallback). Not
// safe for concurrent use.
type Aggregator struct {
	agg     string
	buckets map[bucketKey]*acc
	groups  map[string]*acc
}

type bucketKey struct {
	group  string
	bucket int64
}

type distinctKey struct {
	isText bool
	text   string
	num    float64
}

type acc struct {
	matched, errs, valid int64
	sum, max, min        float64
	distinct             map[distinctKey]struct{}
}

// NewAggregator makes an aggregator for one of AggSum, AggCount, AggMax,
// AggMin, AggUnique.
func NewAggregator(aggregation string) *Aggregator {
	return &Aggregator{agg: aggregation, buckets: map[bucketKey]*acc{}, groups: map[string]*acc{}}
}

// Add folds one call's result into its group and bucket (the caller
// chooses buckets, e.g. the hour's start in unix ms). Unmatched results
// are ignored.
func (a *Aggregator) Add(group string, bucket int64, r Result) {
	if !r.Matched {
		return
	}
	k := bucketKey{group, bucket}
	b := a.buckets[k]
	if b == nil {
		b = &acc{}
		a.buckets[k] = b
	}
	g := a.groups[group]
	if g == nil {
		g = &acc{}
		a.groups[group] = g
	}
	b.add(a.agg, r)
	g.add(a.agg, r)
}

func (c *acc) add(agg string, r Result) {
	c.matched++
	if r.ValueError {
		c.errs++
		return
	}
	c.valid++
	switch agg {
	case AggSum:
		c.sum += r.Value
	case AggMax:
		if c.valid == 1 || r.Value > c.max {
			c.max = r.Value
		}
	case AggMin:
		if c.valid == 1 || r.Value < c.min {
			c.min = r.Value
		}
	case AggUnique:
		if c.distinct == nil {
			c.distinct = map[distinctKey]struct{}{}
		}
		k := distinctKey{isText: r.IsText, text: r.Text}
		if !r.IsText && r.Value != 0 {
			k.num = r.Value // both zeros (0, -0) stay the key 0
		}
		c.distinct[k] = struct{}{}
	}
}

func (c *acc) row(agg, group string, bucket int64) Row {
	r := Row{Group: group, Bucket: bucket, Matched: c.matched, ValueErrors: c.errs, HasValue: true}
	switch agg {
	case AggCount:
		r.Value = float64(c.matched)
	case AggSum:
		r.Value = c.sum
	case AggMax:
		r.Value, r.HasValue = c.max, c.valid > 0
	case AggMin:
		r.Value, r.HasValue = c.min, c.valid > 0
	case AggUnique:
		r.Value = float64(len(c.distinct))
	default:
		r.HasValue = false
	}
	return r
}

// Buckets returns one row per (group, bucket), sorted by group then bucket.
func (a *Aggregator) Buckets() []Row {
	rows := make([]Row, 0, len(a.buckets))
	for k, c := range a.buckets {
		rows = append(rows, c.row(a.agg, k.group, k.bucket))
	}
	slices.SortFunc(rows, func(x, y Row) int {
		return cmp.Or(cmp.Compare(x.Group, y.Group), cmp.Compare(x.Bucket, y.Bucket))
	})
	return rows
}

// Totals returns one row per group over all buckets, sorted by group.
func (a *Aggregator) Totals() []Row {
	rows := make([]Row, 0, len(a.groups))
	for g, c := range a.groups {
		rows = append(rows, c.row(a.agg, g, 0))
	}
	slices.SortFunc(rows, func(x, y Row) int { return cmp.Compare(x.Group, y.Group) })
	return rows
}
