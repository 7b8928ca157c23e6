package storage

import (
	"context"
	"time"
)

// Meter record kinds. A meter's history is its records in Seq order; the
// store only ever appends them.
const (
	MeterCreated  = "created"  // version 1: Body is the full definition
	MeterVersion  = "version"  // a new version: Body is the full definition
	MeterRenamed  = "renamed"  // Body: {"name": ...}
	MeterStatus   = "status"   // Body: {"status": "active"|"inactive"}
	MeterArchived = "archived" // Body: {}
	MeterSlug     = "slug"     // Body: {"slug": ..., "previous": ...}
)

// MeterRecord is one append-only entry of a meter's audit trail.
type MeterRecord struct {
	MeterID       string
	Seq           int // 1, 2, ... per meter
	Kind          string
	At            time.Time
	Actor         string // who made the change
	Version       int    // the version this record creates (created/version), else 0
	EffectiveFrom time.Time
	Body          string // JSON
}

// MeterLog is implemented by both stores: the meters' audit trail.
type MeterLog interface {
	// AppendMeterRecord appends one record. (MeterID, Seq) must be new: a
	// record that repeats one is refused with ErrConflict.
	AppendMeterRecord(ctx context.Context, r MeterRecord) error
	// MeterRecords returns one meter's records ("" for every meter's),
	// ordered by MeterID then Seq.
	MeterRecords(ctx context.Context, meterID string) ([]MeterRecord, error)
}
