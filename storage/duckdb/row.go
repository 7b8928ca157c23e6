package duckdb

import (
	"github.com/marcboeker/go-duckdb/mapping"

	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/tables"
)

// eventColumns gathers events for chunkAppender, one field per column of
// the events table, in the table's order (the appender checks the types).
type eventColumns struct {
	id, externalID, format                          strCol
	day                                             fixedCol[int32]
	timeMs, receivedMs                              fixedCol[int64]
	typ, source, subject                            strCol
	verb, uri, route, host, ip, apiVersion          strCol
	reqHeaderKeys, reqHeaderValues                  *listCol[string, *strCol]
	reqSize                                         fixedCol[int64]
	reqBody                                         strCol
	hasResponse                                     fixedCol[bool]
	respTimeMs                                      fixedCol[int64]
	status                                          fixedCol[int32]
	respHeaderKeys, respHeaderValues                *listCol[string, *strCol]
	respSize                                        fixedCol[int64]
	respBody                                        strCol
	durationMs                                      fixedCol[int64]
	userID, companyID, sessionToken, subscriptionID strCol
	direction                                       strCol
	weight                                          fixedCol[int64]
	metadata                                        strCol
	metaKeys                                        *listCol[string, *strCol]
	metaTypes                                       *listCol[uint8, *fixedCol[uint8]]
	metaStrs                                        *listCol[string, *strCol]
	metaNums                                        *listCol[float64, *fixedCol[float64]]
	userTraits, companyTraits                       strCol
	traitKeys                                       *listCol[string, *strCol]
	traitTypes                                      *listCol[uint8, *fixedCol[uint8]]
	traitStrs                                       *listCol[string, *strCol]
	traitNums                                       *listCol[float64, *fixedCol[float64]]
	blockedBy                                       strCol // migration 6 appended it
}

func newEventColumns() *eventColumns {
	i64 := func() fixedCol[int64] { return fixedCol[int64]{typ: mapping.TypeBigInt} }
	return &eventColumns{
		day: fixedCol[int32]{typ: mapping.TypeDate}, timeMs: i64(), receivedMs: i64(),
		reqHeaderKeys: strList(), reqHeaderValues: strList(), reqSize: i64(),
		hasResponse: fixedCol[bool]{typ: mapping.TypeBoolean}, respTimeMs: i64(),
		status:         fixedCol[int32]{typ: mapping.TypeInteger},
		respHeaderKeys: strList(), respHeaderValues: strList(), respSize: i64(), durationMs: i64(),
		weight:   i64(),
		metaKeys: strList(), metaTypes: fixedList[uint8](mapping.TypeUTinyInt),
		metaStrs: strList(), metaNums: fixedList[float64](mapping.TypeDouble),
		traitKeys: strList(), traitTypes: fixedList[uint8](mapping.TypeUTinyInt),
		traitStrs: strList(), traitNums: fixedList[float64](mapping.TypeDouble),
	}
}

// all lists the columns in table order.
func (c *eventColumns) all() []column {
	return []column{
		&c.id, &c.externalID, &c.format, &c.day, &c.timeMs, &c.receivedMs, &c.typ, &c.source, &c.subject,
		&c.verb, &c.uri, &c.route, &c.host, &c.ip, &c.apiVersion, c.reqHeaderKeys, c.reqHeaderValues,
		&c.reqSize, &c.reqBody, &c.hasResponse, &c.respTimeMs, &c.status, c.respHeaderKeys, c.respHeaderValues,
		&c.respSize, &c.respBody, &c.durationMs, &c.userID, &c.companyID, &c.sessionToken,
		&c.subscriptionID, &c.direction, &c.weight, &c.metadata,
		c.metaKeys, c.metaTypes, c.metaStrs, c.metaNums,
		&c.userTraits, &c.companyTraits, c.traitKeys, c.traitTypes, c.traitStrs, c.traitNums,
		&c.blockedBy,
	}
}

const msPerDay = 24 * 60 * 60 * 1000

// add gathers one event; e must have been flattened (Event.Flatten).
func (c *eventColumns) add(e *storage.Event, flat *storage.Flat) {
	ms := e.Time.UnixMilli()
	day := ms / msPerDay
	if ms < 0 && ms%msPerDay != 0 {
		day-- // floor, for times before 1970
	}
	c.id.add(e.ID)
	c.externalID.add(e.ExternalID)
	c.format.add(e.Format)
	c.day.add(int32(day))
	c.timeMs.add(ms)
	c.receivedMs.add(e.ReceivedAt.UnixMilli())
	c.typ.add(e.Type)
	c.source.add(e.Source)
	c.subject.add(e.Subject)
	c.verb.add(e.Verb)
	c.uri.add(e.URI)
	c.route.add(e.Route)
	c.host.add(e.Host)
	c.ip.add(e.IP)
	c.apiVersion.add(e.APIVersion)
	h := e.HeaderCols()
	c.reqHeaderKeys.add(h.ReqKeys)
	c.reqHeaderValues.add(h.ReqValues)
	c.reqSize.add(e.RequestSize)
	c.reqBody.add(e.RequestBody)
	c.hasResponse.add(e.HasResponse)
	c.respTimeMs.add(tables.MsOrZero(e.ResponseTime))
	c.status.add(e.Status)
	c.respHeaderKeys.add(h.RespKeys)
	c.respHeaderValues.add(h.RespValues)
	c.respSize.add(e.ResponseSize)
	c.respBody.add(e.ResponseBody)
	c.durationMs.add(e.DurationMs)
	c.userID.add(e.UserID)
	c.companyID.add(e.CompanyID)
	c.sessionToken.add(e.SessionToken)
	c.subscriptionID.add(e.SubscriptionID)
	c.direction.add(e.Direction)
	c.weight.add(e.Weight)
	c.metadata.add(tables.OrEmptyObject(e.Metadata))
	c.metaKeys.add(flat.Meta.Keys)
	c.metaTypes.add(flat.Meta.Types)
	c.metaStrs.add(flat.Meta.Strs)
	c.metaNums.add(flat.Meta.Nums)
	c.userTraits.add(tables.OrEmptyObject(e.UserTraits))
	c.companyTraits.add(tables.OrEmptyObject(e.CompanyTraits))
	c.traitKeys.add(flat.Traits.Keys)
	c.traitTypes.add(flat.Traits.Types)
	c.traitStrs.add(flat.Traits.Strs)
	c.traitNums.add(flat.Traits.Nums)
	c.blockedBy.add(e.BlockedBy)
}
