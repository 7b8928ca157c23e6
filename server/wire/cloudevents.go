package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"

	"github.com/meterd/meterd/storage"
)

// CloudEvent is a CloudEvents 1.0 event in structured JSON mode.
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

// DecodeCloudEvents decodes application/cloudevents+json (single) or
// application/cloudevents-batch+json. The subject is the billed customer
// (as in OpenMeter): it becomes the event's company_id; data becomes its
// metadata; a missing time is the time meterd received the event.
func DecodeCloudEvents(body []byte, single bool, l Limits) ([]storage.Event, *Error) {
	var out []storage.Event
	err := decodeElements(body, single, l.MaxBatch, func(c *CloudEvent, index *int) *Error {
		e, werr := c.toEvent(l, index)
		if werr != nil {
			return werr
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

func (c *CloudEvent) toEvent(l Limits, index *int) (storage.Event, *Error) {
	var e storage.Event
	for _, f := range []struct{ name, v string }{{"specversion", c.SpecVersion}, {"id", c.ID}, {"source", c.Source}, {"type", c.Type}} {
		if f.v == "" {
			return e, badRequest(CodeMissingField, f.name, index, "%s is required", f.name)
		}
	}
	if c.SpecVersion != "1.0" {
		return e, badRequest(CodeInvalidValue, "specversion", index, `specversion must be "1.0", got %q`, c.SpecVersion)
	}
	t := l.Now
	if len(bytes.TrimSpace(c.Time)) > 0 && string(c.Time) != "null" {
		var err *Error
		if t, err = l.checkTime(c.Time, "time", index); err != nil {
			return e, err
		}
	}
	meta, attrs, err := objectText(c.Data, "data", index)
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
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(source)))
	h.Write(n[:])
	h.Write([]byte(source))
	h.Write([]byte(id))
	return "ce_" + hex.EncodeToString(h.Sum(nil)[:16])
}
