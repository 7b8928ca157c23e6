package web_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// axe-core (a dev dependency in web/package.json, installed by
// web/build.sh's npm ci) checks the page the browser shows against WCAG
// 2.1 A and AA: contrast, names, roles, keyboard access to scrolling
// regions. Every violation fails the test.
var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile("node_modules/axe-core/axe.min.js")
	return string(b), err
})

// axeRun is what the page runs: the violations, each with the elements
// it found and why, as text.
const axeRun = `axe.run({exclude: [".toast.leaving"]}, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, resultTypes: ["violations"]})
	.then(r => r.violations.map(v => v.id + " (" + v.impact + "): " + v.help + "\n" +
		v.nodes.slice(0, 8).map(n => "    " + n.target.join(" ") + ": " + (n.failureSummary || "").replace(/\s+/g, " ").slice(0, 240)).join("\n") +
		(v.nodes.length > 8 ? "\n    ... and " + (v.nodes.length - 8) + " more" : "")))`

// axe checks the current page (with its open dialog, if any) and fails
// the test for each violation. A toast fading out is left out: axe would
// read its colours half-way.
func (e *env) axe(where string) {
	e.t.Helper()
	src, err := axeSource()
	if err != nil {
		if os.Getenv("CI") == "true" {
			e.t.Fatalf("axe-core: %v (web/build.sh installs it)", err)
		}
		e.t.Logf("axe-core not installed (run web/build.sh): %s not checked", where)
		return
	}
	if !eval[bool](e, `typeof axe === "object"`) {
		eval[bool](e, src+";true")
	}
	// Let transitions end: axe reads colours as drawn.
	e.do("settle", chromedp.Sleep(300*time.Millisecond))
	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	defer cancel()
	found, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		e.t.Fatalf("axe, %s: %v", where, err)
	}
	for _, v := range found {
		e.t.Errorf("axe, %s: %s", where, v)
	}
	if len(found) > 0 {
		e.shot("axe-" + strings.ReplaceAll(where, " ", "-"))
	}
}
