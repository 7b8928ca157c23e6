package web_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/meterd/meterd/engine/billing"
	"github.com/meterd/meterd/server"
	"github.com/meterd/meterd/storage"
	"github.com/meterd/meterd/storage/duckdb"
	"github.com/meterd/meterd/storage/eventgen"
)

const (
	admin  = "ui-test-admin-token"
	ingest = "ui-test-ingest-key-0123456789abcdef0123456789abcdef0123"
)

// chromium finds the browser: METERD_CHROMIUM, else /usr/bin/chromium.
// Without one the test skips, except in CI (CI=true), where it fails.
func chromium(t *testing.T) string {
	p := os.Getenv("METERD_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no chromium at %s (CI=true): .ci/run installs it", p)
		}
		t.Skipf("no chromium at %s: install Debian's chromium or set METERD_CHROMIUM", p)
	}
	return p
}

// env is a real meterd (DuckDB in memory) with a week of generated
// traffic, and a browser pointed at it.
type env struct {
	t      *testing.T
	store  *duckdb.Store
	mu     sync.Mutex
	thrown []string // uncaught exceptions and rejections of the page
	url    string
	ctx    context.Context
	shots  string
	n      int
}

func newEnv(t *testing.T) *env {
	exe := chromium(t)
	st, err := duckdb.Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	events := eventgen.Generate(7, 20_000, now.Add(-7*24*time.Hour), now.Add(-time.Minute))
	if _, err := st.Insert(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, AdminToken: admin, IngestKey: ingest})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })

	shots := os.Getenv("METERD_SCREENSHOTS")
	if shots == "" {
		shots = t.ArtifactDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(cancel2)
	e := &env{t: t, store: st, url: ts.URL, ctx: ctx, shots: shots}
	// The first run starts the browser, which lives as long as its
	// context: this one has no timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("screenshots in %s", shots)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				e.mu.Lock()
				e.thrown = append(e.thrown, m.String())
				e.mu.Unlock()
			}
		}
	}()
	return e
}

// do runs browser actions, failing the test with a screenshot on error.
func (e *env) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 90*time.Second) // generous: CI runs other packages at the same time
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		e.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		e.t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a JavaScript condition until it is true.
func (e *env) wait(what, cond string) {
	e.t.Helper()
	e.do("wait: "+what, waitFor(cond))
}

func eval[T any](e *env, js string) T {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		e.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// shot saves a full-page PNG, numbered in order.
func (e *env) shot(name string) {
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	// Let fonts, charts and transitions settle.
	_ = chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		e.t.Logf("screenshot %s: %v", name, err)
		return
	}
	e.n++
	if err := os.WriteFile(filepath.Join(e.shots, fmt.Sprintf("%02d-%s.png", e.n, name)), png, 0o644); err != nil {
		e.t.Error(err)
	}
}

// typeInto types into an element (a CodeMirror editor included) after
// selecting what it holds, so the text replaces it.
func (e *env) typeInto(sel, text string) {
	e.t.Helper()
	e.do("type into "+sel,
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.KeyEvent("\b"),
		chromedp.SendKeys(chromedp.CSS(sel), text),
	)
}

// escape closes the open dialog with Escape, as a person does.
func (e *env) escape(what string) {
	e.t.Helper()
	e.do("close "+what, chromedp.KeyEvent(kb.Escape))
	e.wait(what+" closed", `!document.querySelector(".backdrop")`)
}

// pick presses Enter as a person does in an editor that handles it on
// keydown (CodeMirror accepting a completion): chromedp's kb.Enter adds a
// char event, which types a line break after the completion.
var pick = chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
	for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}); err != nil {
			return err
		}
	}
	return nil
})

// api calls the API directly, as the admin.
func (e *env) api(method, path string, body any) map[string]any {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, r)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode >= 300 {
		e.t.Fatalf("%s %s: %d %v %v", method, path, resp.StatusCode, out, err)
	}
	return out
}

// stat is the value a preview statistic shows.
func (e *env) stat(key string) string {
	e.t.Helper()
	return eval[string](e, `document.querySelector("[data-stat=`+key+`] .stat-value").textContent`)
}

// grouped formats a number as the UI does (en-US, at most 2 decimals:
// 12,345.67).
func grouped(n float64) string {
	s := strconv.FormatFloat(math.Round(n*100)/100, 'f', -1, 64)
	whole, frac, _ := strings.Cut(s, ".")
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	if frac != "" {
		return whole + "." + frac
	}
	return whole
}

// sameTime compares an API time with an RFC 3339 one.
func sameTime(api any, want string) bool {
	a, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(api))
	b, err2 := time.Parse(time.RFC3339, want)
	return err1 == nil && err2 == nil && a.Equal(b)
}

// previewed is true once the preview shows the result for filter: its
// request started after the last keystroke (an earlier, still-valid
// prefix such as "response.status == 200" previews too) and ended.
func previewed(filter string) string {
	return `(document.querySelector(".preview").dataset.filter === ` + strconv.Quote(filter) + ` && !document.querySelector(".preview").classList.contains("busy"))`
}

// actorName is who signs in: beyond Latin-1 (Ł), as names can be.
const actorName = "Zoë Łukasiewicz"

const (
	sumFilter  = `response.status < 400 or metadata.to == 1`
	badFilter  = `response.stauts == 200 and request.route startsWith "/v1/search"`
	goodFilter = `response.status == 200 and request.route startsWith "/v1/search"`
)

// TestBrowser walks through the console as a person would: sign in,
// write a meter with a mistake, fix it, check the preview against the
// API, create it, version it, switch it on, archive it, read events.
func TestBrowser(t *testing.T) {
	e := newEnv(t)
	// The browser is in New York: what the console shows in UTC (chart
	// axes, buckets, times) must not move with it.
	e.do("time zone", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "America/New_York"})
		return err
	}))

	// The UI is served at / beside the API, whose routes still answer.
	if resp, err := http.Get(e.url + "/v1/nope"); err != nil || resp.StatusCode != 404 || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		t.Fatalf("unknown API route: %v %v", resp, err)
	}

	// Sign in.
	e.do("open", chromedp.Navigate(e.url+"/"))
	e.wait("sign-in form", `!!document.querySelector("#token")`)
	e.shot("signin")
	e.axe("signin")
	e.do("wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "nope"), chromedp.Click(chromedp.CSS("button[type=submit]")))
	e.wait("refusal shown", `document.querySelector(".form-error") && !document.querySelector(".form-error").hidden && document.querySelector(".form-error").textContent.includes("refused")`)
	e.typeInto("#token", admin)
	// By keyboard: Tab to the name, Enter submits.
	e.do("sign in", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(actorName+kb.Enter))
	e.wait("meters page, empty", `document.querySelector(".empty h3")?.textContent === "No meters yet"`)
	e.shot("meters-empty")
	e.axe("meters empty")

	// A new meter with a typo in the filter: the editor underlines it.
	e.do("new meter", chromedp.Click(chromedp.CSS(`a[href="#/meters/new"]`)))
	e.wait("editors", `document.querySelectorAll(".cm-content").length === 2`)
	e.do("name", chromedp.SendKeys(chromedp.CSS("#name"), "Search calls"))

	// Completion offers the metadata keys the stored events have, with
	// their JSON types (tokens is sometimes sent as a string).
	e.do("sum", chromedp.SetValue(chromedp.CSS("#aggregation"), "sum"), chromedp.Evaluate[chromedp.Void](`document.querySelector("#aggregation").dispatchEvent(new Event("change"))`))
	e.wait("value editor", `!document.querySelector("[data-field=value]").closest(".field").hidden`)
	e.do("type a metadata key", chromedp.Click(chromedp.CSS(`[data-field=value] .cm-content`)), chromedp.SendKeys(chromedp.CSS(`[data-field=value] .cm-content`), "metadata.tok"))
	e.wait("completion", `[...document.querySelectorAll(".cm-tooltip-autocomplete li")].some(li => li.textContent.includes("metadata.tokens") && li.textContent.includes("number"))`)
	e.shot("completion")
	e.do("take it", pick)
	if v := eval[string](e, `document.querySelector("[data-field=value] .cm-content").textContent`); v != "metadata.tokens" {
		t.Errorf("completed value %q", v)
	}
	// And the profile traits the events were stamped with (eventgen gives
	// every company a numeric seats trait), under company.
	e.do("type a trait key", chromedp.Click(chromedp.CSS(`[data-field=filter] .cm-content`)), chromedp.SendKeys(chromedp.CSS(`[data-field=filter] .cm-content`), "company.se"))
	e.wait("trait completion", `[...document.querySelectorAll(".cm-tooltip-autocomplete li")].some(li => li.textContent.includes("company.seats") && li.textContent.includes("number"))`)
	e.shot("completion-trait")
	e.do("take the trait", pick)
	if v := eval[string](e, `document.querySelector("[data-field=filter] .cm-content").textContent`); v != "company.seats" {
		t.Errorf("completed filter %q", v)
	}
	// A sum meter over the tokens: some calls send them as text, or not at
	// all, which the preview counts as value errors, as the API does. The
	// filter reads a key no event has (metadata.to).
	e.typeInto(`[data-field=filter] .cm-content`, sumFilter)
	e.wait("sum preview", previewed(sumFilter)+` && document.querySelector(".preview").dataset.total > 0 && document.querySelector("[data-field=filter]").dataset.checked === `+strconv.Quote(sumFilter))
	ds := eval[map[string]string](e, `Object.assign({}, document.querySelector(".preview").dataset)`)
	sum := e.api("POST", "/v1/backtest", map[string]any{"filter": sumFilter, "value": "metadata.tokens", "aggregation": "sum",
		"from": ds["from"], "to": ds["to"], "bucket": ds["bucket"], "top": 8})
	if got, w := e.stat("total"), grouped(sum["total"].(float64)); got != w {
		t.Errorf("sum total shown %s, API says %s", got, w)
	}
	if got, w := e.stat("errors"), grouped(sum["value_errors"].(float64)); got != w || sum["value_errors"].(float64) == 0 {
		t.Errorf("value errors shown %s, API says %s (the generated tokens include text)", got, w)
	}
	// Why values fail: the editor knows tokens is number | string (and
	// sometimes missing) and says so with the fix; so does the preview.
	e.wait("value warning", `!!document.querySelector("[data-field=value] ~ .editor-msg .warn[data-code=not_always_a_number]")`)
	if w := eval[string](e, `document.querySelector("[data-field=value] ~ .editor-msg .warn").textContent`); !strings.Contains(w, "metadata.tokens is number | string in your events") || !strings.Contains(w, "Use float(metadata.tokens ?? 0)") {
		t.Errorf("the value's warning: %s", w)
	}
	note := fmt.Sprintf("%s of the %s matched calls", grouped(sum["value_errors"].(float64)), grouped(sum["matched_events"].(float64)))
	if n := eval[string](e, `document.querySelector(".value-note")?.textContent || ""`); !strings.Contains(n, note) || !strings.Contains(n, "float(metadata.tokens ?? 0)") {
		t.Errorf("the preview's note %q lacks %q and the fix", n, note)
	}
	// The key no event has: a warning, not an error, underlined.
	if w := eval[string](e, `document.querySelector("[data-field=filter] ~ .editor-msg").textContent`); w != "metadata.to is in none of your 20,000 stored events; did you mean metadata.tokens?" {
		t.Errorf("the filter's warning: %q", w)
	}
	if u := eval[string](e, `document.querySelector("[data-field=filter] .cm-lintRange-warning")?.textContent || ""`); u != "metadata.to" {
		t.Errorf("underlined as a warning: %q", u)
	}
	// The confirmation warns of both.
	e.do("create?", chromedp.Click(chromedp.CSS(".definition button[type=submit]")))
	e.wait("confirmation", `!!document.querySelector(".dialog .confirm-warnings")`)
	if c := eval[string](e, `document.querySelector(".dialog .confirm-warnings").textContent`); !strings.Contains(c, "Over the last 7 days, "+grouped(sum["value_errors"].(float64))+" of "+grouped(sum["matched_events"].(float64))+" matched calls had a value that failed") || !strings.Contains(c, "metadata.to is in none of your") {
		t.Errorf("the confirmation warns: %s", c)
	}
	e.shot("create-warnings")
	e.axe("create confirmation with warnings")
	e.escape("the confirmation")
	// The fix: no value fails any more, as the API agrees.
	e.do("use the fix", chromedp.Click(chromedp.CSS(".value-note .fix")))
	fixed := "float(metadata.tokens ?? 0)"
	e.wait("fixed preview", `document.querySelector("[data-field=value]").dataset.checked === `+strconv.Quote(fixed)+` && !document.querySelector(".preview").classList.contains("busy") && !document.querySelector(".value-note .callout, .value-note.callout") && document.querySelector("[data-stat=errors] .stat-value").textContent === "0"`)
	// (Its window is the minute it ran in, which may be a later one.)
	ds = eval[map[string]string](e, `Object.assign({}, document.querySelector(".preview").dataset)`)
	sum = e.api("POST", "/v1/backtest", map[string]any{"filter": sumFilter, "value": fixed, "aggregation": "sum",
		"from": ds["from"], "to": ds["to"], "bucket": ds["bucket"], "top": 8})
	if sum["value_errors"].(float64) != 0 || e.stat("total") != grouped(sum["total"].(float64)) || eval[string](e, `document.querySelector("[data-field=value] ~ .editor-msg").textContent`) != "" {
		t.Errorf("after the fix: %s value errors, total %s; API %v", e.stat("errors"), e.stat("total"), sum)
	}
	e.typeInto(`[data-field=value] .cm-content`, "metadata.tokens")
	e.wait("value errors again", `document.querySelector("[data-field=value]").dataset.checked === "metadata.tokens" && !!document.querySelector(".value-note .warn")`)
	e.shot("sum-preview")
	e.axe("new meter, sum preview")
	// A window where nothing matches: the y axis counts 0 and 1, in whole
	// numbers, and the chart says it is empty.
	e.typeInto(`[data-field=filter] .cm-content`, "response.status == 999")
	e.wait("empty preview", `document.querySelector(".preview").dataset.matched === "0" && !document.querySelector(".preview").classList.contains("busy")`)
	if ch := e.chart(".preview .chart"); ch["yTicks"] != `["0","1"]` || ch["unit"] != "sum of metadata.tokens" || !eval[bool](e, `!document.querySelector(".preview .chart-empty").hidden`) {
		t.Errorf("the empty chart: %v", ch)
	}
	e.shot("empty-preview")
	e.do("back to count", chromedp.SetValue(chromedp.CSS("#aggregation"), "count"))
	// Messages in plain words, as the person types.
	filter := `[data-field=filter]`
	checked := func(text string) string {
		return `document.querySelector("[data-field=filter]").dataset.checked === ` + strconv.Quote(text)
	}
	e.typeInto(filter+" .cm-content", "response.status == 200 and")
	e.wait("a trailing and", checked("response.status == 200 and")+` && document.querySelector("[data-field=filter] ~ .editor-msg .err[data-code=syntax_error]")?.textContent === 'Line 1, column 26: "and" needs a condition after it; finish the condition or remove "and"'`)
	// A member access being typed is not an error yet: no red until the
	// cursor leaves it.
	e.typeInto(filter+" .cm-content", "response.status == 200 and request.")
	e.wait("checked", checked("response.status == 200 and request."))
	red := `!!document.querySelector("[data-field=filter] .cm-lintRange-error") || !!document.querySelector("[data-field=filter] ~ .editor-msg .err") || !!document.querySelector("[data-field=filter] .has-error") || !!document.querySelector(".preview .bad, .preview .preview-error")`
	if eval[bool](e, red) {
		t.Errorf("red while typing request.: %s", eval[string](e, `document.querySelector("[data-field=filter] ~ .editor-msg").textContent`))
	}
	e.do("type on", chromedp.SendKeys(chromedp.CSS(filter+" .cm-content"), "rou"))
	e.wait("checked and previewed", checked("response.status == 200 and request.rou")+" && "+previewed("response.status == 200 and request.rou"))
	if eval[bool](e, red) {
		t.Errorf("red while typing request.rou: %s", eval[string](e, `document.querySelector("[data-field=filter] ~ .editor-msg").textContent`))
	}
	e.shot("typing-a-member")
	e.do("leave it", chromedp.Click(chromedp.CSS("#name")))
	e.wait("now it is an error", `document.querySelector("[data-field=filter] .cm-lintRange-error")?.textContent === "rou" && document.querySelector("[data-field=filter] ~ .editor-msg .err")?.textContent.endsWith("unknown field request.rou; did you mean request.route?")`)
	e.typeInto(`[data-field=filter] .cm-content`, badFilter)
	e.wait("error marked", `!!document.querySelector("[data-field=filter] .cm-lintRange-error") && !!document.querySelector(".editor-msg .err[data-code=unknown_field]")`)
	marked := eval[string](e, `document.querySelector("[data-field=filter] .cm-lintRange-error").textContent`)
	if marked != "stauts" {
		t.Errorf("underlined %q, want the misspelt name stauts", marked)
	}
	msg := eval[string](e, `document.querySelector(".editor-msg .err").textContent`)
	if !strings.Contains(msg, "did you mean response.status") || !strings.Contains(msg, "Line 1, column 10:") {
		t.Errorf("error message %q", msg)
	}
	e.shot("new-meter-error")
	e.axe("new meter, error")

	// Fixed: the chart and the totals appear and agree with the API.
	e.typeInto(`[data-field=filter] .cm-content`, goodFilter)
	e.wait("error gone", `!document.querySelector("[data-field=filter] .cm-lintRange-error") && !!document.querySelector(".editor-msg .ok")`)
	e.wait("preview", previewed(goodFilter)+` && document.querySelector(".preview").dataset.total !== undefined && document.querySelector(".preview").dataset.total !== "" && !!document.querySelector(".chart canvas") && document.querySelectorAll(".sample-list li").length > 0`)
	e.shot("new-meter-preview")
	ds = eval[map[string]string](e, `Object.assign({}, document.querySelector(".preview").dataset)`)
	want := e.api("POST", "/v1/backtest", map[string]any{"filter": goodFilter, "aggregation": "count", "group_by": "company_id",
		"from": ds["from"], "to": ds["to"], "bucket": ds["bucket"], "top": 8})
	if got, w := e.stat("total"), grouped(want["total"].(float64)); got != w {
		t.Errorf("total shown %s, API says %s", got, w)
	}
	if got, w := e.stat("matched"), grouped(want["matched_events"].(float64)); got != w {
		t.Errorf("matched shown %s, API says %s", got, w)
	}
	if got, w := e.stat("scanned"), grouped(want["scanned_events"].(float64)); got != w {
		t.Errorf("scanned shown %s, API says %s", got, w)
	}
	if want["matched_events"].(float64) < 100 || want["scanned_events"].(float64) < 10_000 {
		t.Errorf("the generated week should give a real preview: %v", want)
	}
	if got, w := ds["buckets"], strconv.Itoa(len(want["buckets"].([]any))); got != w {
		t.Errorf("chart has %s buckets, API %s", got, w)
	}
	top := want["groups"].([]any)[0].(map[string]any)
	if got := eval[string](e, `document.querySelector(".bars li .key").textContent`); got != top["key"] {
		t.Errorf("top customer shown %q, API %q", got, top["key"])
	}
	if got := eval[string](e, `document.querySelector(".engine .pill").textContent`); got != strings.ToUpper(want["engine"].(string)) {
		t.Errorf("engine shown %q, API %q", got, want["engine"])
	}

	// Quick changes of window: each aborts the request before it, and the
	// preview ends on the last one (30 days per day), never on a stale one.
	e.do("switch windows", chromedp.Evaluate[chromedp.Void](`(() => {
		const seg = (v) => document.querySelector('.preview .seg[data-value="' + v + '"]');
		seg("24h").click(); seg("day").click(); seg("7d").click(); seg("30d").click();
	})()`))
	e.wait("30-day preview", `document.querySelector(".preview").dataset.bucket === "day" && !document.querySelector(".preview").classList.contains("busy") && (new Date(document.querySelector(".preview").dataset.to) - new Date(document.querySelector(".preview").dataset.from)) === 30 * 86400e3`)
	ds = eval[map[string]string](e, `Object.assign({}, document.querySelector(".preview").dataset)`)
	month := e.api("POST", "/v1/backtest", map[string]any{"filter": goodFilter, "aggregation": "count", "from": ds["from"], "to": ds["to"], "bucket": "day"})
	if got, w := e.stat("total"), grouped(month["total"].(float64)); got != w || ds["buckets"] != strconv.Itoa(len(month["buckets"].([]any))) {
		t.Errorf("30-day preview shows %s in %s buckets, API %s in %d", got, ds["buckets"], w, len(month["buckets"].([]any)))
	}
	e.utcChart(".preview .chart", DAY, "calls")

	// A matching sample opens as JSON.
	e.do("open sample", chromedp.Click(chromedp.CSS(".sample-list .sample")))
	e.wait("event dialog", `!!document.querySelector(".dialog pre.json")`)
	if j := eval[string](e, `document.querySelector(".dialog pre.json").textContent`); !strings.Contains(j, `"route": "/v1/search"`) {
		t.Errorf("sample JSON lacks its route: %.200s", j)
	}
	e.shot("sample-event")
	e.axe("sample event dialog")
	e.escape("the sample")

	// Create: the confirmation says what cannot change.
	e.do("bind a price", chromedp.SendKeys(chromedp.CSS("#price"), "price_search_v1"))
	e.do("create", chromedp.Click(chromedp.CSS(".definition button[type=submit]")))
	e.wait("confirmation", `!!document.querySelector(".dialog .callout")`)
	if c := eval[string](e, `document.querySelector(".dialog").textContent`); !strings.Contains(c, "cannot be changed afterwards, only versioned") {
		t.Errorf("confirmation: %s", c)
	}
	e.shot("create-confirm")
	e.axe("create confirmation")
	e.do("confirm", chromedp.Click(chromedp.CSS(".dialog .btn.primary")))
	e.wait("meter page", `!!document.querySelector(".timeline") && location.hash.startsWith("#/meters/mtr_")`)
	id := strings.TrimPrefix(eval[string](e, `location.hash`), "#/meters/")
	if title := eval[string](e, `document.title`); title != "Search calls · meterd" {
		t.Errorf("page title %q", title)
	}
	m := e.api("GET", "/v1/meters/"+id, nil)
	if m["name"] != "Search calls" || m["status"] != "inactive" || m["current"].(map[string]any)["filter"] != goodFilter ||
		m["current"].(map[string]any)["stripe_price_id"] != "price_search_v1" || m["created_by"] != actorName {
		t.Fatalf("created meter: %v", m)
	}
	e.wait("usage chart", `!!document.querySelector(".chart canvas") && !!document.querySelector("[data-stat=total]")`)
	e.shot("meter-detail")

	// Rename it in place (Enter saves).
	e.do("rename", chromedp.Click(chromedp.CSS(`button[aria-label="Rename the meter"]`)))
	e.wait("name input", `document.activeElement?.classList.contains("rename")`)
	e.do("new name", chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)), chromedp.SendKeys(chromedp.CSS("input.rename"), "Search API calls"+kb.Enter))
	e.wait("renamed", `document.querySelector(".meter-name")?.textContent === "Search API calls" && !!document.querySelector(".tl-item[data-kind=renamed] del")`)
	if n := e.api("GET", "/v1/meters/"+id, nil)["name"]; n != "Search API calls" {
		t.Errorf("after renaming: %v", n)
	}

	// Switch it on: the API agrees and the timeline shows it.
	e.do("switch on", chromedp.Click(chromedp.CSS("button.switch")))
	e.wait("switched on", `document.querySelector("button.switch")?.getAttribute("aria-checked") === "true" && !!document.querySelector(".tl-item[data-kind=status]")`)
	if s := e.api("GET", "/v1/meters/"+id, nil)["status"]; s != "active" {
		t.Errorf("after the switch: status %v", s)
	}

	// A new version: only GET searches. It shows in the timeline as a diff.
	e.do("new version", chromedp.Click(chromedp.CSS(`a[href="#/meters/`+id+`/version"]`)))
	e.wait("version form", `document.querySelectorAll(".cm-content").length === 2 && document.querySelector("#name").disabled`)
	e.do("append to filter", chromedp.Click(chromedp.CSS(`[data-field=filter] .cm-content`)), chromedp.KeyEvent(kb.End, chromedp.KeyModifiers(chromedp.ModifierCtrl)), chromedp.SendKeys(chromedp.CSS(`[data-field=filter] .cm-content`), ` and request.verb == "GET"`))
	e.wait("preview of v2", `document.querySelector(".preview").dataset.total > 0 && !document.querySelector(".preview").classList.contains("busy")`)
	// It takes effect at a set time: the start of next month (UTC).
	e.do("schedule", chromedp.Click(chromedp.CSS(`.eff-row .seg[data-value=at]`)))
	e.wait("time input", `!document.querySelector("#effective_from").hidden && document.querySelector("#effective_from").value !== ""`)
	eff := eval[string](e, `document.querySelector("#effective_from").value + ":00Z"`)
	e.shot("new-version")
	e.do("save version", chromedp.Click(chromedp.CSS(".definition button[type=submit]")))
	e.wait("confirmation", `!!document.querySelector(".dialog .btn.primary")`)
	e.do("confirm", chromedp.Click(chromedp.CSS(".dialog .btn.primary")))
	e.wait("v2 in the timeline", `!!document.querySelector(".tl-item[data-kind=version][data-version='2'] ins")`)
	if ins := eval[string](e, `document.querySelector(".tl-item[data-kind=version] ins").textContent`); !strings.Contains(ins, "and") {
		t.Errorf("diff inserted %q", ins)
	}
	v := e.api("GET", "/v1/meters/"+id+"/versions", nil)
	if vs := v["versions"].([]any); len(vs) != 2 || vs[1].(map[string]any)["filter"] != goodFilter+` and request.verb == "GET"` ||
		vs[1].(map[string]any)["created_by"] != actorName || !sameTime(vs[1].(map[string]any)["effective_from"], eff) {
		t.Fatalf("versions: %v", vs)
	}
	e.wait("chart", `!!document.querySelector(".chart canvas")`)
	e.shot("meter-timeline")
	e.axe("meter page")

	// The list shows it with its price and a 7-day sparkline.
	e.do("list", chromedp.Navigate(e.url+"/#/meters"))
	e.wait("sparkline", `!!document.querySelector(".usage-cell svg.spark") && document.querySelector(".usage-total")?.textContent !== ""`)
	if row := eval[string](e, `document.querySelector(".meters-table tbody tr").textContent`); !strings.Contains(row, "Search API calls") || !strings.Contains(row, "price_search_v1") || !strings.Contains(row, "v2") || !strings.Contains(row, "active") {
		t.Errorf("list row: %s", row)
	}
	e.shot("meters-list")

	// Archive, after a confirmation.
	e.do("detail", chromedp.Click(chromedp.CSS(".row-link")))
	e.wait("detail", `!!document.querySelector(".timeline")`)
	e.do("archive", chromedp.Click(chromedp.CSS(".btn.danger-ghost")))
	e.wait("archive confirmation", `!!document.querySelector(".dialog .btn.danger")`)
	e.shot("archive-confirm")
	e.do("confirm archive", chromedp.Click(chromedp.CSS(".dialog .btn.danger")))
	e.wait("archived", `!!document.querySelector(".badge.archived") && !!document.querySelector(".tl-item[data-kind=archived]") && document.querySelector("button.switch").disabled`)
	if s := e.api("GET", "/v1/meters/"+id, nil)["status"]; s != "archived" {
		t.Errorf("after archiving: status %v", s)
	}
	e.shot("meter-archived")

	// Events: newest first, filter by company, open one.
	e.do("events", chromedp.Navigate(e.url+"/#/events"))
	e.wait("rows", `document.querySelectorAll(".events-table tbody tr.clickable").length === 50 && !!document.querySelector("[data-stat=metadata-keys]")`)
	e.shot("events")
	// The metadata keys card: distinct keys, the most common first (a key
	// seen with two JSON types counts once).
	byKey := map[string]float64{}
	for _, k := range e.api("GET", "/v1/events/stats", nil)["metadata_keys"].([]any) {
		k := k.(map[string]any)
		byKey[k["key"].(string)] += k["count"].(float64)
	}
	keys := slices.Collect(maps.Keys(byKey))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(byKey[b], byKey[a]), cmp.Compare(a, b)) })
	wantKeys := fmt.Sprintf("%s and %d more", strings.Join(keys[:5], ", "), len(keys)-5)
	if got := eval[[]string](e, `[...document.querySelectorAll("[data-stat=metadata-keys] span")].map(s => s.textContent)`); got[1] != strconv.Itoa(len(keys)) || got[2] != wantKeys || !strings.Contains(got[2], "region") || !strings.Contains(got[2], "tokens") {
		t.Errorf("metadata keys card %q, want %d and %q", got, len(keys), wantKeys)
	}
	first := eval[string](e, `document.querySelector(".events-table tbody tr.clickable").dataset.id`)
	e.do("load more", chromedp.Click(chromedp.CSS(".table-foot .btn")))
	e.wait("100 rows", `document.querySelectorAll(".events-table tbody tr.clickable").length === 100`)
	ids := eval[[]string](e, `[...document.querySelectorAll(".events-table tbody tr.clickable")].map(r => r.dataset.id)`)
	if ids[0] != first {
		t.Errorf("after Load more the first row is %s, was %s", ids[0], first)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("event %s listed twice", id)
		}
		seen[id] = true
	}
	e.typeInto("#company_id", "company-7")
	e.do("filter", chromedp.Click(chromedp.CSS(".filters button[type=submit]")))
	e.wait("filtered", `[...document.querySelectorAll(".events-table tbody tr.clickable")].length > 0 && [...document.querySelectorAll(".events-table tbody tr.clickable td:nth-child(4)")].every(td => td.textContent === "company-7")`)
	e.do("open event", chromedp.Focus(chromedp.CSS(".events-table tbody tr.clickable")), chromedp.KeyEvent(kb.Enter))
	e.wait("event JSON", `!!document.querySelector(".dialog pre.json") && document.querySelector(".dialog pre.json").textContent.includes('"company_id": "company-7"')`)
	e.shot("event-json")
	e.escape("the event")

	// Route and status: the rows and the count agree with the API.
	e.typeInto("#company_id", " ")
	e.typeInto("#route", "/v2/orders")
	e.typeInto("#status", "4xx")
	e.do("filter calls", chromedp.Click(chromedp.CSS(".filters button[type=submit]")))
	wantCount := grouped(e.api("GET", "/v1/events/stats?route=/v2/orders&status=4xx", nil)["count"].(float64))
	e.wait("route+status", `(() => { const rows = [...document.querySelectorAll(".events-table tbody tr.clickable")];
		return rows.length > 0 && rows.every(r => r.querySelector(".route").textContent === "/v2/orders" && r.querySelector(".status").textContent.startsWith("4"))
			&& document.querySelector(".stats .stat-value").textContent === `+strconv.Quote(wantCount)+`; })()`)
	e.shot("events-filtered")
	e.typeInto("#status", "4x")
	e.do("bad status", chromedp.Click(chromedp.CSS(".filters button[type=submit]")))
	e.wait("status error at its field", `document.querySelector("#status").getAttribute("aria-invalid") === "true" && document.querySelector("#status").getAttribute("aria-describedby") === "filter-error" && document.querySelector("#filter-error").textContent.includes("status must be") && !document.querySelector(".events-table .form-error")`)
	e.shot("events-bad-status")
	// Nothing matches: the filters clear in one step.
	e.typeInto("#status", "404")
	e.typeInto("#company_id", "nobody")
	e.do("filter nobody", chromedp.Click(chromedp.CSS(".filters button[type=submit]")))
	e.wait("no events", `document.querySelector(".events-table .empty h3")?.textContent === "No events" && document.querySelector("#filter-error").hidden && document.querySelector("#status").getAttribute("aria-invalid") === "false"`)
	e.do("clear", chromedp.Click(chromedp.CSS(".events-table .empty button")))
	e.wait("every event", `document.querySelectorAll(".events-table tbody tr.clickable").length === 50 && document.querySelector("#company_id").value === "" && document.querySelector("#status").value === "" && location.hash === "#/events"`)

	e.billing(id)
	rule, orders := e.governance()

	// Every page on a wide screen and on a phone: no page wider than the
	// screen, no table scrolling sideways, and each kind of dialog fits
	// the screen, its close button in view, and closes with it.
	pages := []screenPage{
		{"meters", "#/meters", `!!document.querySelector(".meters-table")`, nil},
		{"meter", "#/meters/" + orders, `!!document.querySelector(".timeline") && !!document.querySelector(".chart canvas") && !!document.querySelector(".chart-mark")`, []dialogOpener{
			{"archive confirmation", chromedp.Click(chromedp.CSS(".btn.danger-ghost"))},
		}},
		{"new-meter", "#/meters/new", `document.querySelectorAll(".cm-content").length === 2`, []dialogOpener{
			{"sample event", chromedp.Steps(
				chromedp.Click(chromedp.CSS(`[data-field=filter] .cm-content`)), chromedp.SendKeys(chromedp.CSS(`[data-field=filter] .cm-content`), goodFilter),
				waitFor(`document.querySelectorAll(".sample-list .sample").length > 0`), chromedp.Click(chromedp.CSS(".sample-list .sample")))},
			{"create confirmation", chromedp.Steps(chromedp.SendKeys(chromedp.CSS("#name"), "On a phone"), chromedp.Click(chromedp.CSS(".definition button[type=submit]")))},
		}},
		{"events", "#/events", `document.querySelectorAll(".events-table tbody tr.clickable").length > 0`, []dialogOpener{
			{"event", chromedp.Click(chromedp.CSS(".events-table tbody tr.clickable"))},
		}},
		{"billing", "#/billing", `document.querySelectorAll(".reports-table tbody tr").length > 0`, []dialogOpener{
			{"report", chromedp.Click(chromedp.CSS(".reports-table tbody tr"))},
		}},
		{"governance", "#/governance", `!!document.querySelector(".rules-table")`, nil},
		{"rule", "#/governance/rules/" + rule, `!!document.querySelector(".timeline") && !!document.querySelector(".match-table")`, []dialogOpener{
			{"archive confirmation", chromedp.Click(chromedp.CSS(".btn.danger-ghost"))},
		}},
		{"rule-version", "#/governance/rules/" + rule + "/version", `document.querySelectorAll(".cm-content").length === 2 && document.querySelectorAll("[data-rows=routes] .kv-row").length === 1`, []dialogOpener{
			{"save confirmation", chromedp.Click(chromedp.CSS(".definition button[type=submit]"))},
		}},
		{"customer", "#/governance/customers/company/company-3", `!!document.querySelector(".held-rules li")`, nil},
		{"meter-version", "#/meters/" + orders + "/version", `document.querySelectorAll(".cm-content").length === 2 && !!document.querySelector(".preview .chart canvas")`, nil},
		{"new-rule", "#/governance/new", `document.querySelectorAll(".cm-content").length === 2`, nil},
		{"lookup", "#/governance/customers", `!!document.querySelector("#lookup-id")`, nil},
	}
	e.screen("wide", 1440, 900, pages)
	// The meter's usage chart marks where version 2 took effect (now: the
	// last day's bar) and is in UTC like the preview's.
	e.do("orders", chromedp.Navigate(e.url+"/#/meters/"+orders))
	e.wait("usage chart", `!!document.querySelector(".chart .chart-mark[data-version='2']")`)
	v2 := e.api("GET", "/v1/meters/"+orders+"/versions", nil)["versions"].([]any)[1].(map[string]any)["effective_from"].(string)
	if m := eval[[]string](e, `(() => { const m = document.querySelector(".chart-mark"), o = document.querySelector(".chart .u-over").getBoundingClientRect(), r = m.getBoundingClientRect();
		return [m.textContent, m.title, String(r.left >= o.left + o.width * 0.9 && r.left <= o.right)]; })()`); m[0] != "v2" || !strings.Contains(m[1], "version 2 in force from") || m[2] != "true" {
		t.Errorf("version 2's mark (in force from %s): %v", v2, m)
	}
	e.utcChart(".chart", DAY, "calls")
	e.screen("phone", 390, 844, pages)
	if s := e.api("GET", "/v1/governance/rules/"+rule, nil)["status"]; s != "active" {
		t.Errorf("after closing its dialogs the rule is %v", s)
	}
	if n := len(e.api("GET", "/v1/meters", nil)["meters"].([]any)); n != 2 {
		t.Errorf("after closing the create confirmation there are %d meters", n)
	}

	// The event's JSON scrolls by keyboard.
	e.do("events", chromedp.Navigate(e.url+"/#/events"))
	e.wait("events", `document.querySelectorAll(".events-table tbody tr.clickable").length > 0`)
	e.do("open", chromedp.Evaluate[chromedp.Void](`document.querySelector(".events-table tbody tr.clickable").focus()`), chromedp.KeyEvent(kb.Enter))
	e.wait("JSON", `!!document.querySelector(".dialog pre.json") && document.querySelector(".dialog pre.json").scrollHeight > document.querySelector(".dialog pre.json").clientHeight`)
	for i := 0; i < 4 && eval[string](e, `document.activeElement.getAttribute("aria-label") || ""`) != "The event as JSON"; i++ {
		e.do("tab", chromedp.KeyEvent(kb.Tab))
	}
	if f := eval[string](e, `document.activeElement.getAttribute("aria-label") || document.activeElement.tagName`); f != "The event as JSON" {
		t.Errorf("Tab does not reach the JSON panel: the focus is on %q", f)
	}
	e.do("scroll", chromedp.KeyEvent(kb.PageDown))
	e.wait("scrolled", `document.querySelector(".dialog pre.json").scrollTop > 0`)
	e.escape("the event")

	// Archive the rule on the phone.
	e.do("rule page", chromedp.Navigate(e.url+"/#/governance/rules/"+rule))
	e.wait("rule page", `!!document.querySelector(".btn.danger-ghost")`)
	// Archived for good: the list shows it apart.
	e.do("archive", chromedp.Click(chromedp.CSS(".btn.danger-ghost")))
	e.wait("dialog", `!!document.querySelector(".dialog .btn.danger")`)
	e.do("confirm", chromedp.Click(chromedp.CSS(".dialog .btn.danger")))
	e.wait("archived", `!!document.querySelector(".badge.archived") && !!document.querySelector(".tl-item[data-kind=archived]")`)
	if s := e.api("GET", "/v1/governance/rules/"+rule, nil)["status"]; s != "archived" {
		t.Errorf("after archiving: status %v", s)
	}
	e.do("governance", chromedp.Navigate(e.url+"/#/governance"))
	e.wait("archived apart", `document.querySelector(".empty h3")?.textContent === "No rule in use" && !!document.querySelector(".archived-rules tr[data-id='`+rule+`']")`)
	e.do("open archived", chromedp.Click(chromedp.CSS(".archived-rules summary")))
	e.shot("phone-governance-archived")

	e.mu.Lock()
	for _, x := range e.thrown {
		t.Errorf("the page threw: %s", x)
	}
	e.mu.Unlock()

	// Signing out forgets the token.
	e.do("sign out", chromedp.Click(chromedp.CSS(`button[aria-label="Sign out"]`)))
	e.wait("sign-in again", `!!document.querySelector("#token") && !sessionStorage.getItem("meterd.token")`)
	e.shot("phone-signin")
	e.axe("phone-signin")
	if w := eval[float64](e, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the sign-in page is %v px wide on a 390 px phone", w)
	}
}

// billing walks through the Stripe settings and the report ledger, or,
// on a server without the billing API, checks that the page says so.
func (e *env) billing(meterID string) {
	t := e.t
	e.do("billing", chromedp.Navigate(e.url+"/#/billing"))
	req, _ := http.NewRequest("GET", e.url+"/v1/billing/stripe", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode == 404 && body.Code == "not_found" {
		e.wait("no billing here", `document.querySelector(".empty h3")?.textContent === "Billing is not available on this server"`)
		e.shot("billing-unavailable")
		return
	}
	if body.Code != "not_configured" {
		t.Fatalf("GET /v1/billing/stripe on a new server: %d %s", resp.StatusCode, body.Code)
	}
	// Not configured: the form, with the webhook URL to copy.
	e.wait("stripe form", `!!document.querySelector("#api_key") && !!document.querySelector(".webhook code.url")`)
	if u := eval[string](e, `document.querySelector(".webhook code.url").textContent`); u != e.url+"/v1/stripe/webhook" {
		t.Errorf("webhook URL shown %q", u)
	}
	e.shot("billing-connect")
	// A Stripe API that does not answer: the check says so (the library's
	// words, which name the host, are only logged).
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	e.do("fill", chromedp.SendKeys(chromedp.CSS("#api_key"), "sk_test_uitest0000wxyz"), chromedp.SendKeys(chromedp.CSS("#webhook_secret"), "whsec_uitest"))
	e.typeInto("#api_base", closed.URL)
	e.do("save", chromedp.Click(chromedp.CSS(".stripe-form button[type=submit]")))
	e.wait("settings shown", `!!document.querySelector(".card .def") && document.querySelector(".card .def").textContent.includes("sk_…wxyz")`)
	st := e.api("GET", "/v1/billing/stripe", nil)
	if st["api_key_last4"] != "wxyz" || st["webhook_secret_set"] != true || st["updated_by"] != actorName || st["api_base"] != closed.URL {
		t.Errorf("saved settings: %v", st)
	}
	e.do("check", chromedp.Click(chromedp.CSS(".head-actions .btn")))
	e.wait("check failed", `!!document.querySelector(".check-result .pill.err")`)
	if !strings.Contains(eval[string](e, `document.querySelector(".check-result").textContent`), "Stripe could not be reached") {
		t.Errorf("failed check: %s", eval[string](e, `document.querySelector(".check-result").textContent`))
	}
	// No billing worker runs next to this test server: the page says so;
	// once one marks itself alive, it names it.
	e.wait("no worker", `document.querySelector(".worker-status")?.textContent.includes("no billing worker is running")`)
	worker := time.Now().UTC().Format("20060102T150405.000000Z") + "/ui-test/1"
	if err := e.store.Beat(context.Background(), worker, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.do("reload billing", chromedp.Reload())
	e.wait("worker", `document.querySelector(".worker-status code")?.textContent === `+strconv.Quote(worker)+` && document.querySelector(".worker-status").textContent.includes("runs the cycles")`)
	e.shot("billing-settings")
	e.axe("billing settings")

	// Against stripe-mock (which .ci/run starts), the check passes.
	if mock := os.Getenv("METERD_TEST_STRIPE_MOCK"); mock != "" {
		e.do("edit", chromedp.Click(chromedp.CSS(".head-actions .btn:last-child")))
		e.wait("form", `!!document.querySelector("#api_base")`)
		e.typeInto("#api_base", mock)
		// Another API without the key: refused, the key stays where it was entered.
		e.do("save without the key", chromedp.Click(chromedp.CSS(".stripe-form button[type=submit]")))
		e.wait("key required", `document.querySelector(".form-error")?.textContent.startsWith("api_key: ")`)
		e.do("enter the key", chromedp.SendKeys(chromedp.CSS("#api_key"), "sk_test_uitest0000wxyz"))
		e.do("save", chromedp.Click(chromedp.CSS(".stripe-form button[type=submit]")))
		e.wait("saved", `!!document.querySelector(".card .def") && document.querySelector(".card .def").textContent.includes(`+strconv.Quote(mock)+`)`)
		e.do("check", chromedp.Click(chromedp.CSS(".head-actions .btn")))
		e.wait("connected", `!!document.querySelector(".check-result .pill.ok")`)
	} else if os.Getenv("CI") == "true" {
		t.Error("METERD_TEST_STRIPE_MOCK is not set, and CI=true")
	} else {
		t.Log("METERD_TEST_STRIPE_MOCK not set: the successful connection check is not exercised")
	}

	// The ledger, as the billing worker writes it: an intent (pending)
	// before each request, then its outcome; after a definite 5xx the
	// request goes again under its next key. Stripe's errors are stored as
	// stripe-go renders them: JSON.
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	start := time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
	hour := at.Add(-2 * time.Hour).Truncate(time.Hour)
	rejected := `{"code":"resource_missing","doc_url":"https://stripe.com/docs/error-codes/resource-missing","status":400,"message":"No such subscription item: 'si_gone'","param":"subscription_item","request_id":"req_9x","type":"invalid_request_error"}`
	unavailable := `{"status":503,"message":"Stripe is temporarily unavailable","request_id":"req_503","type":"api_error"}`
	n := 0
	write := func(r billing.Report, key, status string, gen int, answer func(*billing.Report)) {
		n++
		r.Key, r.Status, r.Generation = key, status, gen
		r.Mode, r.MeterID, r.MeterVersion, r.PriceID = billing.ModeMeterEvents, meterID, 1, "price_search_v1"
		r.PeriodStart, r.PeriodEnd, r.Bucket, r.AttemptAt = start, start.AddDate(0, 1, 0), hour, at.Add(time.Duration(n)*time.Minute)
		if answer != nil {
			answer(&r)
		}
		body, _ := json.Marshal(r)
		if err := e.store.AppendJournal(context.Background(), storage.JournalEntry{Stream: storage.StreamBillingLedger,
			Key: fmt.Sprintf("%03d/%s/%s", n, r.Key, r.Status), At: r.AttemptAt, Body: string(body)}); err != nil {
			t.Fatal(err)
		}
	}
	sent := billing.Report{Customer: "company-7", StripeCustomer: "cus_A7", Quantity: 120, Total: 120}
	refused := billing.Report{Customer: "company-9", StripeCustomer: "cus_A9", Quantity: 30, Total: 30}
	renewed := billing.Report{Customer: "company-7", StripeCustomer: "cus_A7", Quantity: 5, Total: 125}
	timedOut := billing.Report{Customer: "company-7", StripeCustomer: "cus_A7", Quantity: 7, Total: 132}
	write(sent, "k1", billing.StatusPending, 0, nil)
	write(sent, "k1", billing.StatusSent, 0, func(r *billing.Report) { r.Answer, r.Attempts = "mbur_1", 1 })
	write(refused, "k2", billing.StatusPending, 0, nil)
	write(refused, "k2", billing.StatusRejected, 0, func(r *billing.Report) { r.HTTPStatus, r.Error, r.Answer, r.Attempts = 400, rejected, "req_9x", 1 })
	write(renewed, "k3", billing.StatusPending, 0, nil)
	write(renewed, "k3", billing.StatusFailed, 0, func(r *billing.Report) { r.HTTPStatus, r.Error, r.Answer, r.Attempts = 503, unavailable, "req_503", 1 })
	write(renewed, "k3-1", billing.StatusPending, 1, nil)
	write(timedOut, "k4", billing.StatusPending, 0, nil)
	write(timedOut, "k4", billing.StatusFailed, 0, func(r *billing.Report) { r.Error, r.Attempts = "context deadline exceeded", 6 })
	// A price Stripe refused is listed once, the reason in its note.
	write(refused, "meterd-nometer-1", billing.StatusRejected, 0, func(r *billing.Report) {
		r.Note = `price price_search_v1: {"code":"resource_missing","status":404,"message":"No such price: 'price_search_v1'","param":"id","request_id":"req_404","type":"invalid_request_error"}`
	})
	e.do("reload", chromedp.Navigate(e.url+"/#/billing"), chromedp.Reload())
	// One row per report, at its latest state; the counts count reports.
	e.wait("five reports", `document.querySelectorAll(".reports-table tbody tr").length === 5`)
	rows := eval[map[string]string](e, `Object.fromEntries([...document.querySelectorAll(".reports-table tbody tr")].map(tr => [tr.dataset.key, tr.textContent]))`)
	for key, want := range map[string][]string{
		"k1":               {"Sent", "company-7", "Search API calls", "120", "mbur_1"},
		"k2":               {"Rejected", "company-9", "400 No such subscription item: 'si_gone'"},
		"k3-1":             {"Pending", "company-7", "waiting for Stripe", "3 entries"},
		"k4":               {"Failed", "company-7", "context deadline exceeded"},
		"meterd-nometer-1": {"Rejected", "company-9", "price price_search_v1: No such price: 'price_search_v1'"},
	} {
		for _, w := range append(want, hour.Format("2 Jan, 15:04")) {
			if !strings.Contains(rows[key], w) {
				t.Errorf("report %s's row lacks %q: %s", key, w, rows[key])
			}
		}
		if strings.Contains(rows[key], "{") {
			t.Errorf("report %s's row shows raw JSON: %s", key, rows[key])
		}
	}
	if c := eval[string](e, `document.querySelector(".counts").textContent`); c != "Failed: 1Pending: 1Rejected: 2Sent: 1" {
		t.Errorf("counts %q, want one report of each status, two rejected", c)
	}
	if th := eval[string](e, `document.querySelector(".reports-table thead").textContent`); !strings.Contains(th, "Hour (UTC)") || strings.Contains(th, "Sent") {
		t.Errorf("the columns: %s", th)
	}
	e.shot("billing-ledger")
	e.axe("billing ledger")
	// Pending: the report renewed after a 503, with its three entries.
	e.do("pending", chromedp.SetValue(chromedp.CSS("#report-status"), "pending")) // (SetValue sends input and change)
	e.wait("the pending one", `document.querySelectorAll(".reports-table tbody tr").length === 1 && document.querySelector(".reports-table tbody tr").dataset.key === "k3-1" && location.hash.includes("status=pending")`)
	e.do("open it", chromedp.Evaluate[chromedp.Void](`document.querySelector(".reports-table tbody tr").focus()`), chromedp.KeyEvent(kb.Enter))
	e.wait("its attempts", `document.querySelectorAll(".dialog .attempts li").length === 3`)
	if got := eval[[]string](e, `[...document.querySelectorAll(".dialog .attempts li")].map(li => li.dataset.status + " " + li.querySelector(".wrap").textContent)`); strings.Join(got, ", ") != "pending key k3, failed key k3, pending key k3-1" {
		t.Errorf("attempts %v", got)
	}
	if d := eval[string](e, `document.querySelector(".dialog").textContent`); !strings.Contains(d, "503 Stripe is temporarily unavailable") || !strings.Contains(d, hour.Format("2 Jan 2006, 15:04")+"–") {
		t.Errorf("the report's dialog: %s", d)
	}
	e.shot("billing-report")
	e.axe("billing report dialog")
	e.escape("the report")
	e.do("any status", chromedp.SetValue(chromedp.CSS("#report-status"), ""))
	e.typeInto("#customer", "company-7")
	e.do("filter", chromedp.Click(chromedp.CSS("section[aria-label='Usage reports'] .filters button[type=submit]")))
	e.wait("company-7's", `document.querySelectorAll(".reports-table tbody tr").length === 3 && location.hash.includes("customer=company-7")`)
	// Nothing matches: the filters clear in one step.
	e.typeInto("#customer", "nobody")
	e.do("filter", chromedp.Click(chromedp.CSS("section[aria-label='Usage reports'] .filters button[type=submit]")))
	e.wait("no report", `document.querySelector("section[aria-label='Usage reports'] .empty h3")?.textContent === "No reports"`)
	e.do("clear", chromedp.Click(chromedp.CSS("section[aria-label='Usage reports'] .empty button")))
	e.wait("all again", `document.querySelectorAll(".reports-table tbody tr").length === 5 && document.querySelector("#customer").value === "" && location.hash === "#/billing"`)
}
