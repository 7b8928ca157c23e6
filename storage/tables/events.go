package tables

import (
	"context"
	"time"

	"github.com/meterd/meterd/storage"
)

// EventColumns is what ScanEvent reads: the event without its derived
// columns (day, the flattened arrays).
const EventColumns = `id, external_id, format, time_ms, received_ms, type, source, subject,
	verb, uri, route, host, ip, api_version, req_header_keys, req_header_values, req_size, req_body,
	has_response, resp_time_ms, status, resp_header_keys, resp_header_values, resp_size, resp_body,
	duration_ms, user_id, company_id, session_token, subscription_id, direction, weight, metadata,
	user_traits, company_traits, blocked_by`

// Strings is a list-of-strings column as a driver scans it:
// clickhouse-go into []string, database/sql (DuckDB) into []any.
type Strings interface{ []string | []any }

// ScanEvent reads one row of "SELECT <EventColumns>", its header lists
// scanned as L.
func ScanEvent[L Strings](r Row) (storage.Event, error) {
	var e storage.Event
	var tms, rms, resp int64
	var rqk, rqv, rsk, rsv L
	err := r.Scan(&e.ID, &e.ExternalID, &e.Format, &tms, &rms, &e.Type, &e.Source, &e.Subject,
		&e.Verb, &e.URI, &e.Route, &e.Host, &e.IP, &e.APIVersion, &rqk, &rqv, &e.RequestSize, &e.RequestBody,
		&e.HasResponse, &resp, &e.Status, &rsk, &rsv, &e.ResponseSize, &e.ResponseBody,
		&e.DurationMs, &e.UserID, &e.CompanyID, &e.SessionToken, &e.SubscriptionID, &e.Direction, &e.Weight,
		&e.Metadata, &e.UserTraits, &e.CompanyTraits, &e.BlockedBy)
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

func strs[L Strings](l L) []string {
	switch l := any(l).(type) {
	case []string:
		return l
	case []any:
		out := make([]string, len(l))
		for i, v := range l {
			out[i], _ = v.(string)
		}
		return out
	}
	return nil
}

// MsOrZero is t in unix ms, 0 for the zero time (a call without a
// response, a record without an effective time).
func MsOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// OrEmptyObject is a JSON object column's value: "{}" for "".
func OrEmptyObject(s string) string {
	if s == "" {
		return "{}"
	}
	return s
}

// Stats runs a dialect's two stats queries, both taking args. totals
// reads the events' count, min and max time_ms (0 when none) and distinct
// users and companies (anonymous calls left out); keys(k, t) reads the
// key, type and event count of each key of the flattened array columns k
// and t (meta_* or trait_*), ordered by key and type.
func Stats(ctx context.Context, db DB, totals string, keys func(k, t string) string, args []any) (storage.Stats, error) {
	type span struct{ first, last int64 }
	var st storage.Stats
	sp, err := Read(ctx, db, "stats", totals, args, func(r Row) (span, error) {
		var s span
		return s, r.Scan(&st.Count, &s.first, &s.last, &st.DistinctUsers, &st.DistinctCompanies)
	})
	if err != nil {
		return storage.Stats{}, err
	}
	if st.Count > 0 && len(sp) == 1 {
		st.First, st.Last = time.UnixMilli(sp[0].first).UTC(), time.UnixMilli(sp[0].last).UTC()
	}
	if st.MetadataKeys, err = Read(ctx, db, "stats", keys("meta_keys", "meta_types"), args, scanKeyStat); err != nil {
		return storage.Stats{}, err
	}
	if st.TraitKeys, err = Read(ctx, db, "stats", keys("trait_keys", "trait_types"), args, scanKeyStat); err != nil {
		return storage.Stats{}, err
	}
	return st, nil
}

func scanKeyStat(r Row) (storage.KeyStat, error) {
	var ks storage.KeyStat
	var t uint8
	err := r.Scan(&ks.Key, &t, &ks.Count)
	ks.Type = storage.TypeName(t)
	return ks, err
}
