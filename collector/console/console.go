// Package console is the collector's investigator web console: a
// single-page application of plain ES modules and CSS under web/,
// embedded in the binary and served on the API listener (same TLS).
//
// The static assets need no credentials; every API call the page makes
// carries the bearer token the user signed in with (kept in the
// browser's sessionStorage), so the API's roles and audit log apply as
// for the CLI. Every answer carries a strict Content-Security-Policy:
// assets only from the collector itself, no inline script or style, no
// framing.
//
//	GET /            302 to /console/
//	GET /console/    index.html
//	GET /console/F   the embedded asset F (404 when there is none)
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed web
var assets embed.FS

// CSP is the Content-Security-Policy of every console answer.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Mount registers the console's routes (GET / and GET /console/) on mux.
func Mount(mux *http.ServeMux) {
	h := Handler()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET /console/", h)
}

// Handler returns the console's handler: / redirects to /console/, the
// rest is served from the embedded assets with security headers. It is
// safe for concurrent use.
func Handler() http.Handler {
	web, err := fs.Sub(assets, "web")
	if err != nil {
		panic(err) // the embed directive guarantees web exists
	}
	files := http.StripPrefix("/console/", http.FileServerFS(web))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header())
		if r.URL.Path == "/" {
			http.Redirect(w, r, "/console/", http.StatusFound)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// setHeaders sets the security and caching headers of every answer.
func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Assets change with the binary; revalidate (embed.FS has no
	// modification times, so the file server answers by content length
	// and the browser refetches small files cheaply).
	h.Set("Cache-Control", "no-cache")
}
