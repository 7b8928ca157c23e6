package keys

import "testing"

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
