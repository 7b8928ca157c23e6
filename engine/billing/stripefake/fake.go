// Package stripefake is a stateful local stand-in for the few Stripe
// endpoints meterd uses, for end-to-end tests that assert totals
// (stripe-mock checks request shapes but keeps no state). It honours
// Idempotency-Key as Stripe does (the answer, a 5xx included, is saved
// and replayed for 24 h; the same key with other parameters is an
// idempotency_error), usage records with action=set or increment, meter
// events deduplicated by identifier (a repeat under another key is a 400
// "An event already exists with identifier ..."), invoices through their
// life (invoices.go), paginated lists, records every request,
// and injects faults (429, 500, a lost answer after the write, a hang)
// through Fault.
package stripefake

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// Fault is what the fake does to one request instead of answering it.
type Fault struct {
	// Status answers this status (429, 500, ...) with a Stripe error body;
	// a 5xx is saved under the request's idempotency key (see save).
	Status int
	After  bool // apply the request first, then answer Status (a lost answer)
	// Hang waits this long (or until the client gives up) before going on:
	// with Status 0 the request is then applied, as Stripe may apply a
	// request whose client timed out.
	Hang time.Duration
	// Applied, when set, is called once the request is applied, before
	// its answer is written; it may block (a crash test kills the client
	// there: Stripe has the write, the client never learns it).
	Applied func()
	// Answered, when set, is called once the answer is written and flushed.
	Answered func()
}

// Request is one recorded request.
type Request struct {
	Method, Path   string
	Form           url.Values
	IdempotencyKey string
	Status         int
}

// MeterEvent is one accepted billing meter event.
type MeterEvent struct {
	EventName, Customer, Identifier string
	Value, Timestamp                int64
}

// idem is an answer saved under an idempotency key.
type idem struct {
	hash   string
	status int
	body   []byte
	at     time.Time
}

// idemFor is how long Stripe replays a saved answer.
const idemFor = 24 * time.Hour

// meterEventMaxAge is how old a meter event's timestamp may be: Stripe
// refuses older ones. The fake states Stripe's rule itself, apart from
// the worker's look-backs that follow from it (engine/billing/cycle.go).
const meterEventMaxAge = 35 * 24 * time.Hour

// Fake is the server. Create it with New; Close it at the end.
type Fake struct {
	URL string
	// Fault, when set, is asked for every request (n counts from 1); a
	// zero Fault lets the request through.
	Fault func(n int, r *http.Request) Fault

	mu        sync.Mutex
	srv       *httptest.Server
	now       func() time.Time
	seq       int
	requests  []Request
	customers map[string]map[string]any
	subs      map[string]map[string]any
	items     map[string]string // item id -> subscription id
	prices    map[string]map[string]any
	meters    map[string]map[string]any
	usage     map[string]map[int64]int64 // item -> timestamp -> quantity
	events    map[string]MeterEvent      // identifier -> event
	invoices  map[string]map[string]any
	intents   map[string]map[string]any // invoices' payment intents
	idem      map[string]idem
	n         int
}

// New starts a fake whose clock is now (time.Now when nil).
func New(now func() time.Time) *Fake {
	if now == nil {
		now = time.Now
	}
	f := &Fake{now: now, customers: map[string]map[string]any{}, subs: map[string]map[string]any{},
		items: map[string]string{}, prices: map[string]map[string]any{}, meters: map[string]map[string]any{},
		usage: map[string]map[int64]int64{}, events: map[string]MeterEvent{}, idem: map[string]idem{},
		invoices: map[string]map[string]any{}, intents: map[string]map[string]any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	return f
}

// Close stops the server.
func (f *Fake) Close() { f.srv.CloseClientConnections(); f.srv.Close() }

func (f *Fake) id(prefix string) string {
	f.seq++
	return fmt.Sprintf("%s_fake%06d", prefix, f.seq)
}

// AddMeter creates a Stripe billing meter and a metered price backed by
// it (the new accounts' kind); it returns the price id.
func (f *Fake) AddMeter(eventName string) (priceID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mid := f.id("mtr")
	f.meters[mid] = map[string]any{"id": mid, "object": "billing.meter", "event_name": eventName, "status": "active",
		"customer_mapping":    map[string]any{"event_payload_key": "stripe_customer_id", "type": "by_id"},
		"value_settings":      map[string]any{"event_payload_key": "value"},
		"default_aggregation": map[string]any{"formula": "sum"}}
	priceID = f.id("price")
	f.prices[priceID] = map[string]any{"id": priceID, "object": "price", "active": true, "currency": "usd",
		"type": "recurring", "recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "metered", "meter": mid}}
	return priceID
}

// AddLegacyPrice creates a legacy metered price (aggregate_usage=sum) for
// usage records; it returns the price id.
func (f *Fake) AddLegacyPrice() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.id("price")
	f.prices[id] = map[string]any{"id": id, "object": "price", "active": true, "currency": "usd", "type": "recurring",
		"recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "metered", "aggregate_usage": "sum"}}
	return id
}

// Customer creates or updates a customer and returns its customer.created
// or customer.updated event (JSON), dated at the fake's clock.
func (f *Fake) Customer(id string, metadata map[string]string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	typ := "customer.updated"
	if _, ok := f.customers[id]; !ok {
		typ = "customer.created"
	}
	c := map[string]any{"id": id, "object": "customer", "metadata": metadata, "created": f.now().Unix()}
	f.customers[id] = c
	return f.event(typ, c)
}

// Subscription creates a subscription of customer to one item of price
// for the period [start, end) and returns its customer.subscription.created
// event; the item id is returned too.
func (f *Fake) Subscription(customer, price string, start, end time.Time, metadata map[string]string) (subID, itemID string, event []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	subID, itemID = f.id("sub"), f.id("si")
	s := map[string]any{"id": subID, "object": "subscription", "customer": customer, "status": "active",
		"metadata": metadata, "current_period_start": start.Unix(), "current_period_end": end.Unix(),
		"items": map[string]any{"object": "list", "data": []any{map[string]any{"id": itemID, "object": "subscription_item",
			"subscription": subID, "price": f.prices[price], "quantity": 1}}}}
	f.subs[subID] = s
	f.items[itemID] = subID
	return subID, itemID, f.event("customer.subscription.created", s)
}

// SetStatus changes a subscription's status and returns the
// customer.subscription.updated (or .deleted when canceled) event.
func (f *Fake) SetStatus(subID, status string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.subs[subID]
	s["status"] = status
	if status == "canceled" { // Stripe keeps the period; ended_at says when it stopped
		s["canceled_at"], s["ended_at"] = f.now().Unix(), f.now().Unix()
		return f.event("customer.subscription.deleted", s)
	}
	return f.event("customer.subscription.updated", s)
}

func (f *Fake) event(typ string, obj map[string]any) []byte {
	raw, _ := json.Marshal(obj)
	b, _ := json.Marshal(map[string]any{"id": f.id("evt"), "object": "event", "type": typ, "created": f.now().Unix(),
		"api_version": stripe.APIVersion, "livemode": false, "data": map[string]json.RawMessage{"object": raw}})
	return b
}

// Sign signs an event payload as Stripe does (Stripe-Signature header).
func Sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

// ItemTotal is the period total Stripe would bill for a legacy metered
// item: the sum of its usage records.
func (f *Fake) ItemTotal(item string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, q := range f.usage[item] {
		n += q
	}
	return n
}

// Usage returns an item's usage records by timestamp.
func (f *Fake) Usage(item string) map[int64]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int64]int64{}
	for ts, q := range f.usage[item] {
		out[ts] = q
	}
	return out
}

// MeterTotal is the sum of the accepted meter events of a customer for an
// event name (what the Stripe meter sums).
func (f *Fake) MeterTotal(eventName, customer string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, e := range f.events {
		if e.EventName == eventName && e.Customer == customer {
			n += e.Value
		}
	}
	return n
}

// Requests returns the recorded requests.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	if r.Method == http.MethodGet {
		form = r.URL.Query()
	}
	f.mu.Lock()
	f.n++
	n, fault := f.n, f.Fault
	f.mu.Unlock()
	var ft Fault
	if fault != nil {
		ft = fault(n, r)
	}
	if ft.Hang > 0 {
		select {
		case <-time.After(ft.Hang):
		case <-r.Context().Done():
		}
	}
	key := r.Header.Get("Idempotency-Key")
	if ft.Status != 0 && !ft.After {
		f.record(r, form, key, ft.Status)
		out := errBody("api_error", "injected fault", "")
		f.save(r, form, key, ft.Status, out, false)
		writeErr(w, ft.Status, "api_error", "injected fault", "")
		return
	}
	f.mu.Lock()
	status, out, fresh := f.handle(r.Method, r.URL.Path, form, key)
	f.mu.Unlock()
	if ft.After {
		status, out = ft.Status, errBody("api_error", "injected fault after the write", "")
		f.save(r, form, key, status, out, fresh)
	}
	f.record(r, form, key, status)
	if ft.Applied != nil {
		ft.Applied()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(out)
	if ft.Answered != nil {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		ft.Answered()
	}
}

// SetFault replaces the fault injector (nil: none), safely while
// requests are in flight.
func (f *Fake) SetFault(fn func(n int, r *http.Request) Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Fault = fn
}

func (f *Fake) record(r *http.Request, form url.Values, key string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, Request{Method: r.Method, Path: r.URL.Path, Form: form, IdempotencyKey: key, Status: status})
}

// handle answers one request under f.mu, replaying the answer saved
// under its idempotency key for 24 h; fresh says it was executed.
func (f *Fake) handle(method, path string, form url.Values, key string) (status int, out []byte, fresh bool) {
	if method == http.MethodPost && key != "" {
		h := hashForm(path, form)
		if prev, ok := f.idem[key]; ok && f.now().Sub(prev.at) < idemFor {
			if prev.hash != h {
				return 400, errBody("idempotency_error", "Keys for idempotent requests can only be used with the same parameters they were first used with.", ""), false
			}
			return prev.status, prev.body, false
		}
		status, out = f.route(method, path, form)
		f.idem[key] = idem{hash: h, status: status, body: out, at: f.now()}
		return status, out, true
	}
	status, out = f.route(method, path, form)
	return status, out, true
}

// save keeps an injected 5xx answer under the request's idempotency key,
// as Stripe keeps the answer of a request that started executing, 500s
// included, and replays it for 24 h: over the answer the write got when
// replace is set (a fault after the write), else only where the key has
// none. Rate limits and conflicts (429, 409) are not saved, nor an answer
// no client waits for any more (a hung request: the fake cannot order it
// against the client's retry).
func (f *Fake) save(r *http.Request, form url.Values, key string, status int, body []byte, replace bool) {
	if r.Method != http.MethodPost || key == "" || status < 500 || r.Context().Err() != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev, ok := f.idem[key]; ok && f.now().Sub(prev.at) < idemFor && !replace {
		return
	}
	f.idem[key] = idem{hash: hashForm(r.URL.Path, form), status: status, body: body, at: f.now()}
}

func (f *Fake) route(method, path string, form url.Values) (int, []byte) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case method == "GET" && path == "/v1/balance":
		return ok(map[string]any{"object": "balance", "available": []any{}, "pending": []any{}, "livemode": false})
	case method == "GET" && path == "/v1/customers":
		return page(f.customers, form)
	case method == "GET" && path == "/v1/subscriptions":
		return page(f.subs, form)
	case method == "GET" && path == "/v1/invoices":
		return f.listInvoices(form)
	case method == "GET" && len(parts) == 3 && parts[1] == "invoices":
		return f.getInvoice(parts[2], form)
	case method == "GET" && len(parts) == 3 && parts[1] == "prices":
		if p, found := f.prices[parts[2]]; found {
			return ok(p)
		}
		return 404, errBody("invalid_request_error", "No such price: "+parts[2], "id")
	case method == "GET" && len(parts) == 4 && parts[1] == "billing" && parts[2] == "meters":
		if m, found := f.meters[parts[3]]; found {
			return ok(m)
		}
		return 404, errBody("invalid_request_error", "No such billing meter: "+parts[3], "id")
	case method == "POST" && len(parts) == 4 && parts[1] == "subscription_items" && parts[3] == "usage_records":
		return f.usageRecord(parts[2], form)
	case method == "POST" && path == "/v1/billing/meter_events":
		return f.meterEvent(form)
	}
	return 404, errBody("invalid_request_error", "Unrecognized request URL ("+method+": "+path+")", "")
}

func (f *Fake) usageRecord(item string, form url.Values) (int, []byte) {
	subID, found := f.items[item]
	if !found {
		return 404, errBody("invalid_request_error", "No such subscription item: '"+item+"'", "subscription_item")
	}
	s := f.subs[subID]
	q, err := strconv.ParseInt(form.Get("quantity"), 10, 64)
	if err != nil || q < 0 {
		return 400, errBody("invalid_request_error", "Invalid integer: "+form.Get("quantity"), "quantity")
	}
	ts, err := strconv.ParseInt(form.Get("timestamp"), 10, 64)
	if err != nil {
		return 400, errBody("invalid_request_error", "Invalid timestamp", "timestamp")
	}
	if ts < s["current_period_start"].(int64) || ts >= s["current_period_end"].(int64) || ts > f.now().Unix() {
		return 400, errBody("invalid_request_error", "Cannot create the usage record with this timestamp because timestamps must be after the subscription's current period start time and not in the future.", "timestamp")
	}
	if f.usage[item] == nil {
		f.usage[item] = map[int64]int64{}
	}
	switch form.Get("action") {
	case "set":
		f.usage[item][ts] = q
	case "increment", "":
		f.usage[item][ts] += q
	default:
		return 400, errBody("invalid_request_error", "Invalid action", "action")
	}
	return ok(map[string]any{"id": f.id("mbur"), "object": "usage_record", "livemode": false, "quantity": q,
		"subscription_item": item, "timestamp": ts})
}

func (f *Fake) meterEvent(form url.Values) (int, []byte) {
	name, cust, ident := form.Get("event_name"), form.Get("payload[stripe_customer_id]"), form.Get("identifier")
	v, err := strconv.ParseInt(form.Get("payload[value]"), 10, 64)
	if name == "" || cust == "" || err != nil || v <= 0 {
		return 400, errBody("invalid_request_error", "event_name, payload[stripe_customer_id] and a positive whole payload[value] are required", "payload")
	}
	ts, err := strconv.ParseInt(form.Get("timestamp"), 10, 64)
	if err != nil || ts < f.now().Add(-meterEventMaxAge).Unix() || ts > f.now().Add(5*time.Minute).Unix() {
		return 400, errBody("invalid_request_error", "timestamp must be within the past 35 days and at most 5 minutes in the future", "timestamp")
	}
	if ident == "" {
		ident = f.id("ident")
	}
	if _, dup := f.events[ident]; dup { // under the same key the saved answer is replayed before this
		return 400, errBody("invalid_request_error", "An event already exists with identifier "+ident+".", "identifier")
	}
	f.events[ident] = MeterEvent{EventName: name, Customer: cust, Identifier: ident, Value: v, Timestamp: ts}
	return ok(map[string]any{"object": "billing.meter_event", "event_name": name, "identifier": ident,
		"payload":   map[string]string{"stripe_customer_id": cust, "value": form.Get("payload[value]")},
		"timestamp": ts, "created": f.now().Unix(), "livemode": false})
}

// page is one page of a list, by id, as Stripe paginates: limit (1 to
// 100, default 10) objects after starting_after, and whether more follow.
func page(objs map[string]map[string]any, form url.Values) (int, []byte) {
	limit := 10
	if l := form.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			return 400, errBody("invalid_request_error", "Invalid limit: must be between 1 and 100", "limit")
		}
		limit = n
	}
	ids := make([]string, 0, len(objs))
	for id := range objs {
		if after := form.Get("starting_after"); after == "" || id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	more := len(ids) > limit
	ids = ids[:min(limit, len(ids))]
	data := make([]any, len(ids))
	for i, id := range ids {
		data[i] = objs[id]
	}
	return ok(map[string]any{"object": "list", "data": data, "has_more": more, "url": ""})
}

func ok(v any) (int, []byte) {
	b, _ := json.Marshal(v)
	return 200, b
}

func errBody(typ, msg, param string) []byte {
	return errBodyCode(typ, "", msg, param)
}

// errBodyCode is an error with Stripe's machine-readable code.
func errBodyCode(typ, code, msg, param string) []byte {
	e := map[string]string{"type": typ, "message": msg, "param": param}
	if code != "" {
		e["code"] = code
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return b
}

func writeErr(w http.ResponseWriter, status int, typ, msg, param string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(errBody(typ, msg, param))
}

func hashForm(path string, form url.Values) string {
	h := sha256.Sum256([]byte(path + "?" + form.Encode()))
	return hex.EncodeToString(h[:])
}
