package backends

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenDuckDBFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "m.duckdb")
	s, err := Open(context.Background(), "duckdb://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Backend() != "duckdb" {
		t.Fatalf("backend %q", s.Backend())
	}
}

func TestOpenUnknownScheme(t *testing.T) {
	_, err := Open(context.Background(), "postgres://u:secret@h/db")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("want an error without the password, got %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"clickhouse://u:pw@h:9000/db": "clickhouse://u:***@h:9000/db",
		"clickhouse://h:9000/db":      "clickhouse://h:9000/db",
		"clickhouse://u@h:9000/db":    "clickhouse://u@h:9000/db",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
