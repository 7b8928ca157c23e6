package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/meterd/meterd/engine/fault"
	"github.com/meterd/meterd/storage"
)

// profileWire is a Moesif user or company update. Other fields (campaign,
// company_domain, ...) are kept in Profile.Raw.
type profileWire struct {
	UserID       string          `json:"user_id"`
	CompanyID    string          `json:"company_id"`
	ModifiedTime json.RawMessage `json:"modified_time"`
	Metadata     json.RawMessage `json:"metadata"`
}

// DecodeProfiles decodes one or an array of user or company profile
// updates (kind is storage.KindUser or storage.KindCompany); each endpoint
// and its /batch twin take either.
func DecodeProfiles(body []byte, kind string, l Limits) ([]storage.Profile, *fault.Error) {
	idField := "user_id"
	if kind == storage.KindCompany {
		idField = "company_id"
	}
	var out []storage.Profile
	err := decodeElements(body, objectOrArray, l.MaxBatch, func(s *scanner) *fault.Error {
		index := s.index
		raw, serr := s.skip()
		if serr != nil {
			return serr
		}
		var w profileWire
		if err := json.Unmarshal(raw, &w); err != nil {
			return typeError(err, index)
		}
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
		// A scanner without src: the profile cache keeps the metadata, so
		// it must be a copy, not a slice of the whole body.
		meta, _, werr := objectText(&scanner{index: index}, w.Metadata, "metadata")
		if werr != nil {
			return werr
		}
		p.Metadata = meta
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err == nil {
			p.Raw = compact.String()
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// typeError explains a json.Unmarshal failure on well-formed JSON.
func typeError(err error, index *int) *fault.Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return badRequest(CodeInvalidType, te.Field, index, "%s must be %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return badRequest(CodeInvalidType, "", index, "%s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int32", "int64", "int":
		return "an integer"
	case "ptr", "struct", "map":
		return "an object"
	}
	return "a " + goKind
}
