package clickhouse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

var insertQuery = "INSERT INTO events (" + strings.Join(insertColumns, ", ") + ")"

// Insert implements storage.Store. Duplicates (within the batch, or already
// stored, whatever their time) are dropped first, then the new events go
// to the server as ONE INSERT block, which ClickHouse writes atomically per
// partition (month), and the identities are settled against copies another
// process may have inserted meanwhile (identity.go).
func (s *Store) Insert(ctx context.Context, events []storage.Event) (storage.InsertResult, error) {
	var res storage.InsertResult
	if len(events) == 0 {
		return res, nil
	}
	horizon := s.opts.Horizon(events)
	stored, err := s.findStored(ctx, storage.BatchIDs(events), horizon)
	if err != nil {
		return res, err
	}
	if _, err := s.markLosers(ctx, losers(stored)); err != nil { // a race a dead writer left
		return res, err
	}
	storedIDs := make([]string, len(stored))
	for i, c := range stored {
		storedIDs[i] = c.id
	}
	fresh, isNew := storage.NewEvents(events, storedIDs)
	if s.afterLookup != nil {
		s.afterLookup()
	}
	if len(fresh) > 0 {
		copies := newCopyTags(len(fresh))
		if err := s.insertEvents(ctx, fresh, copies); err != nil {
			return res, err
		}
		if s.afterWrite != nil {
			s.afterWrite()
		}
		fps := make([]uint64, len(fresh)) // fresh ids are distinct
		for i, e := range fresh {
			fps[i] = storage.Fingerprint(e.ID)
		}
		lost, err := s.settle(ctx, fps, horizon)
		if err != nil {
			return res, err
		}
		dropLost(events, isNew, copies, lost)
	}
	res.New = isNew
	for _, n := range isNew {
		if n {
			res.Inserted++
		}
	}
	res.Duplicates = len(events) - res.Inserted
	return res, nil
}

// insertEvents writes events, tagged with copies, as one block.
func (s *Store) insertEvents(ctx context.Context, events []*storage.Event, copies []uint64) error {
	cols, err := eventColumns(events)
	if err != nil {
		return err
	}
	cols = append(cols, copies)
	if err := ctx.Err(); err != nil { // a canceled caller must not get a late write
		return err
	}
	batch, err := s.conn.PrepareBatch(ctx, insertQuery)
	if err != nil {
		return fmt.Errorf("insert events: %w", unavailable(err))
	}
	for i, c := range cols {
		if err := batch.Column(i).Append(c); err != nil {
			batch.Abort()
			return fmt.Errorf("insert events: column %s: %w", insertColumns[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert events: %w", unavailable(err))
	}
	return nil
}

// newCopyTags returns n copy tags: consecutive from a random start, never 0.
func newCopyTags(n int) []uint64 {
	tags := make([]uint64, n)
	base := rand.Uint64()
	for i := range tags {
		if base == 0 {
			base++
		}
		tags[i] = base
		base++
	}
	return tags
}

// dropLost marks as not new the events of this insert whose copy lost a
// race to another process's copy of their identity.
func dropLost(events []storage.Event, isNew []bool, copies []uint64, lost []storedCopy) {
	if len(lost) == 0 {
		return
	}
	ours := make(map[uint64]struct{}, len(copies))
	for _, c := range copies {
		ours[c] = struct{}{}
	}
	lostIDs := map[string]struct{}{}
	for _, l := range lost {
		if _, mine := ours[l.copy]; mine {
			lostIDs[l.id] = struct{}{}
		}
	}
	for i := range events {
		if _, gone := lostIDs[events[i].ID]; gone && isNew[i] {
			isNew[i] = false
		}
	}
}

// idTable is ids as the external table batch_ids (id String).
func idTable(ids []string) (*ext.Table, error) { return oneColumn("batch_ids", "id", "String", ids) }

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
		blockedBy                            = str()
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
		respTime[i], status[i] = tables.MsOrZero(e.ResponseTime), e.Status
		rsk[i], rsv[i] = h.RespKeys, h.RespValues
		respSize[i], respBody[i], duration[i] = e.ResponseSize, e.ResponseBody, e.DurationMs
		user[i], company[i], session[i], sub[i], dir[i] = e.UserID, e.CompanyID, e.SessionToken, e.SubscriptionID, e.Direction
		weight[i] = e.Weight
		metadata[i], userTraits[i], companyTraits[i] = tables.OrEmptyObject(e.Metadata), tables.OrEmptyObject(e.UserTraits), tables.OrEmptyObject(e.CompanyTraits)
		metaKeys[i], metaTypes[i], metaStrs[i], metaNums[i] = orNone(flat.Meta.Keys), orNone(flat.Meta.Types), orNone(flat.Meta.Strs), orNone(flat.Meta.Nums)
		traitKeys[i], traitTypes[i], trStr[i], traitNums[i] = orNone(flat.Traits.Keys), orNone(flat.Traits.Types), orNone(flat.Traits.Strs), orNone(flat.Traits.Nums)
		blockedBy[i] = e.BlockedBy
	}
	return []any{
		id, extID, format, day, timeMs, receivedMs, typ, source, subject,
		verb, uri, route, host, ip, apiVer, rqk, rqv, reqSize, reqBody,
		hasResp, respTime, status, rsk, rsv, respSize, respBody, duration,
		user, company, session, sub, dir, weight, metadata,
		metaKeys, metaTypes, metaStrs, metaNums, userTraits, companyTraits,
		traitKeys, traitTypes, trStr, traitNums, blockedBy,
	}, nil
}

// orNone makes a nil slice an empty one (the driver wants a value per row).
func orNone[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
