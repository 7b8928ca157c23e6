package web_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

const DAY = 86400

// chart is what a usage chart shows (its dataset: ticks, scale, unit).
func (e *env) chart(sel string) map[string]string {
	e.t.Helper()
	return eval[map[string]string](e, `Object.assign({}, document.querySelector(`+strconv.Quote(sel)+`).dataset)`)
}

// utcChart checks a chart of step-long buckets in a browser outside UTC:
// its ticks fall on UTC midnights (or hours) and are named as the
// tooltip names a bucket (24 Nov; 24 Nov 2026 UTC), the first and last
// bars are whole, and the y axis names its unit.
func (e *env) utcChart(sel string, step int64, unit string) {
	t := e.t
	t.Helper()
	ch := e.chart(sel)
	var ticks [][2]any
	if err := json.Unmarshal([]byte(ch["xTicks"]), &ticks); err != nil || len(ticks) < 2 {
		t.Fatalf("%s's x ticks %q: %v", sel, ch["xTicks"], err)
	}
	for _, tk := range ticks {
		at := int64(tk[0].(float64))
		want := time.Unix(at, 0).UTC().Format("15:04")
		if at%DAY == 0 {
			want = time.Unix(at, 0).UTC().Format("2 Jan")
		}
		if at%step != 0 {
			t.Errorf("%s: a tick at %s, not on a UTC %s", sel, time.Unix(at, 0).UTC(), map[int64]string{DAY: "day", 3600: "hour"}[step])
		} else if tk[1] != want {
			t.Errorf("%s: the tick at %s is named %q, want %q", sel, time.Unix(at, 0).UTC(), tk[1], want)
		}
	}
	num := func(k string) float64 { f, _ := strconv.ParseFloat(ch[k], 64); return f }
	if num("xMin") > num("first")-float64(step)/2 || num("xMax") < num("last")+float64(step)/2 {
		t.Errorf("%s spans %v to %v: the bars at %v and %v are cut", sel, ch["xMin"], ch["xMax"], ch["first"], ch["last"])
	}
	if ch["unit"] != unit {
		t.Errorf("%s's y axis says %q, want %q", sel, ch["unit"], unit)
	}
	// Hover the first bar: the tooltip names its bucket as the axis does.
	box := eval[[]float64](e, `(() => { const r = document.querySelector(`+strconv.Quote(sel+" .u-over")+`).getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	x := box[0] + (num("first")-num("xMin"))/(num("xMax")-num("xMin"))*box[2]
	e.do("hover the first bar", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, box[1]+box[3]-4))
	e.wait("tooltip", `!document.querySelector(`+strconv.Quote(sel+" .chart-tip")+`).hidden`)
	first := time.Unix(int64(num("first")), 0).UTC()
	want := first.Format("2 Jan 2006") + " UTC"
	if step != DAY {
		want = first.Format("2 Jan 2006, 15:04") + "–"
	}
	if tip := eval[string](e, `document.querySelector(`+strconv.Quote(sel+" .chart-tip")+`).textContent`); !strings.Contains(tip, want) {
		t.Errorf("%s: the first bar's tooltip %q lacks %q", sel, tip, want)
	}
}
