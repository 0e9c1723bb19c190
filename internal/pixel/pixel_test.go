package pixel

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Budget is the most pixel.js may weigh gzipped at best compression.
const Budget = 2500

func TestSizeBudget(t *testing.T) {
	n := len(compress(script))
	t.Logf("pixel.js: %d bytes, %d gzipped (budget %d)", len(script), n, Budget)
	if n > Budget {
		t.Fatalf("pixel.js is %d bytes gzipped, over the %d-byte budget", n, Budget)
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func serve(method string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/pixel.js", nil)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w
}

func TestHandlerHeaders(t *testing.T) {
	plain := serve("GET", nil)
	gz := serve("GET", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	for name, w := range map[string]*httptest.ResponseRecorder{"identity": plain, "gzip": gz} {
		h := w.Result().Header
		if w.Code != 200 {
			t.Errorf("%s: status %d", name, w.Code)
		}
		want := map[string]string{
			"Content-Type":                 "text/javascript; charset=utf-8",
			"Cache-Control":                CacheControl,
			"X-Content-Type-Options":       "nosniff",
			"Vary":                         "Accept-Encoding",
			"Access-Control-Allow-Origin":  "*",
			"Cross-Origin-Resource-Policy": "cross-origin",
			"Content-Length":               strconv.Itoa(w.Body.Len()),
		}
		for k, v := range want {
			if got := h.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
		if tag := h.Get("ETag"); !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || len(tag) < 18 {
			t.Errorf("%s: ETag %q is not a strong entity tag", name, tag)
		}
	}
	if !bytes.Equal(plain.Body.Bytes(), script) || plain.Header().Get("Content-Encoding") != "" {
		t.Errorf("identity: Content-Encoding %q, body of %d bytes, want the script's %d", plain.Header().Get("Content-Encoding"), plain.Body.Len(), len(script))
	}
	if gz.Header().Get("Content-Encoding") != "gzip" || !bytes.Equal(gunzip(t, gz.Body.Bytes()), script) {
		t.Errorf("gzip: Content-Encoding %q or body not the gzipped script", gz.Header().Get("Content-Encoding"))
	}
	if gz.Body.Len() >= plain.Body.Len() {
		t.Errorf("gzip body %d bytes, identity %d", gz.Body.Len(), plain.Body.Len())
	}
	if plain.Header().Get("ETag") == gz.Header().Get("ETag") {
		t.Errorf("both encodings have ETag %s", plain.Header().Get("ETag"))
	}
	// The tag hashes the content: the same on every Handler.
	if again := serve("GET", nil).Header().Get("ETag"); again != plain.Header().Get("ETag") {
		t.Errorf("ETag %s then %s", plain.Header().Get("ETag"), again)
	}
}

func TestHandlerNegotiation(t *testing.T) {
	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"x-gzip", true},
		{"deflate, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"br, identity", false},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0, *", false},
		{"br;q=1, *;q=0.1", true},
		{"identity;q=1, gzip;q=0.001", true},
	} {
		w := serve("GET", map[string]string{"Accept-Encoding": tc.accept})
		if got := w.Header().Get("Content-Encoding") == "gzip"; got != tc.gzip {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", tc.accept, got, tc.gzip)
		}
	}
}

func TestHandlerConditional(t *testing.T) {
	plainTag := serve("GET", nil).Header().Get("ETag")
	gzTag := serve("GET", map[string]string{"Accept-Encoding": "gzip"}).Header().Get("ETag")
	for _, tc := range []struct {
		name, accept, ifNoneMatch string
		want                      int
	}{
		{"same tag", "", plainTag, 304},
		{"weak form", "", "W/" + plainTag, 304},
		{"in a list", "", `"other", ` + plainTag, 304},
		{"any", "", "*", 304},
		{"other tag", "", `"other"`, 200},
		{"gzip tag, gzip", "gzip", gzTag, 304},
		{"identity tag, gzip", "gzip", plainTag, 200},
		{"gzip tag, identity", "", gzTag, 200},
	} {
		w := serve("GET", map[string]string{"Accept-Encoding": tc.accept, "If-None-Match": tc.ifNoneMatch})
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, w.Code, tc.want)
			continue
		}
		if tc.want == 304 {
			if w.Body.Len() != 0 || w.Header().Get("ETag") == "" || w.Header().Get("Cache-Control") != CacheControl || w.Header().Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s: 304 with %d body bytes and headers %v", tc.name, w.Body.Len(), w.Header())
			}
		}
	}
}

func TestHandlerHead(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	req, _ := http.NewRequest("HEAD", srv.URL+"/pixel.js", nil)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(b) != 0 || resp.ContentLength != int64(len(script)) {
		t.Fatalf("HEAD: status %d, %d body bytes, Content-Length %d (script %d bytes)", resp.StatusCode, len(b), resp.ContentLength, len(script))
	}
}

func TestSnippet(t *testing.T) {
	s := Snippet("https://pruuv.example.com/", "pk_live_1")
	if !strings.HasPrefix(s, "<script>") || !strings.HasSuffix(s, "</script>") || strings.Count(s, "</script>") != 1 {
		t.Errorf("not one script element:\n%s", s)
	}
	if !strings.Contains(s, `(window,document,"https://pruuv.example.com","pk_live_1")`) {
		t.Errorf("origin (without its trailing slash) and key not passed:\n%s", s)
	}
	hostile := Snippet("https://p.example", `</script><script>alert("x")</script>`)
	if strings.Count(hostile, "</script>") != 1 || strings.Contains(hostile, `alert("x")`) {
		t.Errorf("a key closed the element or broke the string:\n%s", hostile)
	}
	tag := Tag("https://pruuv.example.com/", `pk_"1`)
	if want := `<script src="https://pruuv.example.com/pixel.js" data-site-key="pk_&#34;1"></script>`; tag != want {
		t.Errorf("Tag = %s, want %s", tag, want)
	}
}

// The README and docs/pixel.md show the snippets as Snippet and Tag make them.
func TestDocsShowSnippets(t *testing.T) {
	for _, doc := range []string{"../../README.md", "../../docs/pixel.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			Snippet("https://pruuv.example.com", "pk_YOUR_SITE_KEY"),
			Tag("https://pruuv.example.com", "pk_YOUR_SITE_KEY"),
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s does not show\n%s", doc, want)
			}
		}
	}
}
