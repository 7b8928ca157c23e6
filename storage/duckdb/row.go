package duckdb

import (
	"time"

	"github.com/meterd/meterd/storage"
)

// eventRow is an event as the appender's positional values, in
// eventColumns order.
func eventRow(e *storage.Event) ([]any, error) {
	flat, err := e.Flatten()
	if err != nil {
		return nil, err
	}
	meta, traits := flat.Meta, flat.Traits
	rqk, rqv := storage.HeaderColumns(e.RequestHeaders)
	rsk, rsv := storage.HeaderColumns(e.ResponseHeaders)
	t := e.Time.UTC()
	return []any{
		e.ID, e.ExternalID, e.Format, time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC),
		t.UnixMilli(), e.ReceivedAt.UnixMilli(), e.Type, e.Source, e.Subject,
		e.Verb, e.URI, e.Route, e.Host, e.IP, e.APIVersion, rqk, rqv, e.RequestSize, e.RequestBody,
		e.HasResponse, msOrZero(e.ResponseTime), e.Status, rsk, rsv, e.ResponseSize, e.ResponseBody,
		e.DurationMs, e.UserID, e.CompanyID, e.SessionToken, e.SubscriptionID, e.Direction, e.Weight,
		orEmptyObject(e.Metadata),
		meta.Keys, meta.Types, meta.Strs, meta.Nums,
		orEmptyObject(e.UserTraits), orEmptyObject(e.CompanyTraits),
		traits.Keys, traits.Types, traits.Strs, traits.Nums,
	}, nil
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func orEmptyObject(s string) string {
	if s == "" {
		return "{}"
	}
	return s
}

// scanEvent reads one row of "SELECT <readColumns>".
const readColumns = `id, external_id, format, time_ms, received_ms, type, source, subject,
	verb, uri, route, host, ip, api_version, req_header_keys, req_header_values, req_size, req_body,
	has_response, resp_time_ms, status, resp_header_keys, resp_header_values, resp_size, resp_body,
	duration_ms, user_id, company_id, session_token, subscription_id, direction, weight, metadata,
	user_traits, company_traits`

type scanner interface{ Scan(dest ...any) error }

func scanEvent(r scanner) (storage.Event, error) {
	var e storage.Event
	var tms, rms, resp int64
	var rqk, rqv, rsk, rsv []any
	err := r.Scan(&e.ID, &e.ExternalID, &e.Format, &tms, &rms, &e.Type, &e.Source, &e.Subject,
		&e.Verb, &e.URI, &e.Route, &e.Host, &e.IP, &e.APIVersion, &rqk, &rqv, &e.RequestSize, &e.RequestBody,
		&e.HasResponse, &resp, &e.Status, &rsk, &rsv, &e.ResponseSize, &e.ResponseBody,
		&e.DurationMs, &e.UserID, &e.CompanyID, &e.SessionToken, &e.SubscriptionID, &e.Direction, &e.Weight,
		&e.Metadata, &e.UserTraits, &e.CompanyTraits)
	if err != nil {
		return e, err
	}
	e.Time = time.UnixMilli(tms).UTC()
	e.ReceivedAt = time.UnixMilli(rms).UTC()
	if e.HasResponse {
		e.ResponseTime = time.UnixMilli(resp).UTC()
	}
	e.RequestHeaders = storage.HeaderMap(strs(rqk), strs(rqv))
	e.ResponseHeaders = storage.HeaderMap(strs(rsk), strs(rsv))
	return e, nil
}

func strs(l []any) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i], _ = v.(string)
	}
	return out
}
