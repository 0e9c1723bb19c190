// Package pixel is the Pixel SDK: pixel.js, the script that landing pages
// load to capture click ids and UTMs and to call Pruuv.track, the handler that
// serves it, and the snippets that install it. docs/pixel.md has the rules.
package pixel

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"

	_ "embed"
)

//go:embed pixel.js
var script []byte

// CacheControl is how long browsers and proxies keep pixel.js: an hour fresh,
// then a day more in which a stale copy may run while it is revalidated in
// the background (the ETag makes that a 304). A new release reaches every
// page within about a day; the script's contract with the server is
// versioned in its endpoint's path, so an old copy keeps working meanwhile.
const CacheControl = "public, max-age=3600, stale-while-revalidate=86400"

// representation is one encoding of the script, ready to serve.
type representation struct {
	body     []byte
	etag     string
	encoding string
}

type handler struct {
	plain, gzipped representation
}

// Handler serves pixel.js for GET and HEAD. It compresses and hashes the
// script once, when called: gzip goes to clients whose Accept-Encoding allows
// it, each encoding has its own strong ETag, and a matching If-None-Match gets
// a 304.
func Handler() http.Handler {
	sum := sha256.Sum256(script)
	tag := hex.EncodeToString(sum[:12])
	return &handler{
		plain:   representation{body: script, etag: `"` + tag + `"`},
		gzipped: representation{body: compress(script), etag: `"` + tag + `-gzip"`, encoding: "gzip"},
	}
}

func compress(b []byte) []byte {
	var buf bytes.Buffer
	// BestCompression is a valid level, so NewWriterLevel cannot fail, and
	// writes to a bytes.Buffer do not fail either.
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := h.plain
	if acceptsGzip(r.Header.Values("Accept-Encoding")) {
		rep = h.gzipped
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/javascript; charset=utf-8")
	hd.Set("Cache-Control", CacheControl)
	hd.Set("ETag", rep.etag)
	hd.Set("Vary", "Accept-Encoding")
	hd.Set("X-Content-Type-Options", "nosniff")
	// A public script: pages may load it with crossorigin (for error details
	// in their own error handlers) and under Cross-Origin-Embedder-Policy.
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if matches(r.Header.Get("If-None-Match"), rep.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if rep.encoding != "" {
		hd.Set("Content-Encoding", rep.encoding)
	}
	hd.Set("Content-Length", strconv.Itoa(len(rep.body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(rep.body)
}

// matches reports whether an If-None-Match value names etag; the comparison
// is weak, as RFC 9110 asks for If-None-Match.
func matches(ifNoneMatch, etag string) bool {
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether Accept-Encoding values allow gzip: named with a
// non-zero q, or covered by a non-zero "*" without being named.
func acceptsGzip(values []string) bool {
	star, named := false, false
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "x-gzip" && name != "*" {
				continue
			}
			ok := qualityNonZero(params)
			if name == "*" {
				star = ok
				continue
			}
			if ok {
				return true
			}
			named = true
		}
	}
	return star && !named
}

func qualityNonZero(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q > 0
		}
	}
	return true
}

// snippet is the async installer: a stub window.Pruuv whose track queues calls
// (each a Promise the real script settles once it loads, or settles with a
// failure if the script cannot load), then pixel.js loaded async.
const snippet = `<script>
(function(w,d,o,k){var p=w.Pruuv=w.Pruuv||{q:[]},s=d.createElement("script"),f=function(){return{ok:false,status:0,error:"Pixel not loaded"}};p.k=p.k||k;p.track=p.track||function(a,b){try{return new Promise(function(r){p.q?p.q.push([a,b,r]):r(f())})}catch(e){}};s.async=true;s.src=o+"/pixel.js";s.onerror=function(){var q=p.q||[];p.q=0;for(var i=0;i<q.length;i++)q[i][2](f())};d.head.appendChild(s)})(window,document,%s,%s);
</script>`

// Snippet returns the async install snippet for a Pruuv server at origin (such
// as "https://pruuv.example.com") and a site's public key. It never delays the
// page; Pruuv.track works at once and its calls are sent when pixel.js loads.
func Snippet(origin, siteKey string) string {
	return fmt.Sprintf(snippet, jsString(strings.TrimRight(origin, "/")), jsString(siteKey))
}

// Tag returns the plain install tag: simplest, and Pruuv.track exists for every
// script after it, but the page waits while it loads.
func Tag(origin, siteKey string) string {
	return `<script src="` + html.EscapeString(strings.TrimRight(origin, "/")+"/pixel.js") +
		`" data-site-key="` + html.EscapeString(siteKey) + `"></script>`
}

// jsString quotes s as a JavaScript string literal that is also safe inside a
// <script> element: encoding/json escapes <, > and &, U+2028 and U+2029.
func jsString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}
