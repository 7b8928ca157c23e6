package storage

import (
	"context"
	"time"
)

// Beats is where processes sharing a store say they are alive: each
// billing worker marks itself every cycle, and the oldest live one runs
// the cycles (engine/billing). The store keeps each worker's newest mark
// only, so the table stays as small as the number of workers.
type Beats interface {
	// Beat records that worker is alive at at.
	Beat(ctx context.Context, worker string, at time.Time) error
	// Retire marks worker as stopped for good, for a worker that stops:
	// the next one need not wait for its marks to age, and a mark of it
	// still in flight does not bring it back.
	Retire(ctx context.Context, worker string) error
	// LiveWorkers lists the workers whose newest mark is at or after
	// since, sorted by Worker.
	LiveWorkers(ctx context.Context, since time.Time) ([]WorkerBeat, error)
}

// WorkerBeat is a worker's newest mark.
type WorkerBeat struct {
	Worker string
	At     time.Time
}
