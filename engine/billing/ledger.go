package billing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meterd/meterd/storage"
)

// Report statuses. A report's entries are appended in order: pending
// before the request, then one outcome.
const (
	StatusPending  = "pending"  // about to be sent (an intent: replayed after a crash)
	StatusSent     = "sent"     // Stripe accepted it
	StatusFailed   = "failed"   // no answer or a retryable one after every retry: sent again next cycle
	StatusRejected = "rejected" // Stripe refused it (4xx): not retried, needs a person
	// StatusLate marks usage measured after its period can no longer be
	// reported (invoiced or closed): listed, never sent, never lost.
	StatusLate = "late"
	// StatusNotBilled marks usage of a subscription that ended (canceled)
	// before it was reported: Stripe no longer bills it, so it is listed,
	// never sent (docs/billing.md, "Which subscriptions are billed").
	StatusNotBilled = "not_billed"
	// StatusNeedsAdjustment marks a decrease meter events cannot express
	// (Stripe only cancels an event within 24 h): a person decides.
	StatusNeedsAdjustment = "needs_adjustment"
	// StatusNeedsReview marks an intent whose outcome is unknown and that
	// is too old to resend safely (Stripe keeps idempotency keys 24 h).
	StatusNeedsReview = "needs_review"
)

// Statuses lists every report status, for validating filters.
var Statuses = []string{StatusPending, StatusSent, StatusFailed, StatusRejected, StatusLate, StatusNotBilled, StatusNeedsAdjustment, StatusNeedsReview}

// ValidStatus reports whether s is a report status.
func ValidStatus(s string) bool { return slices.Contains(Statuses, s) }

// Report is one ledger entry: what was (or was to be) reported, and what
// Stripe answered.
type Report struct {
	Key              string    `json:"idempotency_key"`
	Status           string    `json:"status"`
	Mode             string    `json:"mode"`
	MeterID          string    `json:"meter_id"`
	MeterVersion     int       `json:"meter_version"`
	PriceID          string    `json:"price_id"`
	Customer         string    `json:"customer"` // the meterd customer (company_id or user_id)
	StripeCustomer   string    `json:"stripe_customer"`
	Subscription     string    `json:"subscription"`
	SubscriptionItem string    `json:"subscription_item"`
	PeriodStart      time.Time `json:"period_start"`
	PeriodEnd        time.Time `json:"period_end"`
	Bucket           time.Time `json:"bucket"` // the reported timestamp
	// Quantity is what the request carries: the bucket's quantity (usage
	// records, set) or the increase (meter events).
	Quantity int64 `json:"quantity"`
	// Value is the meter's unrounded measure behind the report; Total the
	// rounded period total it keeps the reports equal to.
	Value     float64 `json:"value"`
	Total     int64   `json:"total"`
	EventName string  `json:"event_name,omitempty"`
	// Payload keys of the Stripe meter (customer, value), for a replay.
	CustomerKey string `json:"customer_key,omitempty"`
	ValueKey    string `json:"value_key,omitempty"`
	Identifier  string `json:"identifier,omitempty"`
	// Generation counts the request's renewed keys: after a definite 5xx
	// (which Stripe replays for the key) it goes again under the next key,
	// the first one with "-GENERATION" appended (see renewed).
	Generation int       `json:"key_generation,omitempty"`
	AttemptAt  time.Time `json:"attempt_at"`
	Attempts   int       `json:"attempts,omitempty"`
	Answer     string    `json:"answer,omitempty"` // Stripe's object id or request id
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// unit names what a report is about: one bucket of one item for one meter.
func (r *Report) unit() string {
	return r.Mode + "|" + r.MeterID + "|" + r.SubscriptionItem + "|" + fmt.Sprint(r.Bucket.Unix())
}

// keyOf is the idempotency key of a request's generation g: its first key,
// then the first key with "-g" appended. Deterministic, so that a restart
// and a second worker derive the same keys.
func keyOf(first string, g int) string {
	if g == 0 {
		return first
	}
	return first + "-" + strconv.Itoa(g)
}

// firstKey is the key of r's request's first generation.
func (r Report) firstKey() string {
	return strings.TrimSuffix(r.Key, keyOf("", r.Generation))
}

// renewed is r's request under its next key, without r's outcome. The
// request is otherwise the same: a usage record sets the same quantity
// at the same timestamp, a meter event keeps its identifier (Stripe
// counts an identifier once), so a resend never counts twice.
func (r Report) renewed() Report {
	r.Key, r.Generation = keyOf(r.firstKey(), r.Generation+1), r.Generation+1
	r.Attempts, r.Answer, r.HTTPStatus, r.Error, r.Note = 0, "", 0, "", ""
	return r
}

// spent reports whether r's key holds a definite 5xx: Stripe replays it
// for any repeat of the key, so the request must go under a new one.
func spent(r Report) bool { return r.Status == StatusFailed && r.HTTPStatus >= 500 }

// appendReport writes one ledger entry. Status entries of flags (late,
// needs_adjustment) use a deterministic journal key, so each is written
// once; attempts get unique keys.
func appendReport(ctx context.Context, j storage.Journal, r Report, once bool) error {
	// The journal orders entries by (time in ms, key): the key starts with
	// a strictly increasing clock so that entries written within one
	// millisecond keep the order they were written in.
	key := fmt.Sprintf("%019d/%s/%s", seqNanos(), r.Key, r.Status)
	if once {
		key = r.Key + "/" + r.Status
	}
	body, _ := json.Marshal(r)
	err := j.AppendJournal(ctx, storage.JournalEntry{Stream: storage.StreamBillingLedger, Key: key, At: r.AttemptAt, Body: string(body)})
	if once && err == storage.ErrConflict {
		return nil
	}
	return err
}

var (
	seqMu   sync.Mutex
	seqLast int64
)

// seqNanos is the wall clock in nanoseconds, strictly increasing within
// the process.
func seqNanos() int64 {
	seqMu.Lock()
	defer seqMu.Unlock()
	seqLast = max(seqLast+1, time.Now().UnixNano())
	return seqLast
}

// LoadReports returns ledger entries since from, oldest first.
func LoadReports(ctx context.Context, j storage.Journal, from time.Time) ([]Report, error) {
	es, err := j.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamBillingLedger, From: from})
	if err != nil {
		return nil, err
	}
	out := make([]Report, 0, len(es))
	for _, e := range es {
		var r Report
		if err := json.Unmarshal([]byte(e.Body), &r); err != nil {
			return nil, fmt.Errorf("billing ledger %s: %w", e.Key, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ReportState is one report at its latest ledger entry, with every entry
// it has in History, oldest first. A report is one request: its first
// idempotency key and the keys it went under after definite 5xx answers
// (renewed), so "pending, then failed, then pending under key-1, then
// sent" is one report, sent, with four entries. A listing (late,
// not_billed, ...) of a request's key belongs to that request's report.
type ReportState struct {
	Report
	History []Entry `json:"history"`
}

// Entry is one ledger entry of a report, as its history lists it: which
// key, what happened, when, and Stripe's answer.
type Entry struct {
	Key        string    `json:"idempotency_key"`
	Generation int       `json:"key_generation,omitempty"`
	Status     string    `json:"status"`
	At         time.Time `json:"attempt_at"`
	Attempts   int       `json:"attempts,omitempty"`
	Answer     string    `json:"answer,omitempty"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// Latest folds ledger entries (oldest first, as LoadReports returns them)
// into one state per report, newest first by its latest entry.
func Latest(rs []Report) []ReportState {
	index := map[string]int{}
	var out []ReportState
	for _, r := range rs {
		i, ok := index[r.firstKey()]
		if !ok {
			i = len(out)
			index[r.firstKey()] = i
			out = append(out, ReportState{})
		}
		out[i].Report = r
		out[i].History = append(out[i].History, Entry{Key: r.Key, Generation: r.Generation, Status: r.Status, At: r.AttemptAt,
			Attempts: r.Attempts, Answer: r.Answer, HTTPStatus: r.HTTPStatus, Error: r.Error, Note: r.Note})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].AttemptAt.After(out[j].AttemptAt) })
	return out
}

// ledger is the folded ledger: per idempotency key its last entry, and
// per unit what Stripe has accepted.
type ledger struct {
	last     map[string]Report   // by idempotency key: the latest entry
	order    []string            // keys in order of first appearance
	accepted map[string][]Report // by unit: sent reports, oldest first
	// attempts is, by unit, the latest entry of each request made, in
	// order: a failed request may still have been applied by Stripe.
	attempts map[string][]Report
	flagged  map[string]bool // idempotency key + status of flags
	sent     map[string]bool // keys accepted: Stripe applies a key once
	// renewedAs is, by idempotency key, the key its request went under
	// next after a definite 5xx.
	renewedAs map[string]string
}

// note records an entry of a request (pending or an outcome).
func (l *ledger) note(r Report) {
	if _, seen := l.last[r.Key]; !seen {
		l.order = append(l.order, r.Key)
	}
	l.last[r.Key] = r
	u := r.unit()
	as := l.attempts[u]
	if n := len(as); n > 0 && as[n-1].Key == r.Key {
		as[n-1] = r
	} else {
		l.attempts[u] = append(as, r)
	}
	// A key recorded as sent twice (two workers on one store, both told
	// by Stripe's idempotency) is one request applied once.
	if r.Status == StatusSent && !l.sent[r.Key] {
		l.sent[r.Key] = true
		l.accepted[u] = append(l.accepted[u], r)
	}
	if r.Generation > 0 {
		l.renewedAs[keyOf(r.firstKey(), r.Generation-1)] = r.Key
	}
}

// latest is the last entry of the request key names, under its newest
// key.
func (l *ledger) latest(key string) (Report, bool) {
	for l.renewedAs[key] != "" {
		key = l.renewedAs[key]
	}
	r, ok := l.last[key]
	return r, ok
}

func foldLedger(rs []Report) *ledger {
	l := &ledger{last: map[string]Report{}, accepted: map[string][]Report{}, attempts: map[string][]Report{}, flagged: map[string]bool{},
		sent: map[string]bool{}, renewedAs: map[string]string{}}
	for _, r := range rs {
		switch r.Status {
		case StatusLate, StatusNotBilled, StatusNeedsAdjustment, StatusNeedsReview:
			l.flagged[r.Key+"/"+r.Status] = true
			if r.Status != StatusNeedsReview {
				continue
			}
		}
		if r.Status == StatusNeedsReview {
			l.last[r.Key] = r
			continue
		}
		l.note(r)
	}
	return l
}

// pending lists requests whose outcome is unknown, oldest first: intents
// without an outcome, and meter events that failed (Stripe may have
// counted them: they are resent as they were, never replaced by others),
// each under its newest key.
func (l *ledger) pending() []Report {
	var out []Report
	for _, k := range l.order {
		if l.renewedAs[k] != "" {
			continue
		}
		if r := l.last[k]; r.Status == StatusPending || r.Status == StatusFailed && r.Mode == ModeMeterEvents {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].AttemptAt.Before(out[j].AttemptAt) })
	return out
}

// settled reports whether the request of a key reached a final outcome
// (sent, rejected) or is being handled by a person (needs_review).
func (l *ledger) settled(key string) bool {
	r, ok := l.latest(key)
	return ok && (r.Status == StatusSent || r.Status == StatusRejected || r.Status == StatusNeedsReview)
}

// hashKey derives a deterministic idempotency key (or meter event
// identifier, at most 100 characters) from what identifies a report.
func hashKey(prefix string, parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%v\x00", p)
	}
	return prefix + hex.EncodeToString(h.Sum(nil))[:40]
}
