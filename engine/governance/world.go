// Package governance evaluates governance rules (rules/governance) over
// today's customers: each round builds every customer's environment (its
// traits, Stripe subscription, unpaid invoices and usage), runs the active
// rules' conditions on it, and renders what Moesif's agents fetch
// (GET /v1/rules and /v1/config) with an ETag that changes with them.
package governance

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/meterd/meterd/engine/backtest"
	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/engine/billing/stripestate"
	"github.com/meterd/meterd/rules"
	gov "github.com/meterd/meterd/rules/governance"
	"github.com/meterd/meterd/storage"
)

// Lookback is how far back the events that make a customer "today's"
// reach: a customer that called the API in it is evaluated. It covers a
// monthly billing period; a customer that made no call for longer has
// nothing to block.
const Lookback = 35 * 24 * time.Hour

// Profiles gives the customers' profile traits (the server's cache).
type Profiles interface {
	// Traits is the merged metadata of a profile and, for a user, its
	// company's id; nil when there is no such profile.
	Traits(kind, id string) (traits map[string]any, companyID string)
	// IDs lists the ids that have a profile of kind.
	IDs(kind string) []string
}

// customer is one customer's environment, before usage.
type customer struct {
	env rules.CustomerEnv
	// subs are the Stripe subscriptions that map to this customer.
	subs []*stripestate.Subscription
}

// world is what one evaluation round reads once.
type world struct {
	now       time.Time
	customers map[string]map[string]*customer // applies_to -> id -> customer
}

// readWorld reads the customers of the kinds asked for, with their traits
// and Stripe state.
func (e *Evaluator) readWorld(ctx context.Context, kinds []string) (*world, error) {
	w := &world{now: e.now(), customers: map[string]map[string]*customer{}}
	state, err := stripestate.Load(ctx, e.Store)
	if err != nil {
		return nil, err
	}
	// Only the customer id source is read: no secret key is needed.
	source, err := billing.CustomerIDSource(ctx, e.Store)
	if err != nil {
		return nil, err
	}
	stripe := mapStripe(state, source, w.now)
	for _, kind := range kinds {
		ids, err := e.activeIDs(ctx, kind, w.now)
		if err != nil {
			return nil, err
		}
		for _, id := range e.Profiles.IDs(kind) {
			ids[id] = true
		}
		if stripeKind(source) == kind {
			for id := range stripe.ids {
				ids[id] = true
			}
		}
		cs := make(map[string]*customer, len(ids))
		for id := range ids {
			if id != "" {
				cs[id] = e.customerOf(kind, id, stripe)
			}
		}
		w.customers[kind] = cs
	}
	return w, nil
}

// activeIDs are the customers of a kind that sent events in the lookback:
// one query (a count grouped by company_id or user_id).
func (e *Evaluator) activeIDs(ctx context.Context, kind string, now time.Time) (map[string]bool, error) {
	res, err := e.calls(ctx, kind, now.Add(-Lookback), now)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(res))
	for id := range res {
		ids[id] = true
	}
	return ids, nil
}

// calls counts each customer's calls over [from, to), blocked ones too (a
// customer whose calls are all blocked is still today's): one query.
func (e *Evaluator) calls(ctx context.Context, kind string, from, to time.Time) (map[string]int64, error) {
	// A meter counts blocked calls only when its filter reads blocked_by.
	m, err := rules.Compile(rules.Definition{Name: "calls", Filter: `blocked_by == "" or blocked_by != ""`, Aggregation: rules.AggCount, GroupBy: groupBy(kind)})
	if err != nil {
		return nil, err
	}
	res, err := backtest.Usage(ctx, e.Store, []backtest.Version{{Meter: m}}, backtest.Window{From: from, To: to, Bucket: backtest.BucketDay, AllGroups: true})
	if err != nil {
		return nil, fmt.Errorf("governance: customers' calls: %w", err)
	}
	out := make(map[string]int64, len(res.Groups))
	for _, g := range res.Groups {
		out[g.Key] = g.Events
	}
	return out, nil
}

// groupBy is the events column that holds a kind of customer.
func groupBy(kind string) string {
	if kind == gov.AppliesToUser {
		return rules.GroupByUser
	}
	return rules.GroupByCompany
}

// stripeByCustomer is the Stripe state by meterd customer id, as billing
// maps Stripe customers to meterd ones (customer_id_source).
type stripeByCustomer struct {
	subs   map[string][]*stripestate.Subscription
	unpaid map[string]rules.InvoicesEnv
	ids    map[string]bool // every meterd id a Stripe customer maps to
}

// stripeKind is the kind of customer the ids Stripe customers map to are:
// users when customer_id_source reads a user id (metadata.user_id),
// companies otherwise (metadata.company_id, the default).
func stripeKind(source string) string {
	if strings.Contains(source, "user") {
		return gov.AppliesToUser
	}
	return gov.AppliesToCompany
}

func mapStripe(state *stripestate.State, source string, now time.Time) *stripeByCustomer {
	m := &stripeByCustomer{subs: map[string][]*stripestate.Subscription{}, unpaid: map[string]rules.InvoicesEnv{}, ids: map[string]bool{}}
	for id := range state.Customers {
		if key := state.BillingKey(&stripestate.Subscription{Customer: id}, source); key != "" {
			m.ids[key] = true
		}
	}
	subKey := map[string]string{} // subscription id -> meterd id
	for _, sub := range state.SortedSubscriptions() {
		if key := state.BillingKey(sub, source); key != "" {
			m.subs[key] = append(m.subs[key], sub)
			subKey[sub.ID] = key
			m.ids[key] = true
		}
	}
	unpaid := state.UnpaidInvoices(now)
	for _, cus := range sortedKeys(unpaid) {
		sum := unpaid[cus]
		// A mapping by subscription metadata reaches the customer through
		// the oldest unpaid invoice's subscription; else through the
		// Stripe customer.
		key := state.BillingKey(&stripestate.Subscription{Customer: cus}, source)
		if inv := state.Invoices[sum.OldestInvoice]; inv != nil && subKey[inv.Subscription] != "" {
			key = subKey[inv.Subscription]
		}
		if key == "" {
			continue
		}
		m.unpaid[key] = mergeInvoices(m.unpaid[key], sum)
	}
	return m
}

// mergeInvoices adds a Stripe customer's unpaid invoices to what a meterd
// customer owes (several Stripe customers may map to one): the oldest
// invoice gives the age and the link.
func mergeInvoices(acc rules.InvoicesEnv, s stripestate.InvoiceSummary) rules.InvoicesEnv {
	if s.OldestUnpaidDays >= acc.OldestUnpaidDays || acc.Unpaid == 0 {
		acc.OldestUnpaidDays, acc.HostedInvoiceURL = s.OldestUnpaidDays, s.HostedInvoiceURL
	}
	acc.Unpaid += s.Unpaid
	acc.AmountDue += int(s.AmountDue)
	return acc
}

// customerOf builds one customer's environment.
func (e *Evaluator) customerOf(kind, id string, stripe *stripeByCustomer) *customer {
	c := &customer{env: rules.CustomerEnv{Customer: id}, subs: stripe.subs[id]}
	if kind == gov.AppliesToUser {
		var companyID string
		c.env.User, companyID = e.Profiles.Traits(storage.KindUser, id)
		if companyID != "" {
			c.env.Company, _ = e.Profiles.Traits(storage.KindCompany, companyID)
		}
	} else {
		c.env.Company, _ = e.Profiles.Traits(storage.KindCompany, id)
	}
	if sub := mainSubscription(c.subs); sub != nil {
		c.env.Subscription = rules.SubscriptionEnv{Status: sub.Status,
			CurrentPeriodStart: msOrZero(sub.Current.Start), CurrentPeriodEnd: msOrZero(sub.Current.End)}
	}
	c.env.Invoices = stripe.unpaid[id]
	return c
}

// mainSubscription is the subscription a customer's environment shows: a
// billed one (active, trialing, past_due) before others, then the one
// whose current period started last, then the newest snapshot.
func mainSubscription(subs []*stripestate.Subscription) *stripestate.Subscription {
	if len(subs) == 0 {
		return nil
	}
	s := append([]*stripestate.Subscription(nil), subs...)
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Active() != s[j].Active() {
			return s[i].Active()
		}
		if !s[i].Current.Start.Equal(s[j].Current.Start) {
			return s[i].Current.Start.After(s[j].Current.Start)
		}
		return s[i].AsOf > s[j].AsOf
	})
	return s[0]
}

// periodStart is where a customer's usage of a meter billed at price
// starts: the current period of its billed subscription with that price,
// else of its main billed subscription, else the calendar month (UTC).
func (c *customer) periodStart(price string, now time.Time) time.Time {
	for _, sub := range c.subs {
		if !sub.Active() || sub.Current.Start.IsZero() {
			continue
		}
		for _, it := range sub.Items {
			if price != "" && it.PriceID == price {
				return sub.Current.Start
			}
		}
	}
	if sub := mainSubscription(c.subs); sub != nil && sub.Active() && !sub.Current.Start.IsZero() {
		return sub.Current.Start
	}
	return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func msOrZero(t time.Time) int {
	if t.IsZero() {
		return 0
	}
	return int(t.UnixMilli())
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
