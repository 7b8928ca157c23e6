package governance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	gov "github.com/meterd/meterd/rules/governance"
)

// moesifRule is a rule as GET /v1/rules serves it, in Moesif's shape; every
// field is present, which the Python agents need.
type moesifRule struct {
	ID                    string           `json:"_id"`
	Name                  string           `json:"name"`
	Type                  string           `json:"type"` // company or user
	Block                 bool             `json:"block"`
	AppliedTo             string           `json:"applied_to"`
	AppliedToUnidentified bool             `json:"applied_to_unidentified"`
	RegexConfig           []regexGroup     `json:"regex_config"`
	Response              moesifResponse   `json:"response"`
	Variables             []moesifVariable `json:"variables"`
}

type regexGroup struct {
	Conditions []regexCondition `json:"conditions"`
}

type regexCondition struct {
	Path  string `json:"path"`
	Value string `json:"value"`
}

type moesifResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

type moesifVariable struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// configEntry is one rule a customer is listed under in /v1/config.
type configEntry struct {
	Rules  string            `json:"rules"`
	Values map[string]string `json:"values"`
}

// render builds the documents the agents fetch and their ETag.
func (s *Snapshot) render() {
	served := make([]moesifRule, 0, len(s.Rules))
	routed := map[string]bool{}
	for _, r := range s.Rules {
		served = append(served, toMoesif(r))
		routed[r.ID] = len(r.Latest().Routes) > 0
	}
	cfg := map[string]map[string][]configEntry{gov.AppliesToCompany: {}, gov.AppliesToUser: {}}
	for _, r := range s.Rules {
		for _, m := range s.Matches[r.ID] {
			values := m.fill
			if values == nil {
				values = map[string]string{}
			}
			cfg[r.AppliesTo][m.Customer] = append(cfg[r.AppliesTo][m.Customer], configEntry{Rules: r.ID, Values: values})
		}
	}
	// The Python agents stop at the first listed rule whose routes do not
	// match the call: rules without routes come first.
	for _, byCustomer := range cfg {
		for _, es := range byCustomer {
			sort.SliceStable(es, func(i, j int) bool {
				if routed[es[i].Rules] != routed[es[j].Rules] {
					return !routed[es[i].Rules]
				}
				return es[i].Rules < es[j].Rules
			})
		}
	}
	s.RulesDoc, _ = json.Marshal(served)
	s.ConfigDoc, _ = json.Marshal(map[string]any{
		"org_id": "", "app_id": "", "sample_rate": 100,
		"user_sample_rate": map[string]int{}, "company_sample_rate": map[string]int{},
		"user_rules": cfg[gov.AppliesToUser], "company_rules": cfg[gov.AppliesToCompany],
		"regex_config": []any{}, "billing_config_jsons": map[string]any{},
	})
	h := sha256.New()
	h.Write(s.RulesDoc)
	h.Write([]byte{0})
	h.Write(s.ConfigDoc)
	s.ETag = hex.EncodeToString(h.Sum(nil))[:32]
}

// toMoesif renders a rule's version in force for the agents.
func toMoesif(r *gov.Rule) moesifRule {
	v := r.Latest()
	headers := map[string]string{}
	for k, val := range v.Response.Headers {
		headers[k] = val
	}
	if v.Block && !hasHeader(headers, "Content-Type") {
		// Node sets it on a blocked answer; the Python agents send only the
		// rule's headers.
		headers["Content-Type"] = "application/json"
	}
	body := v.Response.Body
	if len(body) == 0 {
		body = json.RawMessage("null")
	}
	out := moesifRule{ID: r.ID, Name: r.Name, Type: r.AppliesTo, Block: v.Block, AppliedTo: "matching",
		RegexConfig: []regexGroup{}, Variables: []moesifVariable{},
		Response: moesifResponse{Status: v.Response.Status, Headers: headers, Body: body}}
	for _, rt := range v.Routes {
		var g regexGroup
		if rt.Route != "" {
			g.Conditions = append(g.Conditions, regexCondition{Path: "request.route", Value: AgentRoutePattern(rt.Route)})
		}
		if rt.Verb != "" {
			g.Conditions = append(g.Conditions, regexCondition{Path: "request.verb", Value: rt.Verb})
		}
		out.RegexConfig = append(out.RegexConfig, g)
	}
	for _, n := range v.Placeholders() {
		out.Variables = append(out.Variables, moesifVariable{Name: n, Path: n})
	}
	return out
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(name) {
			return true
		}
	}
	return false
}

// AgentRoutePattern makes a route pattern match under every agent: Node's
// match it against the path with query (/v1/search?q=1), the Python agents
// against the full URL (http://host/v1/search?q=1). A pattern anchored at
// the start (^/v1/search) gets an optional scheme and host after its ^.
func AgentRoutePattern(p string) string {
	if rest, ok := strings.CutPrefix(p, "^"); ok {
		return `^(?:[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)?` + rest
	}
	return p
}
