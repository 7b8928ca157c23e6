package web

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/meterd/meterd/rules"
)

var update = flag.Bool("update", false, "rewrite src/lang.json from the rules package")

// TestLangJSON keeps the editors' completion lists (src/lang.json) equal
// to what the compiler accepts: for meters rules.Fields and the allowed
// functions of rules.Language; for governance conditions
// rules.ConditionFields and rules.ConditionCalls (beside the same
// functions).
func TestLangJSON(t *testing.T) {
	type field struct {
		Path string `json:"path"`
		Type string `json:"type"`
		Doc  string `json:"doc"`
	}
	type function struct {
		Name string `json:"name"`
		Note string `json:"note"`
	}
	var l struct {
		Fields             []field    `json:"fields"`
		Functions          []function `json:"functions"`
		ConditionFields    []field    `json:"condition_fields"`
		ConditionFunctions []function `json:"condition_functions"`
	}
	for _, f := range rules.Fields {
		l.Fields = append(l.Fields, field{f.Path, f.Type, f.Doc})
	}
	for _, f := range rules.ConditionFields {
		l.ConditionFields = append(l.ConditionFields, field{f.Path, f.Type, f.Doc})
	}
	for _, c := range rules.Language {
		if c.Kind == "function" && c.Allowed {
			l.Functions = append(l.Functions, function{c.Name, c.Note})
		}
	}
	for _, c := range rules.ConditionCalls {
		l.ConditionFunctions = append(l.ConditionFunctions, function{c.Name, c.Note})
	}
	want, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("src/lang.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("src/lang.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("web/src/lang.json is stale: run go test ./web -run TestLangJSON -update, then web/build.sh")
	}
}
