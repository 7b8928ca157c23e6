package main

import (
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
