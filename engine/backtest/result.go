package backtest

import (
	"cmp"
	"slices"
	"time"
)

// Engines that can answer a backtest.
const (
	EngineSQL = "sql" // one columnar query in the store
	EngineVM  = "vm"  // every event streamed through expr's VM
)

// Result is a backtest's answer (the JSON of POST /v1/backtest and
// GET /v1/meters/{id}/usage).
//
// Values are null where an aggregate has no value: a max or min meter
// whose matched events all had value errors. Buckets list only buckets
// with at least one matched event, in time order. Groups are the Top
// groups by value (valued before null, then value descending, then
// events descending, then key); anonymous calls are the group "".
type Result struct {
	Buckets       []Bucket `json:"buckets"`
	Groups        []Group  `json:"groups"`
	Total         *float64 `json:"total"`
	MatchedEvents int64    `json:"matched_events"`
	ScannedEvents int64    `json:"scanned_events"`
	ValueErrors   int64    `json:"value_errors"`
	Engine        string   `json:"engine"` // sql or vm
	// Fallback says why the VM ran instead of SQL (empty on the SQL path).
	Fallback string `json:"fallback,omitempty"`
	TookMs   int64  `json:"took_ms"`
	// GroupBuckets, only with Window.GroupBuckets: each group's buckets
	// with at least one matched event, by group, then time.
	GroupBuckets []GroupBucket `json:"group_buckets,omitempty"`
}

// Bucket is one time bucket's aggregate over every group.
type Bucket struct {
	Start  time.Time `json:"start"` // UTC
	Value  *float64  `json:"value"`
	Events int64     `json:"events"` // matched events
}

// GroupBucket is one billed customer's aggregate in one time bucket.
type GroupBucket struct {
	Group       string    `json:"group"`
	Start       time.Time `json:"start"` // UTC
	Value       *float64  `json:"value"`
	Events      int64     `json:"events"`       // matched events
	ValueErrors int64     `json:"value_errors"` // matched events whose value failed
}

func sortGroupBuckets(gbs []GroupBucket) {
	slices.SortFunc(gbs, func(a, b GroupBucket) int { return cmp.Or(cmp.Compare(a.Group, b.Group), a.Start.Compare(b.Start)) })
}

// Group is one billed customer's aggregate over the whole window.
type Group struct {
	Key    string   `json:"key"`
	Value  *float64 `json:"value"`
	Events int64    `json:"events"` // matched events
}

func valuePtr(v float64, has bool) *float64 {
	if !has {
		return nil
	}
	return &v
}

// topGroups sorts groups as Result documents and keeps the first n.
func topGroups(gs []Group, n int) []Group {
	slices.SortFunc(gs, func(a, b Group) int {
		if (a.Value == nil) != (b.Value == nil) {
			if a.Value == nil {
				return 1
			}
			return -1
		}
		if a.Value != nil && *a.Value != *b.Value {
			return -cmp.Compare(*a.Value, *b.Value)
		}
		return cmp.Or(-cmp.Compare(a.Events, b.Events), cmp.Compare(a.Key, b.Key))
	})
	if len(gs) > n {
		gs = gs[:n]
	}
	return gs
}
