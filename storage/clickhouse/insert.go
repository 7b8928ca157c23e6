package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/meterd/meterd/storage"
)

var insertQuery = "INSERT INTO events (" + strings.Join(insertColumns, ", ") + ")"

// Insert implements storage.Store. Duplicates (within the batch, or already
// stored) are dropped first, then the new events go to the server as ONE
// INSERT block, which ClickHouse writes atomically per partition (month).
// The check and the insert are not one transaction (ClickHouse has none):
// one writer per process (server/ingest) keeps them from racing, and the
// ReplacingMergeTree is the backstop between processes.
func (s *Store) Insert(ctx context.Context, events []storage.Event) (storage.InsertResult, error) {
	var res storage.InsertResult
	if len(events) == 0 {
		return res, nil
	}
	fresh, isNew, err := s.newEvents(ctx, events)
	if err != nil {
		return res, err
	}
	if len(fresh) > 0 {
		cols, err := eventColumns(fresh)
		if err != nil {
			return res, err
		}
		if err := ctx.Err(); err != nil { // a canceled caller must not get a late write
			return res, err
		}
		batch, err := s.conn.PrepareBatch(ctx, insertQuery)
		if err != nil {
			return res, fmt.Errorf("insert events: %w", unavailable(err))
		}
		for i, c := range cols {
			if err := batch.Column(i).Append(c); err != nil {
				batch.Abort()
				return res, fmt.Errorf("insert events: column %s: %w", insertColumns[i], err)
			}
		}
		if err := batch.Send(); err != nil {
			return res, fmt.Errorf("insert events: %w", unavailable(err))
		}
	}
	res.Inserted = len(fresh)
	res.Duplicates = len(events) - len(fresh)
	res.New = isNew
	return res, nil
}

// newEvents drops events repeated within the batch or already stored.
// Stored ids are looked up within the batch's time range (a retry carries
// the same time, and the primary key starts with time_ms); the ids travel
// as an external table, bound data rather than SQL text.
func (s *Store) newEvents(ctx context.Context, events []storage.Event) ([]*storage.Event, []bool, error) {
	seen := make(map[string]struct{}, len(events))
	lo, hi := events[0].Time.UnixMilli(), events[0].Time.UnixMilli()
	ids := make([]string, 0, len(events))
	for i := range events {
		ms := events[i].Time.UnixMilli()
		lo, hi = min(lo, ms), max(hi, ms)
		if _, dup := seen[events[i].ID]; !dup {
			seen[events[i].ID] = struct{}{}
			ids = append(ids, events[i].ID)
		}
	}
	stored, err := s.storedIDs(ctx, lo, hi, ids)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*storage.Event, 0, len(events))
	isNew := make([]bool, len(events))
	for i := range events {
		id := events[i].ID
		if _, old := stored[id]; old {
			continue
		}
		stored[id] = struct{}{} // later repeats in the batch are duplicates
		out = append(out, &events[i])
		isNew[i] = true
	}
	return out, isNew, nil
}

// storedIDs returns which of ids are stored with lo <= time_ms <= hi.
func (s *Store) storedIDs(ctx context.Context, lo, hi int64, ids []string) (map[string]struct{}, error) {
	tbl, err := idTable(ids)
	if err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ch.Context(ctx, ch.WithExternalTable(tbl)),
		`SELECT DISTINCT id FROM events WHERE time_ms BETWEEN ? AND ? AND id IN (SELECT id FROM batch_ids)`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("dedup lookup: %w", unavailable(err))
	}
	defer rows.Close()
	stored := map[string]struct{}{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		stored[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dedup lookup: %w", unavailable(err))
	}
	return stored, nil
}

// idTable is ids as the external table batch_ids (id String).
func idTable(ids []string) (*ext.Table, error) {
	tbl, err := ext.NewTable("batch_ids", ext.Column("id", "String"))
	if err != nil {
		return nil, err
	}
	if _, err := tbl.Block().Columns[0].Append(ids); err != nil {
		return nil, err
	}
	return tbl, nil
}

// eventColumns turns events into one slice per insertColumns entry:
// columnar appends are far cheaper than row appends in clickhouse-go.
func eventColumns(evs []*storage.Event) ([]any, error) {
	n := len(evs)
	str := func() []string { return make([]string, n) }
	i64 := func() []int64 { return make([]int64, n) }
	arr := func() [][]string { return make([][]string, n) }
	var (
		id, extID, format                    = str(), str(), str()
		day                                  = make([]time.Time, n)
		timeMs, receivedMs                   = i64(), i64()
		typ, source, subject                 = str(), str(), str()
		verb, uri, route, host, ip, apiVer   = str(), str(), str(), str(), str(), str()
		rqk, rqv                             = arr(), arr()
		reqSize                              = i64()
		reqBody                              = str()
		hasResp                              = make([]uint8, n)
		respTime                             = i64()
		status                               = make([]int32, n)
		rsk, rsv                             = arr(), arr()
		respSize                             = i64()
		respBody                             = str()
		duration                             = i64()
		user, company, session, sub, dir     = str(), str(), str(), str(), str()
		weight                               = i64()
		metadata, userTraits, companyTraits  = str(), str(), str()
		metaKeys, metaStrs, traitKeys, trStr = arr(), arr(), arr(), arr()
		metaTypes, traitTypes                = make([][]uint8, n), make([][]uint8, n)
		metaNums, traitNums                  = make([][]float64, n), make([][]float64, n)
	)
	for i, e := range evs {
		flat, err := e.Flatten()
		if err != nil {
			return nil, err
		}
		t := e.Time.UTC()
		id[i], extID[i], format[i] = e.ID, e.ExternalID, e.Format
		day[i] = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		timeMs[i], receivedMs[i] = t.UnixMilli(), e.ReceivedAt.UnixMilli()
		typ[i], source[i], subject[i] = e.Type, e.Source, e.Subject
		verb[i], uri[i], route[i], host[i], ip[i], apiVer[i] = e.Verb, e.URI, e.Route, e.Host, e.IP, e.APIVersion
		h := e.HeaderCols()
		rqk[i], rqv[i] = h.ReqKeys, h.ReqValues
		reqSize[i], reqBody[i] = e.RequestSize, e.RequestBody
		if e.HasResponse {
			hasResp[i] = 1
		}
		respTime[i], status[i] = msOrZero(e.ResponseTime), e.Status
		rsk[i], rsv[i] = h.RespKeys, h.RespValues
		respSize[i], respBody[i], duration[i] = e.ResponseSize, e.ResponseBody, e.DurationMs
		user[i], company[i], session[i], sub[i], dir[i] = e.UserID, e.CompanyID, e.SessionToken, e.SubscriptionID, e.Direction
		weight[i] = e.Weight
		metadata[i], userTraits[i], companyTraits[i] = orEmptyObject(e.Metadata), orEmptyObject(e.UserTraits), orEmptyObject(e.CompanyTraits)
		metaKeys[i], metaTypes[i], metaStrs[i], metaNums[i] = orNone(flat.Meta.Keys), orNone(flat.Meta.Types), orNone(flat.Meta.Strs), orNone(flat.Meta.Nums)
		traitKeys[i], traitTypes[i], trStr[i], traitNums[i] = orNone(flat.Traits.Keys), orNone(flat.Traits.Types), orNone(flat.Traits.Strs), orNone(flat.Traits.Nums)
	}
	return []any{
		id, extID, format, day, timeMs, receivedMs, typ, source, subject,
		verb, uri, route, host, ip, apiVer, rqk, rqv, reqSize, reqBody,
		hasResp, respTime, status, rsk, rsv, respSize, respBody, duration,
		user, company, session, sub, dir, weight, metadata,
		metaKeys, metaTypes, metaStrs, metaNums, userTraits, companyTraits,
		traitKeys, traitTypes, trStr, traitNums,
	}, nil
}

// orNone makes a nil slice an empty one (the driver wants a value per row).
func orNone[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
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
