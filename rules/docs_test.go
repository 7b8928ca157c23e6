package rules

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the generated tables in docs/meters.md and docs/governance.md")

const docsPath = "../docs/meters.md"

type docTable struct{ name, table string }

// TestDocsInSync checks that the tables of docs/meters.md and
// docs/governance.md are those rendered from Fields, Language and
// ConditionFields (go test ./rules -run TestDocs -update-docs rewrites
// them).
func TestDocsInSync(t *testing.T) {
	checkTables(t, docsPath, []docTable{
		{"fields", renderFields(Fields)},
		{"allowed", renderLanguage(true)},
		{"forbidden", renderLanguage(false)},
	})
	checkTables(t, "../docs/governance.md", []docTable{{"condition-fields", renderFields(ConditionFields)}})
}

func checkTables(t *testing.T, path string, tables []docTable) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, s := range tables {
		begin, end := "<!-- "+s.name+":begin -->\n", "<!-- "+s.name+":end -->"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s has no %q ... %q section", path, begin, end)
		}
		if doc[i+len(begin):j] != s.table {
			if !*updateDocs {
				t.Errorf("%s: the %s table is out of date: run go test ./rules -run TestDocs -update-docs", path, s.name)
				continue
			}
			doc = doc[:i+len(begin)] + s.table + doc[j:]
		}
	}
	if *updateDocs {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`` " + cell(s) + " ``"
}

func renderFields(fields []Field) string {
	var b strings.Builder
	b.WriteString("| field | type | example | meaning |\n| --- | --- | --- | --- |\n")
	for _, f := range fields {
		b.WriteString("| " + code(f.Path) + " | " + f.Type + " | " + code(f.Example) + " | " + cell(f.Doc) + " |\n")
	}
	return b.String()
}

func renderLanguage(allowed bool) string {
	var b strings.Builder
	head := "what it does"
	if !allowed {
		head = "why not"
	}
	b.WriteString("| construct | kind | " + head + " |\n| --- | --- | --- |\n")
	for _, c := range Language {
		if c.Allowed == allowed {
			b.WriteString("| " + code(c.Name) + " | " + c.Kind + " | " + cell(c.Note) + " |\n")
		}
	}
	return b.String()
}

// TestDocsExamples compiles every example of docs/meters.md.
func TestDocsExamples(t *testing.T) {
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	doc = doc[strings.Index(doc, "## Examples"):strings.Index(doc, "## The environment")]
	blocks := strings.Split(doc, "```")
	n := 0
	for i := 1; i < len(blocks); i += 2 {
		d := Definition{Name: "example"}
		for _, line := range strings.Split(strings.TrimSpace(blocks[i]), "\n") {
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "filter":
				d.Filter = v
			case "value":
				d.Value = v
			case "aggregation":
				d.Aggregation = v
			case "group_by":
				d.GroupBy = v
			default:
				t.Fatalf("example line %q", line)
			}
		}
		if _, err := Compile(d); err != nil {
			t.Errorf("example %+v: %v", d, err)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("found %d examples", n)
	}
}
