package backtest

import (
	"fmt"
	"math"
	"time"

	"github.com/meterd/meterd/engine/fault"
)

// Bucket widths.
const (
	BucketMinute = "minute"
	BucketHour   = "hour"
	BucketDay    = "day"
)

// Window limits.
const (
	MaxSpan = 400 * 24 * time.Hour
	// MaxMinuteSpan bounds windows cut in minutes: 44,640 buckets, about
	// what an hourly window of MaxSpan has (9,600) times the groups a
	// per-customer answer multiplies them by.
	MaxMinuteSpan = 31 * 24 * time.Hour
	DefaultTop    = 10
	MaxTop        = 1000
)

// Window is the period a backtest covers: events with From <= time < To,
// bucketed by UTC minute, hour or day (bucket starts are multiples of the width
// since the Unix epoch, so a From inside a bucket starts a partial one),
// and the Top groups by value to list.
type Window struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Bucket string    `json:"bucket"` // minute, hour or day
	Top    int       `json:"top"`    // 1..1000; 0 means 10
	// Group, when not "", restricts the backtest to one billed customer's
	// events (company_id or user_id, as the meter groups); the billing
	// worker uses it for per-customer buckets.
	Group string `json:"group,omitempty"`
	// GroupBuckets asks for Result.GroupBuckets: every group's buckets in
	// the same query (the billing worker reads all customers of a meter
	// at once).
	GroupBuckets bool `json:"-"`
	// AllGroups makes Result.Groups list every group, not only the Top
	// largest (the billing worker reads every customer's period value of a
	// max, min or unique meter at once).
	AllGroups bool `json:"-"`
	// GroupFrom starts the window of the groups it lists at their own
	// time (at or after From): each customer's usage over its own billing
	// period, every customer in one query (governance's usage()).
	GroupFrom map[string]time.Time `json:"-"`
	// Ranges, when not empty, keeps only the events in one of these
	// [from, to) ranges of unix ms (within the window, in order, not
	// overlapping): engine/hours recomputes scattered hours in one query.
	Ranges [][2]int64 `json:"-"`
}

// inRanges reports whether ms is in one of w.Ranges (true without any).
func (w Window) inRanges(ms int64) bool {
	if len(w.Ranges) == 0 {
		return true
	}
	for _, r := range w.Ranges {
		if ms >= r[0] && ms < r[1] {
			return true
		}
	}
	return false
}

// groupFromMs is GroupFrom in unix ms, nil when empty.
func (w Window) groupFromMs() map[string]int64 {
	if len(w.GroupFrom) == 0 {
		return nil
	}
	out := make(map[string]int64, len(w.GroupFrom))
	for g, t := range w.GroupFrom {
		out[g] = max(t.UnixMilli(), w.From.UnixMilli())
	}
	return out
}

// keepGroups sorts groups largest first and keeps the Top of them, or
// all with AllGroups.
func (w Window) keepGroups(gs []Group) []Group {
	if w.AllGroups {
		return topGroups(gs, len(gs))
	}
	return topGroups(gs, w.Top)
}

// rowLimit is the rows the query keeps per grouping set: enough for the
// buckets and the top groups, or everything with AllGroups.
func (w Window) rowLimit() int {
	if w.AllGroups {
		return math.MaxInt32
	}
	return max(w.Top, w.buckets())
}

// CodeInvalidWindow is the code of an invalid window's error, which names
// the field at fault.
const CodeInvalidWindow = "invalid_window"

func windowError(field, message string) error {
	return fault.Invalid(CodeInvalidWindow, field, message)
}

// Validate checks the window and fills defaults (Top).
func (w *Window) Validate() error {
	// Events are stored with millisecond times.
	w.From, w.To = w.From.Truncate(time.Millisecond), w.To.Truncate(time.Millisecond)
	switch {
	case w.From.IsZero():
		return windowError("from", "from is required (RFC 3339, e.g. 2025-01-01T00:00:00Z)")
	case w.To.IsZero():
		return windowError("to", "to is required (RFC 3339, e.g. 2025-02-01T00:00:00Z)")
	case w.From.Before(time.Unix(0, 0)):
		return windowError("from", "from must not be before 1970-01-01")
	case !w.To.After(w.From):
		return windowError("to", "to must be after from")
	case w.To.Sub(w.From) > MaxSpan: // to defaults to now: from is what reaches too far
		return windowError("from", fmt.Sprintf("from is more than %d days before to: a window spans at most %[1]d days", int(MaxSpan/(24*time.Hour))))
	}
	switch w.Bucket {
	case BucketMinute:
		if w.To.Sub(w.From) > MaxMinuteSpan {
			return windowError("bucket", fmt.Sprintf("minute buckets cover at most %d days: narrow the window or use hour buckets", int(MaxMinuteSpan/(24*time.Hour))))
		}
	case BucketHour, BucketDay:
	case "":
		return windowError("bucket", "bucket is required: minute, hour or day")
	default:
		return windowError("bucket", fmt.Sprintf("bucket must be minute, hour or day, got %q", w.Bucket))
	}
	if w.Top == 0 {
		w.Top = DefaultTop
	}
	if w.Top < 1 || w.Top > MaxTop {
		return windowError("top", fmt.Sprintf("top must be between 1 and %d, got %d", MaxTop, w.Top))
	}
	return nil
}

// Width is the bucket width.
func (w Window) Width() time.Duration { return time.Duration(w.bucketMs()) * time.Millisecond }

// bucketMs is the bucket width in milliseconds.
func (w Window) bucketMs() int64 {
	switch w.Bucket {
	case BucketDay:
		return 24 * 3600 * 1000
	case BucketMinute:
		return 60 * 1000
	}
	return 3600 * 1000
}

// buckets is the number of buckets the window touches.
func (w Window) buckets() int {
	b := w.bucketMs()
	first := w.From.UnixMilli() / b
	last := (w.To.UnixMilli() - 1) / b
	return int(last-first) + 1
}
