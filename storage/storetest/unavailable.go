package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/meterd/meterd/storage"
)

// testClosedIsUnavailable: a store that can no longer be used (here,
// closed) answers every call with storage.ErrUnavailable, on every read
// and write path alike, so callers can tell "retry later" from a bad
// request whatever the backend.
func testClosedIsUnavailable(t *testing.T, s storage.Store) {
	insert(t, s, full("a", t0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Insert":     func() error { _, err := s.Insert(ctx, []storage.Event{full("b", t0)}); return err },
		"ListEvents": func() error { _, err := s.ListEvents(ctx, storage.EventFilter{}); return err },
		"ListEvents limit": func() error {
			_, err := s.ListEvents(ctx, storage.EventFilter{Limit: 10})
			return err
		},
		"Stats":       func() error { _, err := s.Stats(ctx, storage.EventFilter{}); return err },
		"PutProfiles": func() error { return s.PutProfiles(ctx, []storage.Profile{{Kind: storage.KindUser, ID: "u"}}) },
		"Profiles":    func() error { _, err := s.Profiles(ctx); return err },
		"Query":       func() error { _, err := s.Query(ctx, "SELECT 1"); return err },
		"ScanEvents": func() error {
			return s.ScanEvents(ctx, storage.EventFilter{}, func(*storage.Event) error { return nil })
		},
		"AppendMeterRecord": func() error {
			return s.AppendMeterRecord(ctx, storage.MeterRecord{MeterID: "m", Seq: 1, Kind: storage.MeterCreated, At: t0})
		},
		"MeterRecords": func() error { _, err := s.MeterRecords(ctx, ""); return err },
		"AppendJournal": func() error {
			return s.AppendJournal(ctx, storage.JournalEntry{Stream: storage.StreamStripeEvents, Key: "k", At: t0})
		},
		"JournalEntries": func() error {
			_, err := s.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamStripeEvents})
			return err
		},
		"Beat":         func() error { return s.Beat(ctx, "w", t0) },
		"Retire":       func() error { return s.Retire(ctx, "w") },
		"LiveWorkers":  func() error { _, err := s.LiveWorkers(ctx, time.Time{}); return err },
		"ChangeMark":   func() error { _, err := s.ChangeMark(ctx); return err },
		"ChangedHours": func() error { _, err := s.ChangedHours(ctx, 0); return err },
		"PutUsage": func() error {
			return s.PutUsage(ctx, []storage.UsagePiece{{MeterID: "m", FromMs: 0, ToMs: 3_600_000}})
		},
		"Usage":         func() error { _, err := s.Usage(ctx, "m", 0, 3_600_000); return err },
		"SchemaVersion": func() error { _, err := s.SchemaVersion(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s on a closed store: %v; want storage.ErrUnavailable", name, err)
		}
	}
}
