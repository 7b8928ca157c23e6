package stripestate

import (
	"cmp"
	"context"
	"sort"
	"strings"
	"time"

	"github.com/meterd/meterd/storage"
)

// Customer is a Stripe customer as last seen.
type Customer struct {
	ID       string            `json:"id"`
	Metadata map[string]string `json:"metadata"`
	Deleted  bool              `json:"deleted"`
	AsOf     int64             `json:"as_of"` // the applied snapshot's event time (unix s)
}

// Item is a subscription item and its price.
type Item struct {
	ID      string `json:"id"`
	PriceID string `json:"price_id"`
}

// Period is a billing period [Start, End).
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Subscription is a Stripe subscription as last seen.
type Subscription struct {
	ID       string            `json:"id"`
	Customer string            `json:"customer"`
	Status   string            `json:"status"`
	Metadata map[string]string `json:"metadata"`
	Current  Period            `json:"current_period"`
	Items    []Item            `json:"items"`
	// Periods lists every period seen in any snapshot (older ones too),
	// oldest first: usage of an ended period is checked for lateness.
	Periods []Period `json:"periods"`
	// EndedAt is when an ended subscription (canceled, incomplete_expired)
	// stopped: Stripe's ended_at, else its canceled_at, else the time of
	// the event that showed it ended. Zero while it has not ended.
	EndedAt time.Time `json:"ended_at,omitzero"`
	AsOf    int64     `json:"as_of"`
}

// Active reports whether the subscription is billed now. past_due still
// accrues usage; trialing does too (Stripe bills it at the trial's price).
func (s *Subscription) Active() bool {
	switch s.Status {
	case "active", "trialing", "past_due":
		return true
	}
	return false
}

// Ended reports whether the subscription ended for good (it is never
// billed again), and when.
func (s *Subscription) Ended() (time.Time, bool) {
	return s.EndedAt, ended(s.Status)
}

func ended(status string) bool {
	return status == "canceled" || status == "incomplete_expired"
}

// State is the folded customers, subscriptions and invoices.
type State struct {
	Customers     map[string]*Customer     `json:"customers"`
	Subscriptions map[string]*Subscription `json:"subscriptions"`
	Invoices      map[string]*Invoice      `json:"invoices"`
	Events        int                      `json:"events"`  // applied events
	Ignored       int                      `json:"ignored"` // older snapshots and undecodable or unrelated events
}

// New is an empty state.
func New() *State {
	return &State{Customers: map[string]*Customer{}, Subscriptions: map[string]*Subscription{}, Invoices: map[string]*Invoice{}}
}

// Load folds the Stripe event stream stored in j.
func Load(ctx context.Context, j storage.Journal) (*State, error) {
	evs, err := j.JournalEntries(ctx, storage.JournalQuery{Stream: storage.StreamStripeEvents})
	if err != nil {
		return nil, err
	}
	return Fold(evs), nil
}

// Fold replays journal entries of the Stripe event stream, in order.
func Fold(entries []storage.JournalEntry) *State {
	s := New()
	for _, e := range entries {
		ev, err := Decode([]byte(e.Body))
		if err != nil {
			s.Ignored++
			continue
		}
		s.Apply(ev)
	}
	return s
}

// Apply folds one event.
func (s *State) Apply(e Event) {
	o := e.Data.Object
	if o.ID == "" {
		s.Ignored++
		return
	}
	switch o.Object {
	case "customer":
		deleted := o.Deleted || e.Type == "customer.deleted"
		c := s.Customers[o.ID]
		if c != nil && (e.Created < c.AsOf || (e.Created == c.AsOf && c.Deleted && !deleted)) {
			s.Ignored++
			return
		}
		s.Customers[o.ID] = &Customer{ID: o.ID, Metadata: o.Metadata, Deleted: deleted, AsOf: e.Created}
	case "subscription":
		sub := s.Subscriptions[o.ID]
		p := periodOf(o)
		if sub != nil {
			sub.addPeriod(p) // a period seen is a fact, however old the snapshot
		}
		if sub != nil && (e.Created < sub.AsOf || (e.Created == sub.AsOf && ended(sub.Status) && !ended(o.Status))) {
			s.Ignored++
			return
		}
		n := &Subscription{ID: o.ID, Customer: string(o.Customer), Status: o.Status, Metadata: o.Metadata,
			Current: p, AsOf: e.Created}
		if e.Type == "customer.subscription.deleted" && !ended(n.Status) {
			n.Status = "canceled"
		}
		if ended(n.Status) {
			n.EndedAt = time.Unix(cmp.Or(o.EndedAt, o.CanceledAt, e.Created), 0).UTC()
		}
		for _, it := range o.Items.Data {
			n.Items = append(n.Items, Item{ID: it.ID, PriceID: it.Price.ID})
		}
		if sub != nil {
			n.Periods = sub.Periods
		}
		n.addPeriod(p)
		s.Subscriptions[o.ID] = n
	case "invoice":
		if !s.applyInvoice(e) {
			s.Ignored++
			return
		}
	default:
		s.Ignored++
		return
	}
	s.Events++
}

// periodOf reads the current period: on the subscription (API versions up
// to 2025-02) or on its items (later versions).
func periodOf(o Object) Period {
	start, end := o.CurrentPeriodStart, o.CurrentPeriodEnd
	if start == 0 && len(o.Items.Data) > 0 {
		start, end = o.Items.Data[0].CurrentPeriodStart, o.Items.Data[0].CurrentPeriodEnd
	}
	if start == 0 || end <= start {
		return Period{}
	}
	return Period{Start: time.Unix(start, 0).UTC(), End: time.Unix(end, 0).UTC()}
}

func (s *Subscription) addPeriod(p Period) {
	if p.Start.IsZero() {
		return
	}
	for _, q := range s.Periods {
		if q == p {
			return
		}
	}
	s.Periods = append(s.Periods, p)
	sort.Slice(s.Periods, func(i, j int) bool { return s.Periods[i].Start.Before(s.Periods[j].Start) })
}

// Customer id sources: how a Stripe customer maps to the meterd customer
// (a meter's company_id or user_id) it bills.
const (
	SourceCustomerID        = "customer_id"            // the Stripe customer id itself
	SourceMetadataPrefix    = "metadata."              // metadata.KEY of the customer (default metadata.company_id)
	SourceSubMetadataPrefix = "subscription.metadata." // subscription.metadata.KEY
	DefaultSource           = "metadata.company_id"
)

// ValidSource reports whether src names a customer id source.
func ValidSource(src string) bool {
	switch {
	case src == SourceCustomerID:
		return true
	case strings.HasPrefix(src, SourceSubMetadataPrefix):
		return len(src) > len(SourceSubMetadataPrefix)
	case strings.HasPrefix(src, SourceMetadataPrefix):
		return len(src) > len(SourceMetadataPrefix)
	}
	return false
}

// BillingKey is the meterd customer a subscription bills, "" when unknown
// (the customer is missing or deleted, or lacks the metadata key).
func (s *State) BillingKey(sub *Subscription, source string) string {
	if source == "" {
		source = DefaultSource
	}
	c := s.Customers[sub.Customer]
	switch {
	case strings.HasPrefix(source, SourceSubMetadataPrefix):
		return sub.Metadata[strings.TrimPrefix(source, SourceSubMetadataPrefix)]
	case c == nil || c.Deleted:
		if source == SourceCustomerID && c == nil {
			return sub.Customer // the id is known from the subscription alone
		}
		return ""
	case source == SourceCustomerID:
		return c.ID
	default:
		return c.Metadata[strings.TrimPrefix(source, SourceMetadataPrefix)]
	}
}

// SortedSubscriptions lists subscriptions by id (a stable work order).
func (s *State) SortedSubscriptions() []*Subscription {
	out := make([]*Subscription, 0, len(s.Subscriptions))
	for _, sub := range s.Subscriptions {
		out = append(out, sub)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
