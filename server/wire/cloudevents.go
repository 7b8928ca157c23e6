package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/storage"
)

// CloudEvent is a CloudEvents 1.0 event in structured JSON mode (the
// attributes meterd reads; extensions are validated as JSON and ignored).
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            json.RawMessage `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// CloudEventsBody says which bodies DecodeCloudEvents takes.
type CloudEventsBody int

const (
	// StructuredEvent is application/cloudevents+json: one event.
	StructuredEvent CloudEventsBody = iota
	// EventBatch is application/cloudevents-batch+json: an array.
	EventBatch
	// EventOrBatch is OpenMeter's application/json: either (its Python
	// SDK sends that).
	EventOrBatch
)

// DecodeCloudEvents decodes CloudEvents in structured mode. The subject is
// the billed customer (as in OpenMeter): it becomes the event's
// company_id; data becomes its metadata; a missing time is the time
// meterd received the event.
func DecodeCloudEvents(body []byte, b CloudEventsBody, l Limits) ([]storage.Event, *fault.Error) {
	var out []storage.Event
	sh := [...]shape{StructuredEvent: oneObject, EventBatch: arrayOfObjects, EventOrBatch: objectOrArray}[b]
	err := decodeElements(body, sh, l.MaxBatch, func(s *scanner) *fault.Error {
		var c CloudEvent
		if err := s.cloudEvent(&c); err != nil {
			return err
		}
		e, err := c.toEvent(l, s)
		if err != nil {
			return err
		}
		out = append(out, e)
		return l.onEvent(&out[len(out)-1])
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// cloudEvent reads the attributes. Their names are case-sensitive (the
// spec makes them lower-case).
func (s *scanner) cloudEvent(c *CloudEvent) *fault.Error {
	return s.object(func(key []byte) *fault.Error {
		var err *fault.Error
		switch string(key) {
		case "specversion":
			err = s.strField(&c.SpecVersion, "specversion")
		case "id":
			err = s.strField(&c.ID, "id")
		case "source":
			err = s.strField(&c.Source, "source")
		case "type":
			err = s.strField(&c.Type, "type")
		case "subject":
			err = s.strField(&c.Subject, "subject")
		case "datacontenttype":
			err = s.strField(&c.DataContentType, "datacontenttype")
		case "time":
			c.Time, err = s.skip()
		case "data":
			c.Data, err = s.skip()
		default:
			_, err = s.skip()
		}
		return err
	})
}

func (c *CloudEvent) toEvent(l Limits, s *scanner) (storage.Event, *fault.Error) {
	var e storage.Event
	index := s.index
	for _, f := range []struct{ name, v string }{{"specversion", c.SpecVersion}, {"id", c.ID}, {"source", c.Source}, {"type", c.Type}} {
		if f.v == "" {
			return e, badRequest(CodeMissingField, f.name, index, "%s is required", f.name)
		}
	}
	if c.SpecVersion != "1.0" {
		return e, badRequest(CodeInvalidValue, "specversion", index, `specversion must be "1.0", got %q`, c.SpecVersion)
	}
	t := l.Now
	if !isAbsent(c.Time) {
		var err *fault.Error
		if t, err = l.checkTime(c.Time, "time", index); err != nil {
			return e, err
		}
	}
	meta, attrs, err := objectText(s, c.Data, "data")
	if err != nil {
		return e, err
	}
	return storage.Event{
		ID: cloudEventID(c.Source, c.ID), ExternalID: c.ID, Format: storage.FormatCloudEvents,
		Time: t, ReceivedAt: l.Now, Type: c.Type, Source: c.Source, Subject: c.Subject,
		CompanyID: c.Subject, Weight: 1, Metadata: meta, Flat: &storage.Flat{Meta: attrs},
	}, nil
}

// cloudEventID hashes the (source, id) pair the spec makes unique,
// length-prefixed so that no two pairs share an encoding.
func cloudEventID(source, id string) string {
	b := make([]byte, 0, 8+len(source)+len(id))
	b = binary.BigEndian.AppendUint64(b, uint64(len(source)))
	b = append(append(b, source...), id...)
	sum := sha256.Sum256(b)
	return "ce_" + hex.EncodeToString(sum[:16])
}
