package web_test

import (
	"context"
	"time"

	"github.com/chromedp/chromedp"
)

// screenPage is a page the test views on each screen: where it is, when
// it is ready, and how to open each kind of dialog it has.
type screenPage struct {
	name, hash, ready string
	dialogs           []dialogOpener
}

type dialogOpener struct {
	name string
	open chromedp.Action[chromedp.Void]
}

// waitFor polls a JavaScript condition, as a step of an action.
func waitFor(cond string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))(ctx, t)
		return chromedp.Void{}, err
	})
}

// screen views each page on a w x h screen (a phone below 760 px): axe
// finds nothing, neither the page nor any table in it is wider than the
// screen, and each dialog lies within the screen with its close button,
// which closes it.
func (e *env) screen(label string, w, h int64, pages []screenPage) {
	t := e.t
	t.Helper()
	if w < 760 {
		e.do(label, chromedp.EmulateViewport(w, h, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	} else {
		e.do(label, chromedp.EmulateViewport(w, h))
	}
	for _, p := range pages {
		name := label + "-" + p.name
		e.do(name, chromedp.Navigate(e.url+"/"+p.hash))
		e.wait(name, p.ready)
		e.shot(name)
		e.axe(name)
		wide := eval[[]string](e, `[document.documentElement, ...document.querySelectorAll(".table-wrap, .dialog-body")]
			.filter(el => el.scrollWidth > el.clientWidth + 1).map(el => el.className || el.tagName)`)
		if len(wide) > 0 {
			t.Errorf("%s at %dx%d scrolls sideways: %v", p.hash, w, h, wide)
		}
		if cut := eval[[]string](e, cutPlaceholders); len(cut) > 0 {
			t.Errorf("%s at %dx%d cuts placeholders off: %v", p.hash, w, h, cut)
		}
		for _, d := range p.dialogs {
			dn := name + "-" + d.name
			e.do(dn, d.open)
			e.wait(dn, `!!document.querySelector(".dialog") && !document.querySelector(".dialog .spinner")`)
			e.shot(dn)
			e.axe(dn)
			r := eval[[]float64](e, `(() => { const d = document.querySelector(".dialog").getBoundingClientRect(),
				c = document.querySelector('.dialog button[aria-label="Close"]').getBoundingClientRect(),
				b = document.querySelector(".dialog-body");
				return [d.left, d.top, d.right, d.bottom, c.left, c.top, c.right, c.bottom, innerWidth, innerHeight, b.scrollWidth - b.clientWidth, document.documentElement.scrollWidth - innerWidth]; })()`)
			if r[0] < 0 || r[1] < 0 || r[2] > r[8] || r[3] > r[9] || r[4] < 0 || r[5] < 0 || r[6] > r[8] || r[7] > r[9] || r[10] > 1 || r[11] > 0 {
				t.Errorf("%s's dialog on a %dx%d screen: dialog %v, close button %v, body %v px and page %v px too wide", dn, w, h, r[0:4], r[4:8], r[10], r[11])
			}
			e.do("close "+dn, chromedp.Click(chromedp.CSS(`.dialog button[aria-label="Close"]`)))
			e.wait("closed "+dn, `!document.querySelector(".backdrop")`)
		}
	}
}

// cutPlaceholders lists the visible empty inputs whose placeholder does
// not fit in them: written as their value (no event is sent), it scrolls
// (this counts the room a search field keeps for its clear button).
const cutPlaceholders = `[...document.querySelectorAll("input[placeholder]")].filter(el => el.offsetParent && el.value === "").filter(el => {
	el.value = el.placeholder;
	const cut = el.scrollWidth > el.clientWidth;
	el.value = "";
	return cut;
}).map(el => "#" + el.id + " " + JSON.stringify(el.placeholder) + " in " + el.clientWidth + " px")`
