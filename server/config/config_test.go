package config

import (
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// parse is Parse of cmd's args over the variables in env.
func parse(cmd Command, args []string, env map[string]string) (Config, error) {
	fs := flag.NewFlagSet(string(cmd), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Parse(fs, cmd, args, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

// The defaults are the ones docs/operations.md gives.
func TestDefaults(t *testing.T) {
	c, err := parse(Serve, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Addr: ":8080", DataDir: "./data", Store: "duckdb://data/meterd.duckdb",
		MaxBodyBytes: 16 << 20, MaxBatchEvents: 10000, MaxEventAge: 720 * time.Hour, MaxClockSkew: time.Hour,
		IngestMemory: 128 << 20, MaxQueuedEvents: 100000, BodyReadTimeout: 30 * time.Second,
		Billing: true, BillingInterval: time.Minute}
	if c != want {
		t.Fatalf("defaults\n got %+v\nwant %+v", c, want)
	}
	if c, err := parse(Billing, []string{"--data", "/var/x"}, nil); err != nil || c.Store != "duckdb:///var/x/meterd.duckdb" {
		t.Fatalf("billing's store in its data directory: %q %v", c.Store, err)
	}
}

// A bad value stops the start with an error naming the flag or the
// variable and the value; none falls back to its default.
func TestBadValues(t *testing.T) {
	for _, c := range []struct {
		cmd  Command
		args []string
		env  map[string]string
		want []string // in the error
	}{
		{Serve, nil, map[string]string{"METERD_MAX_BODY_BYTES": "16MB"}, []string{`METERD_MAX_BODY_BYTES="16MB"`, "whole number"}},
		{Serve, []string{"--max-body-bytes", "0"}, nil, []string{`--max-body-bytes="0"`, "above 0"}},
		{Serve, nil, map[string]string{"METERD_MAX_BATCH_EVENTS": "-5"}, []string{`METERD_MAX_BATCH_EVENTS="-5"`}},
		{Serve, nil, map[string]string{"METERD_MAX_EVENT_AGE": "30d"}, []string{`METERD_MAX_EVENT_AGE="30d"`, "duration"}},
		{Serve, []string{"--max-event-age=0s"}, nil, []string{`--max-event-age="0s"`, "negative one for no limit"}},
		{Serve, nil, map[string]string{"METERD_MAX_CLOCK_SKEW": "-1h"}, []string{`METERD_MAX_CLOCK_SKEW="-1h"`, "above 0"}},
		{Serve, nil, map[string]string{"METERD_INGEST_MEMORY": "lots"}, []string{`METERD_INGEST_MEMORY="lots"`}},
		{Serve, nil, map[string]string{"METERD_MAX_QUEUED_EVENTS": "1e5"}, []string{`METERD_MAX_QUEUED_EVENTS="1e5"`}},
		{Serve, nil, map[string]string{"METERD_BODY_READ_TIMEOUT": "30"}, []string{`METERD_BODY_READ_TIMEOUT="30"`}},
		{Serve, nil, map[string]string{"METERD_BILLING_INTERVAL": "0s"}, []string{`METERD_BILLING_INTERVAL="0s"`}},
		{Billing, []string{"--interval", "soon"}, nil, []string{`--interval="soon"`}},
		{Serve, nil, map[string]string{"METERD_KEEP_BODIES": "yes"}, []string{`METERD_KEEP_BODIES="yes"`, "true, false, 1 or 0"}},
		{Serve, nil, map[string]string{"METERD_BILLING": "off"}, []string{`METERD_BILLING="off"`}},
		{Serve, []string{"--billing=no"}, nil, []string{`--billing="no"`}},
		{Serve, nil, map[string]string{"METERD_ADDR": "8080"}, []string{`METERD_ADDR="8080"`, "HOST:PORT"}},
		{Serve, []string{"--addr="}, nil, []string{`--addr=""`}},
		{Billing, nil, map[string]string{"METERD_METRICS_ADDR": "9091"}, []string{`METERD_METRICS_ADDR="9091"`}},
		{Serve, []string{"--data", ""}, nil, []string{`--data=""`, "empty"}},
		{Billing, nil, map[string]string{"METERD_STORE": "postgres://u:pw@h/db"}, []string{`METERD_STORE="postgres://u:***@h/db"`, "unknown scheme"}},
		{Serve, []string{"--store", "data/meterd.duckdb"}, nil, []string{`--store="data/meterd.duckdb"`, "unknown scheme"}},
	} {
		_, err := parse(c.cmd, c.args, c.env)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s %v %v: error %v, want one saying %s", c.cmd, c.args, c.env, err, w)
			}
		}
	}
}

// A bad METERD_SECRET_KEY stops the start too, without the key in the
// message; a good one gives the Sealer the settings are sealed with.
func TestSecretKey(t *testing.T) {
	_, err := parse(Serve, nil, map[string]string{"METERD_SECRET_KEY": "hunter2-hunter2"})
	if err == nil || !strings.Contains(err.Error(), "METERD_SECRET_KEY") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a short key: %v", err)
	}
	c, err := parse(Billing, nil, map[string]string{"METERD_SECRET_KEY": strings.Repeat("k", 32)})
	if err != nil || c.Sealer == nil {
		t.Fatalf("a good key: %v %v", c.Sealer, err)
	}
	if c, err := parse(Billing, nil, nil); err != nil || c.Sealer != nil {
		t.Fatalf("no key: %v %v", c.Sealer, err)
	}
}

// A flag wins over its variable, a variable over the default; an empty
// variable is unset; booleans read one way, bare flags included.
func TestPrecedence(t *testing.T) {
	env := map[string]string{"METERD_ADDR": ":9000", "METERD_MAX_BATCH_EVENTS": "50", "METERD_DATA_DIR": "",
		"METERD_KEEP_BODIES": "1", "METERD_BILLING": "0", "METERD_BILLING_INTERVAL": "5m"}
	c, err := parse(Serve, []string{"--addr", "127.0.0.1:0", "--billing-interval", "2m"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:0" || c.MaxBatchEvents != 50 || c.DataDir != "./data" || !c.KeepBodies || c.Billing || c.BillingInterval != 2*time.Minute {
		t.Fatalf("%+v", c)
	}
	// the flag wins even when the variable is bad, and a bad flag is
	// refused even when the variable is good
	if c, err := parse(Serve, []string{"--keep-bodies", "--billing=true"}, map[string]string{"METERD_KEEP_BODIES": "maybe", "METERD_BILLING": "maybe"}); err != nil || !c.KeepBodies || !c.Billing {
		t.Fatalf("flags over bad variables: %+v %v", c, err)
	}
	if _, err := parse(Serve, []string{"--max-batch-events", "x"}, env); err == nil {
		t.Fatal("a bad flag over a good variable passed")
	}
	if c, err := parse(Billing, nil, env); err != nil || c.BillingInterval != 5*time.Minute {
		t.Fatalf("billing's interval from METERD_BILLING_INTERVAL: %v %v", c.BillingInterval, err)
	}
	// serve's settings are no flags of billing's
	if _, err := parse(Billing, []string{"--addr", ":1"}, nil); err == nil {
		t.Fatal("billing took --addr")
	}
}

// docs/operations.md's table has a row for every setting, with its flag
// and its variable.
func TestDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string // a row's cells
	for _, line := range strings.Split(string(doc), "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 3 {
			rows = append(rows, cells)
		}
	}
	for _, s := range settings {
		flag := "(none)"
		if s.flag != "" {
			flag = "`--" + s.flag + "`"
		}
		if !slices.ContainsFunc(rows, func(cells []string) bool {
			return strings.Contains(cells[1], flag) && strings.TrimSpace(cells[2]) == "`"+s.env+"`"
		}) {
			t.Errorf("docs/operations.md has no row | %s | `%s` |", flag, s.env)
		}
	}
}
