package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, path string) *http.Response {
	t.Helper()
	mux := http.NewServeMux()
	Mount(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Result()
}

func TestRootRedirectsToConsole(t *testing.T) {
	resp := serve(t, "/")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("GET /: %d Location %q, want 302 /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAssetsServedWithCSP(t *testing.T) {
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/console/", "text/html", `<script type="module" src="app.js"></script>`},
		{"/console/app.js", "text/javascript", "hashchange"},
		{"/console/console.css", "text/css", ":root"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp := serve(t, tc.path)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.ctype)
		}
		if resp.Header.Get("Content-Security-Policy") != CSP || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", tc.path, resp.Header)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
	}
	if resp := serve(t, "/console/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET a missing asset: %d, want 404", resp.StatusCode)
	}
	if resp := serve(t, "/other"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %d, want 404 (the console claims only / and /console/)", resp.StatusCode)
	}
}

// The CSP forbids inline script and style, and the console loads
// nothing from elsewhere: check the assets keep to it.
func TestAssetsNeedNoInlineCodeNorOtherOrigins(t *testing.T) {
	web, _ := fs.Sub(assets, "web")
	index, err := fs.ReadFile(web, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`<script(?:[^>]*)>\s*[^<\s]`).Find(index); m != nil {
		t.Errorf("index.html has inline script: %s", m)
	}
	if m := regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=`).Find(index); m != nil {
		t.Errorf("index.html has inline style or handlers: %s", m)
	}
	imp := regexp.MustCompile(`(?m)^import .* from "\./([\w.-]+)";$`)
	err = fs.WalkDir(web, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web, p)
		if err != nil {
			return err
		}
		if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//|url\((https?:)?//|@import`).Find(b); m != nil {
			t.Errorf("%s loads from elsewhere: %s", p, m)
		}
		if strings.HasSuffix(p, ".js") {
			if m := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|eval\(|new Function|\.style\.`).Find(b); m != nil {
				t.Errorf("%s uses %s (untrusted data must go through dom.js; CSP forbids inline style and eval)", p, m)
			}
			for _, m := range imp.FindAllSubmatch(b, -1) {
				if _, err := fs.Stat(web, string(m[1])); err != nil {
					t.Errorf("%s imports %s, which is not embedded", p, m[1])
				}
			}
			if p != "app.js" && !strings.Contains(string(index), `<link rel="modulepreload" href="`+p+`">`) {
				t.Errorf("index.html does not preload %s (the browser would fetch it a round trip later)", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
