package console

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// page is one Chromium tab on the console.
type page struct {
	tb   testing.TB
	ctx  context.Context
	base string
	// downloads is where the browser saves files (named by download GUID).
	downloads string
	done      chan string // GUIDs of completed downloads
}

// chromium returns the path of Debian's chromium, skipping (or failing
// under TAPIR_REQUIRE_ALL=1) when it is not installed.
func chromium(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.SkipOrFail(tb, "chromium not installed (make deps installs it)")
	return ""
}

// newBrowser starts headless Chromium (--headless=new --no-sandbox); its
// tabs accept the collector's development certificate. The browser is
// closed when the test ends.
func newBrowser(tb testing.TB) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(tb)),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.IgnoreCertErrors,
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	tb.Cleanup(func() {
		cancelB()
		cancelA()
	})
	if err := chromedp.Do(bctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// newPage opens a tab (with its own sessionStorage) on the console of e;
// downloads are saved into a directory of the test.
func newPage(tb testing.TB, bctx context.Context, e *env) *page {
	tb.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	tb.Cleanup(cancel)
	p := &page{tb: tb, ctx: ctx, base: e.base, downloads: tb.TempDir(), done: make(chan string, 16)}
	// The first action on a tab opens it, and must not have a deadline
	// (chromedp closes the tab when that context ends).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		tb.Fatalf("open a tab: %v", err)
	}
	p.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: p.downloads, EventsEnabled: ptr(true)})
		return err
	}))
	// Any uncaught JavaScript exception fails the test.
	var mu sync.Mutex
	var exceptions []string
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	}()
	tb.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range exceptions {
			tb.Errorf("JavaScript exception in the console: %s", x)
		}
	})
	go func() {
		for ev, err := range chromedp.BrowserEvents(ctx, browser.DownloadProgress) {
			if err != nil {
				return
			}
			if ev.State == browser.DownloadProgressStateCompleted {
				p.done <- ev.GUID
			}
		}
	}()
	return p
}

// with returns the page for a subtest: failures go to tb.
func (p *page) with(tb testing.TB) *page {
	q := *p
	q.tb = tb
	return &q
}

func ptr[T any](v T) *T { return &v }

// do runs actions with a deadline, failing the test on error.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.tb.Fatalf("browser at %s: %v", p.location(), err)
	}
}

// get runs one action that returns a value.
func get[T any](p *page, a chromedp.Action[T]) T {
	p.tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.tb.Fatalf("browser at %s: %v", p.location(), err)
	}
	return v
}

// location is the tab's URL, for failure messages.
func (p *page) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	return loc
}

// open loads the console at a route ("#/search?q=...") and waits until
// the page has drawn its data.
func (p *page) open(route string) {
	p.tb.Helper()
	p.do(chromedp.Navigate(p.base + "/console/" + route))
	p.waitDrawn()
}

// waitDrawn waits until the console has drawn the current route's data
// (main[data-state=done] for the hash now in the address bar).
func (p *page) waitDrawn() {
	p.tb.Helper()
	drawn := chromedp.Poll[bool](`(() => { const m = document.querySelector("main");
		return !!m && m.dataset.state === "done" && m.dataset.route === location.hash; })()`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(p.ctx, 35*time.Second)
		_, err := chromedp.Run(ctx, drawn)
		cancel()
		// A poll that started in the document being replaced loses its
		// execution context: poll again in the new one.
		if err != nil && attempt < 3 && strings.Contains(err.Error(), "Cannot find context") {
			continue
		}
		if err != nil {
			p.tb.Fatalf("browser at %s: %v", p.location(), err)
		}
		return
	}
}

// signIn signs in on the sign-in page, typing the token and pressing
// Enter, and waits for the search page.
func (p *page) signIn(token string) {
	p.tb.Helper()
	p.do(chromedp.Navigate(p.base+"/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token+"\r"), chromedp.WaitVisible(chromedp.ID("q")))
	p.waitDrawn()
}

// clear empties the input element with the id.
func (p *page) clear(id string) {
	p.tb.Helper()
	get(p, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.getElementById(%q); e.value = ""; return true; })()`, id)))
}

// text returns the text of the first element matching the CSS selector.
func (p *page) text(sel string) string {
	p.tb.Helper()
	return get(p, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel)))
}

// waitText waits until the element matching sel shows text containing want.
func (p *page) waitText(sel, want string) {
	p.tb.Helper()
	get(p, chromedp.Poll[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		return !!e && e.textContent.includes(%q); })()`, sel, want),
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
}

// download clicks a download button and returns the saved file's path.
func (p *page) download(sel string) string {
	p.tb.Helper()
	p.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	select {
	case guid := <-p.done:
		return filepath.Join(p.downloads, guid)
	case <-time.After(30 * time.Second):
		p.tb.Fatalf("no download after clicking %s; the page says %q", sel, p.text(".dl-msg"))
		return ""
	}
}

// noDownload checks that no download completed.
func (p *page) noDownload() {
	p.tb.Helper()
	select {
	case guid := <-p.done:
		p.tb.Errorf("a download completed: %s", guid)
	case <-time.After(500 * time.Millisecond):
	}
	if ents, _ := os.ReadDir(p.downloads); len(ents) > 0 {
		p.tb.Errorf("files in the download directory: %v", ents)
	}
}

// screenshot writes a PNG to dir/name.png: of the whole page (what ""),
// of the window ("viewport"), or of the element a CSS selector matches.
func (p *page) screenshot(dir, name, what string) {
	p.tb.Helper()
	get(p, chromedp.Evaluate[bool](`(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return true; })()`))
	var png []byte
	switch what {
	case "":
		png = get(p, chromedp.FullScreenshot(100))
	case "viewport":
		png = get(p, chromedp.CaptureScreenshot())
	default:
		png = get(p, chromedp.Screenshot(chromedp.CSS(what)))
	}
	png, err := shrinkPNG(png)
	if err != nil {
		p.tb.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.tb.Fatal(err)
	}
}

// table returns the cells' text of the body rows of the table matching sel.
func (p *page) table(sel string) [][]string {
	p.tb.Helper()
	return get(p, chromedp.Evaluate[[][]string](fmt.Sprintf(
		`[...document.querySelectorAll(%q)].map(tr => [...tr.cells].map(c => c.innerText.trim()))`, sel+" tbody tr")))
}

// searchRoute is the console route of a query (with more parameters as
// key, value pairs).
func searchRoute(q string, kv ...string) string {
	v := url.Values{"q": {q}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "#/search?" + v.Encode()
}

// flagString defines a string flag of the test binary.
func flagString(name, value, usage string) *string { return flag.String(name, value, usage) }
