package serve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// serveWeb runs one request through a model-less server's handler.
func serveWeb(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestWebAssets checks the page's routes: the page and its assets with their types, the
// security and caching headers, conditional requests, and 404 / 405 everywhere else, while
// the API's routes answer as before.
func TestWebAssets(t *testing.T) {
	s := New(Config{Token: "tok"})
	defer s.Close()
	h := s.Handler()
	site := loadWebSite()

	w := serveWeb(h, "GET", "/")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	page := w.Body.String()
	for k, v := range map[string]string{
		"Content-Security-Policy": WebCSP,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
		"ETag":                    `"` + site.index.hash + `"`,
	} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("GET / %s: %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(WebCSP, "default-src 'self'") || !strings.Contains(WebCSP, "form-action 'none'") {
		t.Errorf("CSP %q", WebCSP)
	}
	// The page needs no token even when the API does.
	if code, _ := serveWeb(h, "GET", "/v1/model").Code, ""; code != 401 {
		t.Errorf("GET /v1/model without token: %d, want 401", code)
	}

	// Every asset the page names is served under its hash, immutable; the same asset without
	// the hash (or with another) must be revalidated.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) != 4 {
		t.Fatalf("the page references %d assets: %q", len(refs), refs)
	}
	for _, m := range refs {
		u, err := url.Parse(m[1])
		if err != nil || u.IsAbs() || u.Host != "" || !strings.HasPrefix(u.Path, "static/") {
			t.Fatalf("reference %q is not a relative static/ URL", m[1])
		}
		name := strings.TrimPrefix(u.Path, "static/")
		a, ok := site.static[name]
		if !ok || u.Query().Get("v") != a.hash {
			t.Fatalf("reference %q: asset %v, hash %q", m[1], ok, a.hash)
		}
		w := serveWeb(h, "GET", "/"+m[1])
		if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), a.body) || w.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			w.Header().Get("Content-Type") != a.ctype || w.Header().Get("Content-Security-Policy") != WebCSP {
			t.Errorf("GET /%s: %d %v", m[1], w.Code, w.Header())
		}
		if w := serveWeb(h, "GET", "/static/"+name+"?v=old"); w.Code != 200 || w.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET /static/%s?v=old: %d %q", name, w.Code, w.Header().Get("Cache-Control"))
		}
		// Conditional request: 304 with no body.
		if w := serveWeb(h, "GET", "/static/"+name, "If-None-Match", `"`+a.hash+`"`); w.Code != 304 || w.Body.Len() != 0 {
			t.Errorf("If-None-Match on %s: %d, %d bytes", name, w.Code, w.Body.Len())
		}
	}
	wantTypes := map[string]string{"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}
	for name, ct := range wantTypes {
		if a, ok := site.static[name]; !ok || a.ctype != ct {
			t.Errorf("asset %s: %v %q, want %q", name, ok, a.ctype, ct)
		}
	}
	if w := serveWeb(h, "GET", "/", "If-None-Match", `"`+site.index.hash+`"`); w.Code != 304 {
		t.Errorf("If-None-Match on /: %d", w.Code)
	}
	if w := serveWeb(h, "HEAD", "/"); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("ETag") == "" {
		t.Errorf("HEAD /: %d, %d bytes", w.Code, w.Body.Len())
	}

	// Nothing external: no URL with a scheme or a host in any asset (the SVG namespace is a
	// name, not a fetch), no inline script or style the CSP would block.
	external := regexp.MustCompile(`(?i)(https?:|wss?:|ftp:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(`)
	all := map[string][]byte{"index.html": site.index.body}
	for n, a := range site.static {
		all[n] = a.body
	}
	for n, b := range all {
		for _, m := range external.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s refers to %q", n, m)
			}
		}
	}
	if regexp.MustCompile(`<script>|<style|\sstyle=|\son[a-z]+=`).MatchString(page) {
		t.Errorf("the page has inline script or style, which its CSP forbids")
	}

	// Everything else: 404 or 405, and the API unchanged.
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/index.html", 404},
		{"GET", "/static/", 404},
		{"GET", "/static/nope.js", 404},
		{"GET", "/static/index.html", 404},
		{"GET", "/static/app.js/x", 404},
		{"GET", "/web/app.js", 404},
		{"GET", "/nope", 404},
		{"GET", "/v1/", 404},
		{"GET", "/static/a%2fb", 404},
		{"POST", "/", 405},
		{"DELETE", "/static/app.js", 405},
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 503},
		{"POST", "/v1/extract", 401},
		{"GET", "/metrics", 401},
	} {
		w := serveWeb(h, c.method, c.path)
		if w.Code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.code)
		}
		if c.code == 404 && bytes.Contains(w.Body.Bytes(), []byte("<html")) {
			t.Errorf("%s %s: 404 with the page", c.method, c.path)
		}
	}
}

// FuzzWebPaths sends any path to the handler of a model-less server: no panic, and the page's
// bytes come only from / and /static/NAME for the embedded names (no traversal into other
// files, no directory listing).
func FuzzWebPaths(f *testing.F) {
	for _, p := range []string{"/", "/static/app.js", "/static/../", "/static/%2e%2e/", "/static/%2e%2e/web.go",
		"/../web.go", "/static/..%2fweb.go", "/static/app.js/..", "/static//app.js", "/static/app.js%00", "/static/a%2fb",
		"//static/app.js", "/static/./style.css", "/static/%2e/style.css", "/static", "/STATIC/app.js", "/%2e%2e/%2e%2e/etc/passwd",
		"/static/favicon.svg?v=x", "/?x=<script>", "/v1/model", "/healthz"} {
		f.Add(p)
	}
	s := New(Config{})
	defer s.Close()
	h := s.Handler()
	site := loadWebSite()
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.ParseRequestURI(p)
		if err != nil || u.Host != "" || u.Scheme != "" {
			return
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = u
		req.RequestURI = p
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 301, 307, 308, 404, 400, 503:
		default:
			t.Fatalf("GET %q: status %d", p, w.Code)
		}
		if w.Code != 200 || w.Header().Get("Content-Security-Policy") == "" {
			return
		}
		// Only the embedded files: the page (at / and whatever the mux cleans to it, such
		// as "/%2f"), or the asset that the path's last segment names.
		body := w.Body.Bytes()
		if bytes.Equal(body, site.index.body) {
			return
		}
		name := u.Path[strings.LastIndex(u.Path, "/")+1:]
		if a, ok := site.static[name]; !ok || !bytes.Equal(body, a.body) || !strings.Contains(u.Path, "static/") {
			t.Fatalf("GET %q (path %q) served %d bytes that are not the asset", p, u.Path, len(body))
		}
	})
}
