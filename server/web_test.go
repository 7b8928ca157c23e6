package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/meterd/meterd/web"
)

// TestUI: the embedded console is served at / and /assets/, compressed
// and cacheable, without shadowing the API.
func TestUI(t *testing.T) {
	h := newHarness(t, nil)

	a := h.do("GET", "/", nil)
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || a.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET /: %d %v", a.status, a.header)
	}
	want, _ := fs.ReadFile(web.Dist, "index.html")
	if !bytes.Equal(a.body, want) {
		t.Fatalf("GET / is not the embedded index.html")
	}
	// index.html names its bundle with a content hash; the bundle is
	// served, gzipped on request, immutable.
	m := regexp.MustCompile(`src="(assets/app\.js\?v=\w+)"`).FindSubmatch(a.body)
	if m == nil {
		t.Fatalf("index.html has no script: %s", a.body)
	}
	js := h.do("GET", "/"+string(m[1]), nil, "Accept-Encoding", "gzip")
	if js.status != 200 || js.header.Get("Content-Encoding") != "gzip" || !strings.Contains(js.header.Get("Content-Type"), "javascript") ||
		!strings.Contains(js.header.Get("Cache-Control"), "immutable") {
		t.Fatalf("bundle: %d %v", js.status, js.header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(js.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if wantJS, _ := fs.ReadFile(web.Dist, "assets/app.js"); !bytes.Equal(plain, wantJS) {
		t.Fatal("the gzipped bundle is not the embedded one")
	}
	// Revalidation answers 304.
	if r := h.do("GET", "/", nil, "If-None-Match", a.header.Get("ETag")); r.status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", r.status)
	}
	// Misses and the API keep their JSON errors.
	for _, p := range []string{"/assets/nope.js", "/v1/nope", "/nope"} {
		r := h.do("GET", p, nil)
		if r.status != 404 || r.json(t)["code"] != "not_found" {
			t.Errorf("GET %s: %d %s", p, r.status, r.body)
		}
	}
	if r := h.do("GET", "/v1/meters", nil); r.status != 401 {
		t.Errorf("the API behind the UI: GET /v1/meters without a token: %d", r.status)
	}
}
