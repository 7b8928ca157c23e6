package registry

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/meterd/meterd/rules"
	"github.com/meterd/meterd/storage"
)

// fold replays one meter's records, in Seq order, into its state.
func fold(recs []storage.MeterRecord) (*Meter, error) {
	var m Meter
	for i, rec := range recs {
		if rec.Seq != i+1 {
			return nil, fmt.Errorf("meter %s: record %d has seq %d: the log has a gap", rec.MeterID, i+1, rec.Seq)
		}
		ch := Change{Seq: rec.Seq, Kind: rec.Kind, At: rec.At, Actor: rec.Actor, Version: rec.Version, Detail: json.RawMessage(rec.Body)}
		if !rec.EffectiveFrom.IsZero() {
			ef := rec.EffectiveFrom
			ch.EffectiveFrom = &ef
		}
		m.Changes = append(m.Changes, ch)
		m.UpdatedAt = rec.At
		switch rec.Kind {
		case storage.MeterCreated:
			var b struct {
				Name, Slug, Status string
				Spec
			}
			if err := json.Unmarshal([]byte(rec.Body), &b); err != nil {
				return nil, fmt.Errorf("meter %s: %w", rec.MeterID, err)
			}
			m.ID, m.Name, m.Slug, m.Status, m.CreatedAt, m.CreatedBy = rec.MeterID, b.Name, b.Slug, b.Status, rec.At, rec.Actor
			m.Versions = []Version{{Version: 1, CreatedAt: rec.At, CreatedBy: rec.Actor, Spec: b.Spec}}
		case storage.MeterVersion:
			var s Spec
			if err := json.Unmarshal([]byte(rec.Body), &s); err != nil {
				return nil, fmt.Errorf("meter %s: %w", rec.MeterID, err)
			}
			m.Versions = append(m.Versions, Version{Version: rec.Version, EffectiveFrom: ch.EffectiveFrom,
				CreatedAt: rec.At, CreatedBy: rec.Actor, Spec: s})
		case storage.MeterRenamed:
			var b struct{ Name string }
			_ = json.Unmarshal([]byte(rec.Body), &b)
			m.Name = b.Name
		case storage.MeterSlug:
			var b struct{ Slug string }
			_ = json.Unmarshal([]byte(rec.Body), &b)
			m.Slug = b.Slug
		case storage.MeterStatus:
			var b struct{ Status string }
			_ = json.Unmarshal([]byte(rec.Body), &b)
			m.Status = b.Status
		case storage.MeterArchived:
			m.Status = rules.StatusArchived
		}
	}
	if m.ID == "" {
		return nil, fmt.Errorf("meter %s: no creation record", recs[0].MeterID)
	}
	m.CurrentVersion = len(m.Versions)
	return &m, nil
}

// Span is a version and the part of a window it applies to.
type Span struct {
	Meter    *rules.Meter
	Version  int
	From, To time.Time
}

// Spans compiles the versions in force over [from, to), each clipped to
// where it applies: version 1 from the beginning of time, each later one
// from its effective_from until the next one's.
func (m *Meter) Spans(from, to time.Time) ([]Span, error) {
	var out []Span
	for i, v := range m.Versions {
		start, end := from, to
		if v.EffectiveFrom != nil && v.EffectiveFrom.After(start) {
			start = *v.EffectiveFrom
		}
		if i+1 < len(m.Versions) && m.Versions[i+1].EffectiveFrom.Before(end) {
			end = *m.Versions[i+1].EffectiveFrom
		}
		if !start.Before(end) {
			continue
		}
		cm, err := rules.CompileSaved(m.Definition(v))
		if err != nil {
			return nil, fmt.Errorf("meter %s version %d no longer compiles: %w", m.ID, v.Version, err)
		}
		out = append(out, Span{Meter: cm, Version: v.Version, From: start, To: end})
	}
	return out, nil
}
