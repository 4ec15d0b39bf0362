package serve

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// The web page of mtbert serve (GET /): web/index.html, with its script, style sheet and
// icon under /static/. Everything is embedded in the binary and the page loads nothing from
// elsewhere (no CDN, no web font): WebCSP forbids it, so a note pasted into the page only
// ever goes to this server. The page calls the JSON API (GET /v1/model, POST /v1/extract,
// POST /v1/pairs) like any client, with the bearer token the user types when the API
// answers 401; the page itself holds no data and needs no token.
//
//go:embed web
var webFiles embed.FS

// WebCSP is the Content-Security-Policy of the page and its assets: scripts, styles, images
// and API calls from this server only; no plugins, no <base>, no framing, and no form
// submission (the page's forms are handled by its script: if it failed to run, a form could
// otherwise send the note in a URL).
const WebCSP = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// webAsset is one embedded file with its Content-Type and its hash (the ETag).
type webAsset struct {
	name  string
	ctype string
	body  []byte
	hash  string
}

type webSite struct {
	index  webAsset
	static map[string]webAsset
}

var webContentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

func newWebAsset(name string, body []byte) webAsset {
	sum := sha256.Sum256(body)
	ct, ok := webContentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	return webAsset{name: name, ctype: ct, body: body, hash: hex.EncodeToString(sum[:8])}
}

// loadWebSite reads the embedded files once. index.html's references to static/NAME gain
// ?v=HASH, so that a browser may keep an asset for a year: a new build changes the URL.
var loadWebSite = sync.OnceValue(func() *webSite {
	site := &webSite{static: map[string]webAsset{}}
	var index []byte
	err := fs.WalkDir(webFiles, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFiles.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "web/")
		if name == "index.html" {
			index = b
			return nil
		}
		site.static[name] = newWebAsset(name, b)
		return nil
	})
	if err != nil || index == nil {
		panic("mtl: the embedded web page is missing") // a broken build, not a runtime condition
	}
	s := string(index)
	for name, a := range site.static {
		s = strings.ReplaceAll(s, `"static/`+name+`"`, `"static/`+name+`?v=`+a.hash+`"`)
	}
	site.index = newWebAsset("index.html", []byte(s))
	return site
})

// mountWeb adds the page's routes to mux: GET / and GET /static/NAME. Other paths are left
// to the mux (404), and other methods on these answer 405.
func (s *Server) mountWeb(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveWebAsset(w, r, loadWebSite().index, false)
	})
	mux.HandleFunc("GET /static/{name}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := loadWebSite().static[r.PathValue("name")]
		if !ok {
			serveError(w, errorf(404, "no such file"))
			return
		}
		serveWebAsset(w, r, a, r.URL.Query().Get("v") == a.hash)
	})
}

// serveWebAsset writes a with the page's security headers and its ETag (conditional and
// range requests through http.ServeContent). An asset asked for under its hash (immutable)
// may be cached for a year; otherwise the browser revalidates it each time.
func serveWebAsset(w http.ResponseWriter, r *http.Request, a webAsset, immutable bool) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Content-Security-Policy", WebCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("ETag", `"`+a.hash+`"`)
	if immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
