package console

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// winWiki bounds the wikipedia.pcap capture (about 40 flows).
const winWiki = "after 2011-03-18T00:00:00Z and before 2011-03-19T00:00:00Z"

// testPagingAndHistogram pages through wikipedia.pcap's TCP flows ten at
// a time and checks the union against tshark's, and that the histogram
// counts as many.
func testPagingAndHistogram(t *testing.T, p *page, e *env) {
	q := "tcp and " + winWiki
	want := tsharkCommunityIDs(t, e.pcaps[capWiki], "tcp")
	p.open(searchRoute(q, "limit", "10"))
	pages := 0
	got := collect(t, p, q, func() { pages++ })
	sameIDs(t, "wikipedia.pcap tcp, 10 a page", got, want)
	if wantPages := (len(want) + 9) / 10; pages != wantPages {
		t.Errorf("%d pages of 10 for %d flows, want %d", pages, len(want), wantPages)
	}
	p.open(searchRoute(q))
	label := get(p, chromedp.Evaluate[string](`(document.querySelector(".histogram svg") || {getAttribute: () => ""}).getAttribute("aria-label") || ""`))
	m := regexp.MustCompile(`^([\d,]+) matching flows`).FindStringSubmatch(label)
	if m == nil {
		t.Fatalf("no histogram: %q", p.text(".histogram"))
	}
	if n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", "")); n != len(want) {
		t.Errorf("histogram counts %d flows, tshark %d", n, len(want))
	}
	if bars := get(p, chromedp.Evaluate[int](`document.querySelectorAll(".histogram svg rect.bar").length`)); bars == 0 {
		t.Errorf("histogram without bars")
	}
}

// testSort sorts by bytes (descending) from the URL, then by packets by
// following the column header's link, and checks the order.
func testSort(t *testing.T, p *page) {
	q := "tcp and " + winWiki
	p.open(searchRoute(q, "sort", "-bytes"))
	checkOrder(t, p, colBytes, "bytes")
	p.do(chromedp.Click(chromedp.CSS(`table.flows thead th:nth-child(6) a`)))
	get(p, chromedp.Poll[bool](`location.hash.includes("sort=-packets")`))
	p.waitDrawn()
	checkOrder(t, p, colPackets, "packets")
	if s := p.text(`table.flows thead th[aria-sort="descending"]`); !strings.HasPrefix(s, "Packets") {
		t.Errorf("aria-sort descending on %q, want Packets", s)
	}
}

// checkOrder checks a numeric column is in non-increasing order.
func checkOrder(t *testing.T, p *page, col int, what string) {
	t.Helper()
	vals := get(p, chromedp.Evaluate[[]float64](`[...document.querySelectorAll("table.flows tbody tr")].map(tr => Number(tr.cells[`+strconv.Itoa(col)+`].dataset.value))`))
	if len(vals) < 2 {
		t.Fatalf("sorted by %s: %d rows", what, len(vals))
	}
	for i := 1; i < len(vals); i++ {
		if vals[i] > vals[i-1] {
			t.Errorf("sorted by -%s: row %d has %v after %v", what, i+1, vals[i], vals[i-1])
		}
	}
}

// testFieldCompletion types the start of a field name, sees it offered
// in the listbox, takes it with Tab, and finds the field in the help.
func testFieldCompletion(t *testing.T, p *page) {
	p.open("#/search")
	p.do(chromedp.SendKeys(chromedp.ID("q"), "tls.client.ser"))
	get(p, chromedp.Poll[bool](`(() => { const l = document.getElementById("q-list");
		return !l.hidden && l.textContent.includes("tls.client.server_name"); })()`))
	if v := get(p, chromedp.Evaluate[string](`document.getElementById("q").getAttribute("aria-expanded")`)); v != "true" {
		t.Errorf("combobox aria-expanded %q with the list open", v)
	}
	p.do(chromedp.KeyEvent(kb.Tab))
	if v := get(p, chromedp.Evaluate[string](`document.getElementById("q").value`)); v != "tls.client.server_name" {
		t.Errorf("after Tab the query is %q, want the completed field", v)
	}
	p.do(chromedp.Click(chromedp.CSS("details.fieldhelp summary")))
	p.waitText("details.fieldhelp table", "dns.question.name")
}
