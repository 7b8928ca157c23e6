package wire

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/meterd/meterd/storage"
)

// profileWire is a Moesif user or company update. Other fields (campaign,
// company_domain, ...) are kept in Profile.Raw.
type profileWire struct {
	UserID       string          `json:"user_id"`
	CompanyID    string          `json:"company_id"`
	ModifiedTime json.RawMessage `json:"modified_time"`
	Metadata     json.RawMessage `json:"metadata"`
	raw          json.RawMessage
}

// UnmarshalJSON keeps the raw object besides the fields read from it.
func (p *profileWire) UnmarshalJSON(b []byte) error {
	type plain profileWire
	if err := json.Unmarshal(b, (*plain)(p)); err != nil {
		return err
	}
	p.raw = append(json.RawMessage(nil), b...)
	return nil
}

// DecodeProfiles decodes one (single) or a batch of user or company
// profile updates (kind is storage.KindUser or storage.KindCompany).
func DecodeProfiles(body []byte, single bool, kind string, l Limits) ([]storage.Profile, *Error) {
	idField := "user_id"
	if kind == storage.KindCompany {
		idField = "company_id"
	}
	var out []storage.Profile
	err := decodeElements(body, single, l.MaxBatch, func(w *profileWire, index *int) *Error {
		p := storage.Profile{Kind: kind, ID: w.UserID, ReceivedAt: l.Now, ModifiedAt: l.Now}
		if kind == storage.KindCompany {
			p.ID = w.CompanyID
		} else {
			p.CompanyID = w.CompanyID
		}
		if p.ID == "" {
			return badRequest(CodeMissingField, idField, index, "%s is required", idField)
		}
		if len(bytes.TrimSpace(w.ModifiedTime)) > 0 && string(w.ModifiedTime) != "null" {
			t, ok := parseTime(w.ModifiedTime)
			if !ok {
				return badRequest(CodeInvalidValue, "modified_time", index, "modified_time must be an ISO 8601 time")
			}
			p.ModifiedAt = t
			if t.After(l.Now.Add(l.MaxSkew)) {
				return badRequest(CodeTimeOutOfRange, "modified_time", index, "modified_time %s is in the future", t.Format(time.RFC3339))
			}
		}
		meta, _, werr := objectText(w.Metadata, "metadata", index)
		if werr != nil {
			return werr
		}
		p.Metadata = meta
		var compact bytes.Buffer
		if err := json.Compact(&compact, w.raw); err == nil {
			p.Raw = compact.String()
		}
		out = append(out, p)
		return nil
	})
	return out, err
}
