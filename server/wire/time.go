package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/storage"
)

// Limits bounds event times: older than MaxAge or further than MaxSkew in
// the future is rejected (MaxAge < 0 disables the age check).
type Limits struct {
	Now     time.Time
	MaxAge  time.Duration
	MaxSkew time.Duration
	// MaxBatch is the most events a batch may hold.
	MaxBatch int
	// KeepBodies keeps request/response bodies, not only their sizes.
	KeepBodies bool
	// OnEvent, when set, is called with each event as it is decoded; an
	// error stops decoding and is returned (the server counts the events'
	// memory against its budget as they are built).
	OnEvent func(e *storage.Event) *fault.Error
}

func (l *Limits) onEvent(e *storage.Event) *fault.Error {
	if l.OnEvent == nil {
		return nil
	}
	return l.OnEvent(e)
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999", // Moesif clients sometimes omit the zone: UTC
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// parseTime reads an ISO 8601 string (zone optional, UTC assumed) or a
// number of unix milliseconds.
func parseTime(raw json.RawMessage) (time.Time, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false
	}
	if raw[0] != '"' {
		ms, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.UnixMilli(ms).UTC(), true
	}
	s, err := (&scanner{b: raw}).str()
	if err != nil {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Truncate(time.Millisecond), true
		}
	}
	return time.Time{}, false
}

// checkTime validates a required event time against the limits.
func (l Limits) checkTime(raw json.RawMessage, field string, index *int) (time.Time, *fault.Error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return time.Time{}, badRequest(CodeMissingField, field, index, "%s is required", field)
	}
	t, ok := parseTime(raw)
	if !ok {
		return t, badRequest(CodeInvalidValue, field, index, "%s must be an ISO 8601 time (e.g. 2026-11-25T10:00:00.000Z) or unix milliseconds, got %s", field, clip(raw))
	}
	if l.MaxAge >= 0 && t.Before(l.Now.Add(-l.MaxAge)) {
		return t, badRequest(CodeTimeOutOfRange, field, index, "%s %s is older than the %s the server accepts", field, t.Format(time.RFC3339), l.MaxAge)
	}
	if t.After(l.Now.Add(l.MaxSkew)) {
		return t, badRequest(CodeTimeOutOfRange, field, index, "%s %s is more than %s in the future", field, t.Format(time.RFC3339), l.MaxSkew)
	}
	return t, nil
}

func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}
