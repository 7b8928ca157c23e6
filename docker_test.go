package main

import (
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/meterd/meterd/server/keys"
)

// Docker cannot run in CI, so these tests read the Dockerfile and
// docker-compose.yml and check what `docker compose up` needs of them: the
// data volume is mounted at the directory the image creates for the user
// it runs as (a named volume starts with that directory's owner; any
// other mount point is created root-owned and meterd cannot write its
// keys), and the ingest key is long enough for Moesif's agents.
func TestComposeMountsTheImagesDataDirectory(t *testing.T) {
	img := readDockerfile(t)
	dataDir := img.env["METERD_DATA_DIR"]
	if dataDir == "" {
		t.Fatal("the Dockerfile sets no METERD_DATA_DIR")
	}
	// The USER (its user part: the owner's permissions are what matter),
	// by id or name.
	user, _, _ := strings.Cut(img.user, ":")
	owners := []string{user, img.users[user]}
	var created, owned bool
	for _, cmd := range img.commands() {
		args := strings.Fields(cmd)
		if len(args) < 2 {
			continue
		}
		targets := slices.DeleteFunc(slices.Clone(args[1:]), func(a string) bool { return strings.HasPrefix(a, "-") })
		switch args[0] {
		case "mkdir":
			created = created || slices.Contains(targets, dataDir)
		case "chown":
			recursive := slices.Contains(args, "-R")
			owner, _, _ := strings.Cut(targets[0], ":")
			if len(targets) > 1 && slices.Contains(owners, owner) {
				for _, p := range targets[1:] {
					owned = owned || p == dataDir || recursive && strings.HasPrefix(dataDir, p+"/")
				}
			}
		}
	}
	if !created || !owned {
		t.Errorf("the image must create %s (created: %v) and give it to its user %s (owned: %v)", dataDir, created, img.user, owned)
	}

	svc := readCompose(t)["services.meterd"]
	if dir := svc.values["environment.METERD_DATA_DIR"]; dir != "" {
		dataDir = dir
	}
	var mounts []string
	for _, v := range svc.lists["volumes"] {
		source, target, _ := strings.Cut(v, ":")
		target, _, _ = strings.Cut(target, ":")
		if target == dataDir && source != "" && !strings.ContainsAny(source[:1], "./~$") {
			return // a named volume on the data directory
		}
		mounts = append(mounts, v)
	}
	t.Errorf("docker-compose.yml mounts %v: none is a named volume at the data directory %s", mounts, dataDir)
}

func TestComposeIngestKeySuitsMoesifAgents(t *testing.T) {
	key := readCompose(t)["services.meterd"].values["environment.METERD_INGEST_KEY"]
	if len(key) < keys.MinAgentKeyLength {
		t.Errorf("docker-compose.yml's METERD_INGEST_KEY %q has %d characters; Moesif's agents refuse fewer than %d", key, len(key), keys.MinAgentKeyLength)
	}
}

// The prometheus service is optional: only the metrics profile starts it
// (a plain `docker compose up` runs ClickHouse and meterd alone). It
// mounts a config that is in the repository, and that config scrapes
// meterd's metrics listener: the meterd service, at the port of its
// METERD_METRICS_ADDR, at /metrics. That listener has no credentials, so
// the compose file does not publish it.
func TestComposePrometheusScrapesMeterd(t *testing.T) {
	services := readCompose(t)
	prom, ok := services["services.prometheus"]
	if !ok {
		t.Fatal("docker-compose.yml has no prometheus service")
	}
	for name, svc := range services {
		profiles := composeList(svc, "profiles")
		switch {
		case name == "services.prometheus" && !slices.Equal(profiles, []string{"metrics"}):
			t.Errorf("the prometheus service's profiles are %v, want [metrics]: it must not start by default", profiles)
		case name != "services.prometheus" && len(profiles) > 0:
			t.Errorf("%s runs only under the profiles %v", name, profiles)
		}
	}

	meterd := services["services.meterd"]
	_, port, err := net.SplitHostPort(meterd.values["environment.METERD_METRICS_ADDR"])
	if err != nil || port == "" {
		t.Fatalf("the meterd service's METERD_METRICS_ADDR %q is no listen address: %v", meterd.values["environment.METERD_METRICS_ADDR"], err)
	}
	for _, p := range meterd.lists["ports"] {
		if container := p[strings.LastIndex(p, ":")+1:]; container == port {
			t.Errorf("docker-compose.yml publishes meterd's metrics port (%s), which has no credentials", p)
		}
	}

	var config string
	for _, v := range prom.lists["volumes"] {
		if source, target, _ := strings.Cut(v, ":"); strings.HasPrefix(target, "/etc/prometheus/prometheus.yml") {
			config = source
		}
	}
	if !strings.HasPrefix(config, "./") {
		t.Fatalf("the prometheus service mounts no config of the repository at /etc/prometheus/prometheus.yml: %v", prom.lists["volumes"])
	}
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var targets []string
	for _, m := range regexp.MustCompile(`targets:\s*\[([^\]]*)\]`).FindAllStringSubmatch(text, -1) {
		for _, tg := range strings.Split(m[1], ",") {
			targets = append(targets, strings.Trim(strings.TrimSpace(tg), `"'`))
		}
	}
	if want := "meterd:" + port; !slices.Equal(targets, []string{want}) {
		t.Errorf("%s scrapes %v, want [%s] (the meterd service's metrics listener)", config, targets, want)
	}
	if m := regexp.MustCompile(`metrics_path:\s*(\S+)`).FindStringSubmatch(text); m != nil && strings.Trim(m[1], `"'`) != "/metrics" {
		t.Errorf("%s scrapes %s, want /metrics", config, m[1])
	}
}

// composeList is a list of a service given either way YAML allows: a
// block list, or a flow list ([a, b]).
func composeList(n composeNode, key string) []string {
	if l, ok := n.lists[key]; ok {
		return l
	}
	v, ok := n.values[key]
	if !ok {
		return nil
	}
	var out []string
	for _, item := range strings.Split(strings.Trim(v, "[]"), ",") {
		if item = strings.Trim(strings.TrimSpace(item), `"'`); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// dockerfile is the final stage of the Dockerfile.
type dockerfile struct {
	run   []string          // RUN instructions
	env   map[string]string // ENV
	user  string            // USER
	users map[string]string // useradd: name to uid and uid to name
}

func readDockerfile(t *testing.T) dockerfile {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	var d dockerfile
	for _, line := range strings.Split(text, "\n") {
		instr, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			d = dockerfile{env: map[string]string{}, users: map[string]string{}}
		case "RUN":
			d.run = append(d.run, rest)
		case "USER":
			d.user = strings.TrimSpace(rest)
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				d.env[k] = v
			}
		}
	}
	for _, cmd := range d.commands() {
		args := strings.Fields(cmd)
		if len(args) > 1 && args[0] == "useradd" {
			name := args[len(args)-1]
			if i := slices.Index(args, "--uid"); i > 0 && i+1 < len(args) {
				d.users[name], d.users[args[i+1]] = args[i+1], name
			}
		}
	}
	if d.user == "" {
		t.Fatal("the Dockerfile's final stage has no USER")
	}
	return d
}

// commands are the shell commands of the RUN instructions.
func (d dockerfile) commands() []string {
	var out []string
	for _, r := range d.run {
		for _, c := range regexp.MustCompile(`&&|;`).Split(r, -1) {
			out = append(out, strings.TrimSpace(c))
		}
	}
	return out
}

// composeNode is a mapping of docker-compose.yml: its scalar values and
// lists by relative dotted path.
type composeNode struct {
	values map[string]string
	lists  map[string][]string
}

// readCompose reads the subset of YAML docker-compose.yml uses (block
// mappings, block lists of scalars, flow values kept as text) into its
// services, by "services.NAME".
func readCompose(t *testing.T) map[string]composeNode {
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]composeNode{}
	var stack []string // keys of the enclosing mappings
	var indents []int
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		for len(indents) > 0 && indents[len(indents)-1] >= indent {
			stack, indents = stack[:len(stack)-1], indents[:len(indents)-1]
		}
		if len(stack) < 2 || stack[0] != "services" {
			if k, v, _ := strings.Cut(trimmed, ":"); strings.TrimSpace(v) == "" && !strings.HasPrefix(trimmed, "- ") {
				stack, indents = append(stack, k), append(indents, indent)
			}
			continue
		}
		svc := "services." + stack[1]
		n, ok := out[svc]
		if !ok {
			n = composeNode{values: map[string]string{}, lists: map[string][]string{}}
			out[svc] = n
		}
		rel := strings.Join(stack[2:], ".")
		if item, ok := strings.CutPrefix(trimmed, "- "); ok {
			n.lists[rel] = append(n.lists[rel], strings.Trim(item, `"'`))
			continue
		}
		k, v, _ := strings.Cut(trimmed, ":")
		if v = strings.TrimSpace(v); v == "" {
			stack, indents = append(stack, k), append(indents, indent)
			continue
		}
		key := k
		if rel != "" {
			key = rel + "." + k
		}
		n.values[key] = strings.Trim(v, `"'`)
	}
	if _, ok := out["services.meterd"]; !ok {
		t.Fatal("docker-compose.yml has no meterd service")
	}
	return out
}
