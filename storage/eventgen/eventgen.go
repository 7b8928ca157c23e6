// Package eventgen generates realistic, deterministic API-call events for
// tests and benchmarks: routes with query strings, a skewed mix of statuses
// (and calls without a response), users inside companies, headers, sizes,
// metadata of mixed JSON types with keys that are sometimes missing, and
// a few calls blocked by governance rules.
package eventgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/meterd/meterd/storage"
)

// Shape of the generated traffic.
const (
	Companies = 40
	Users     = 400 // user i belongs to company i % Companies
)

var routes = []struct{ verb, path string }{
	{"GET", "/v1/search"}, {"GET", "/v1/search"}, {"GET", "/v1/search"},
	{"GET", "/v1/users/%d"}, {"POST", "/v1/users"}, {"GET", "/v2/orders"},
	{"POST", "/v2/orders"}, {"DELETE", "/v2/orders/%d"}, {"POST", "/v1/completions"},
	{"POST", "/v1/completions"}, {"GET", "/health"},
}

var statuses = []int32{200, 200, 200, 200, 200, 200, 200, 200, 201, 400, 401, 404, 429, 500}

var models = []string{"small", "large", "tiny-ü", "émbed-😀"}
var regions = []string{"eu-west", "us-east", "ap-south"}

// Generate returns n events with times spread evenly over [from, to), in
// time order. The same seed gives the same events.
func Generate(seed int64, n int, from, to time.Time) []storage.Event {
	r := rand.New(rand.NewPCG(uint64(seed), 0x6d65746572))
	out := make([]storage.Event, n)
	span := to.Sub(from)
	received := time.Now().UTC().Truncate(time.Millisecond)
	for i := range out {
		at := from.Add(time.Duration(float64(span) * float64(i) / float64(max(n, 1)))).UTC().Truncate(time.Millisecond)
		out[i] = event(r, seed, i, at, received)
	}
	return out
}

func event(r *rand.Rand, seed int64, i int, at, received time.Time) storage.Event {
	rt := routes[r.IntN(len(routes))]
	path := rt.path
	if len(path) > 3 && path[len(path)-2:] == "%d" {
		path = fmt.Sprintf(path, r.IntN(10000))
	}
	uri := "https://api.example.com" + path
	if rt.verb == "GET" && r.IntN(2) == 0 {
		uri += "?q=" + strconv.Itoa(r.IntN(100)) + "&page=" + strconv.Itoa(r.IntN(5))
	}
	user := r.IntN(Users)
	id := fmt.Sprintf("%08x-%04x-4000-8000-%012x", uint32(seed), uint16(i>>32), uint64(i)&0xffffffffffff)
	e := storage.Event{
		ID: id, ExternalID: id, Format: storage.FormatMoesif,
		Time: at, ReceivedAt: received,
		Verb: rt.verb, URI: uri, Route: path, Host: "api.example.com",
		IP:         fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)),
		APIVersion: []string{"", "2024-01-01", "2025-06-01"}[r.IntN(3)],
		RequestHeaders: map[string]string{
			"user-agent": "client/" + strconv.Itoa(1+r.IntN(3)), "accept": "application/json",
		},
		RequestSize: int64(r.IntN(2000)),
		UserID:      "user-" + strconv.Itoa(user), CompanyID: "company-" + strconv.Itoa(user%Companies),
		SessionToken: "sess-" + strconv.Itoa(r.IntN(1000)),
		Direction:    "Incoming", Weight: 1,
		Metadata:   metadata(r),
		UserTraits: "{}", CompanyTraits: companyTraits(user % Companies),
	}
	if r.IntN(20) == 0 {
		e.Weight = 10
	}
	if r.IntN(50) == 0 {
		e.UserID = "" // anonymous call
	}
	if r.IntN(100) != 0 { // 1% timed out: no response
		e.HasResponse = true
		e.Status = statuses[r.IntN(len(statuses))]
		e.DurationMs = int64(1 + r.IntN(800))
		e.ResponseTime = at.Add(time.Duration(e.DurationMs) * time.Millisecond)
		e.ResponseSize = int64(r.IntN(200_000))
		e.ResponseHeaders = map[string]string{
			"content-type": "application/json", "content-length": strconv.FormatInt(e.ResponseSize, 10),
		}
	}
	if r.IntN(40) == 0 { // 2.5% blocked by a governance rule: the agent answered at once
		rule := blockRules[r.IntN(len(blockRules))]
		e.BlockedBy, e.HasResponse, e.Status, e.DurationMs = rule.id, true, rule.status, 0
		e.ResponseTime, e.ResponseSize = at, 60
		e.ResponseHeaders = map[string]string{"content-type": "application/json", "content-length": "60"}
	}
	return e
}

// blockRules are the governance rules that block generated calls (Moesif
// rule ids are 24 hex digits).
var blockRules = []struct {
	id     string
	status int32
}{{"6650a1b2c3d4e5f601234567", 402}, {"6650a1b2c3d4e5f601234568", 429}}

// metadata builds a JSON object by hand (no encoding/json: the benchmarks
// generate millions of events).
func metadata(r *rand.Rand) string {
	b := make([]byte, 0, 160)
	b = append(b, '{')
	field := func(k string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(append(b, ""...), k)
		b = append(b, ':')
	}
	if r.IntN(10) != 0 { // tokens: usually an int, sometimes a float or a string
		field("tokens")
		switch r.IntN(20) {
		case 0:
			b = strconv.AppendQuote(b, strconv.Itoa(r.IntN(5000)))
		case 1:
			b = strconv.AppendFloat(b, float64(r.IntN(500000))/100, 'f', -1, 64)
		default:
			b = strconv.AppendInt(b, int64(r.IntN(5000)), 10)
		}
	}
	if r.IntN(3) != 0 {
		field("model")
		b = strconv.AppendQuote(b, models[r.IntN(len(models))])
	}
	field("region")
	b = strconv.AppendQuote(b, regions[r.IntN(len(regions))])
	if r.IntN(4) == 0 {
		field("cached")
		b = strconv.AppendBool(b, r.IntN(2) == 0)
	}
	if r.IntN(10) == 0 {
		field("trace")
		b = append(b, "null"...)
	}
	if r.IntN(5) == 0 {
		field("plan")
		b = append(b, `{"tier":`...)
		b = strconv.AppendQuote(b, []string{"free", "pro", "enterprise"}[r.IntN(3)])
		b = append(b, `,"seats":`...)
		b = strconv.AppendInt(b, int64(1+r.IntN(50)), 10)
		b = append(b, '}')
	}
	if r.IntN(8) == 0 {
		field("tags")
		b = append(b, `["a","b"]`...)
	}
	return string(append(b, '}'))
}

func companyTraits(c int) string {
	plans := []string{"free", "pro", "enterprise"}
	return `{"plan":"` + plans[c%3] + `","seats":` + strconv.Itoa(5+c) + `}`
}
