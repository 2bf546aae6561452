package console

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// a11yProblems lists what a screen reader or keyboard user would miss on
// the page shown: form controls without a label, buttons and links
// without text, tables without header cells, charts without a text
// alternative, clickable elements that are not links or buttons.
const a11yProblems = `(() => {
	const out = [];
	const name = (e) => (e.getAttribute("aria-label") || e.textContent || "").trim();
	for (const e of document.querySelectorAll("input, select, textarea")) {
		if (e.type === "hidden") continue;
		const label = e.id && document.querySelector('label[for="' + e.id + '"]');
		if (!label && !e.getAttribute("aria-label")) out.push("unlabelled " + e.tagName.toLowerCase() + "#" + e.id);
	}
	for (const e of document.querySelectorAll("button, a[href]")) {
		if (name(e) === "") out.push("nameless " + e.tagName.toLowerCase() + " " + e.outerHTML.slice(0, 80));
	}
	for (const t of document.querySelectorAll("table")) {
		if (!t.querySelector("th")) out.push("table without headers");
	}
	for (const s of document.querySelectorAll("svg")) {
		if (s.getAttribute("role") !== "img" || !s.getAttribute("aria-label")) out.push("chart without a text alternative");
	}
	for (const e of document.querySelectorAll("[onclick], div[tabindex], span[tabindex]")) {
		out.push("clickable " + e.tagName.toLowerCase() + " that is not a link or button");
	}
	if (!document.querySelector("main h1, main h2")) out.push("no heading");
	return out;
})()`

// testAccessible checks each page for a11yProblems, and that the first
// Tab reaches the skip link.
func testAccessible(t *testing.T, p *page, cid string) {
	for _, route := range []string{searchRoute("tcp and " + winWiki), flowRoute(cid) + "?packet=4", "#/fleet", "#/audit"} {
		p.open(route)
		if probs := get(p, chromedp.Evaluate[[]string](a11yProblems)); len(probs) > 0 {
			t.Errorf("%s: %v", route, probs)
		}
	}
	p.do(chromedp.KeyEvent("\t"))
	if got := get(p, chromedp.Evaluate[string](`document.activeElement.className`)); got != "skip" {
		t.Errorf("the first Tab focuses %q, want the skip link", got)
	}
}
