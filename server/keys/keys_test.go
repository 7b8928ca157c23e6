package keys

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadGeneratesOnceAndKeeps(t *testing.T) {
	dir := t.TempDir()
	a, err := Load(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.IngestKey) < MinAgentKeyLength || a.AdminToken == "" || a.AdminToken == a.IngestKey {
		t.Fatalf("bad keys %+v", a)
	}
	b, err := Load(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("keys changed across loads: %+v then %+v", a, b)
	}
	c, err := Load(dir, "adm", "ing")
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "adm" || c.IngestKey != "ing" {
		t.Fatalf("fixed keys not used: %+v", c)
	}
	d, _ := Load(dir, "", "")
	if d != a {
		t.Fatalf("fixed keys overwrote the kept ones: %+v", d)
	}
}

// With both keys fixed nothing is written, nor needs to be writable: the
// data directory may be missing or read-only (a container's volume).
func TestBothFixedWritesNothing(t *testing.T) {
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "file", "data") // cannot be created
	k, err := Load(dir, "adm", "ing")
	if err != nil {
		t.Fatal(err)
	}
	if k.AdminToken != "adm" || k.IngestKey != "ing" || !k.AdminFixed || !k.IngestFixed || k.File != "" {
		t.Fatalf("keys %+v", k)
	}
	dir = t.TempDir()
	if _, err := Load(dir, "adm", "ing"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Fatalf("%s written with both keys fixed: %v", FileName, err)
	}
}

// With one key fixed, only the other is generated and kept: the file holds
// no key that is not in use.
func TestOneFixedKeepsOnlyTheOther(t *testing.T) {
	dir := t.TempDir()
	k, err := Load(dir, "adm", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	var kept map[string]string
	if err := json.Unmarshal(b, &kept); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept["ingest_key"] != k.IngestKey || k.AdminToken != "adm" || !k.AdminFixed || k.IngestFixed || k.File != filepath.Join(dir, FileName) {
		t.Fatalf("kept %v, keys %+v", kept, k)
	}
	again, err := Load(dir, "", "")
	if err != nil || again.IngestKey != k.IngestKey || again.AdminToken == "adm" || again.AdminToken == "" {
		t.Fatalf("unfixed: %+v, %v", again, err)
	}
}
