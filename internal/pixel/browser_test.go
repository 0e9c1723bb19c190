package pixel_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/pixel"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// closedPort returns a loopback address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

const form = `<form action="/thanks" method="post">
<input type="hidden" name="gclid"><input type="hidden" name="ttclid"><input type="hidden" name="fbc">
<input type="text" name="utm_source"><input type="email" name="email"></form>`

type result struct {
	OK      bool   `json:"ok"`
	Status  int    `json:"status"`
	Error   string `json:"error"`
	Beacon  bool   `json:"beacon"`
	EventID string `json:"event_id"`
}

// TestBrowserSmoke loads pixel.js from a running Pruuv into a page of another
// origin in headless Chromium: capture, cookies, hidden fields, storage across
// pages, a new click replacing the old, and a host page that keeps working
// when Pruuv is down.
func TestBrowserSmoke(t *testing.T) {
	browser := pruuvtest.Browser(t)
	pruuv := pruuvtest.Start(t, pruuvtest.SQLite(t))
	down := closedPort(t)
	after := `<script>window.after = true</script>`
	site := pruuvtest.Site(t, map[string]string{
		"/page":   `<script src="` + pruuv.URL + `/pixel.js" data-site-key="pk_test"></script>` + after + form,
		"/second": `<script src="` + pruuv.URL + `/pixel.js" data-site-key="pk_test"></script>` + form,
		"/down":   `<script src="` + down + `/pixel.js" data-site-key="pk_test"></script>` + after + form,
		"/snippet-down": pixel.Snippet(down, "pk_test") +
			`<script>window.queued = Pruuv.track("stg", {reference: "r1"})</script>` + after,
	})
	exceptions := pruuvtest.Exceptions(t, browser)
	noExceptions := func(step string) {
		t.Helper()
		if e := exceptions.List(); len(e) > 0 {
			t.Fatalf("%s: uncaught exceptions: %q", step, e)
		}
	}
	cookies := func() map[string]string {
		m := map[string]string{}
		for _, kv := range strings.Split(pruuvtest.Eval[string](t, browser, `document.cookie`), "; ") {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return m
	}
	stored := func() map[string]string {
		var set map[string]string
		raw := cookies()["_pruuv"]
		if err := json.Unmarshal([]byte(unescape(t, raw)), &set); err != nil {
			t.Fatalf("_pruuv cookie %q: %v", raw, err)
		}
		return set
	}
	input := func(name string) string {
		return pruuvtest.Eval[string](t, browser, `document.querySelector('input[name="`+name+`"]').value`)
	}

	pruuvtest.Navigate(t, browser, site.URL+"/page?gclid=G1&fbclid=F1&utm_source=google")
	if !pruuvtest.Eval[bool](t, browser, `typeof window.Pruuv.track === "function" && window.after === true`) {
		t.Fatal("Pruuv.track is not a function, or the page's own script did not run")
	}
	c := cookies()
	if !regexp.MustCompile(`^fb\.\d\.\d{13}\.F1$`).MatchString(c["_fbc"]) {
		t.Errorf("_fbc = %q", c["_fbc"])
	}
	if !regexp.MustCompile(`^fb\.\d\.\d{13}\.\d+$`).MatchString(c["_fbp"]) {
		t.Errorf("_fbp = %q", c["_fbp"])
	}
	if g, u := input("gclid"), input("utm_source"); g != "G1" || u != "google" {
		t.Errorf("hidden gclid %q, utm_source %q; want G1, google", g, u)
	}
	if f := input("fbc"); f != c["_fbc"] {
		t.Errorf("hidden fbc %q, want the cookie's %q", f, c["_fbc"])
	}
	first := stored()
	if first["gclid"] != "G1" || first["utm_source"] != "google" || first["click_timestamp"] == "" {
		t.Errorf("stored set %v", first)
	}
	noExceptions("first landing")

	pruuvtest.Navigate(t, browser, site.URL+"/second")
	if g := input("gclid"); g != "G1" {
		t.Errorf("second page: hidden gclid %q, want the stored G1", g)
	}
	if c2 := cookies(); c2["_fbp"] != c["_fbp"] || c2["_fbc"] != c["_fbc"] {
		t.Errorf("second page changed _fbp/_fbc: %q %q, then %q %q", c["_fbp"], c["_fbc"], c2["_fbp"], c2["_fbc"])
	}

	pruuvtest.Navigate(t, browser, site.URL+"/page?ttclid=T2")
	if s := stored(); s["ttclid"] != "T2" || s["gclid"] != "" || s["utm_source"] != "" {
		t.Errorf("after a TikTok click the set is %v, want ttclid T2 alone", s)
	}
	if g, tt := input("gclid"), input("ttclid"); g != "" || tt != "T2" {
		t.Errorf("hidden gclid %q, ttclid %q after the new click", g, tt)
	}
	noExceptions("new click")

	// The browser endpoint is not part of this test: whatever the server
	// answers for an unknown site key, track resolves and never rejects.
	r := pruuvtest.Eval[result](t, browser, `Pruuv.track("stg_x", {reference: "smoke"})`)
	if r.OK {
		t.Errorf("track with an unknown site key: %+v", r)
	}

	// Pruuv unreachable: the plain tag fails to load, the page goes on.
	pruuvtest.Navigate(t, browser, site.URL+"/down")
	if !pruuvtest.Eval[bool](t, browser, `window.after === true && typeof window.Pruuv === "undefined"`) {
		t.Error("plain tag, Pruuv down: the page's script did not run, or Pruuv exists")
	}
	noExceptions("plain tag, Pruuv down")

	// The async snippet: calls made before the failed load, and after it,
	// resolve with a failure.
	pruuvtest.Navigate(t, browser, site.URL+"/snippet-down")
	want := result{OK: false, Status: 0, Error: "Pixel not loaded"}
	if r := pruuvtest.Eval[result](t, browser, `window.after === true && window.queued`); r != want {
		t.Errorf("snippet, Pruuv down: queued call resolved with %+v, want %+v", r, want)
	}
	if r := pruuvtest.Eval[result](t, browser, `Pruuv.track("stg", {reference: "r2"})`); r != want {
		t.Errorf("snippet, Pruuv down: later call resolved with %+v, want %+v", r, want)
	}
	noExceptions("snippet, Pruuv down")

	// Loaded, then Pruuv goes away: track resolves with a network failure.
	pruuvtest.Navigate(t, browser, site.URL+"/page")
	pruuv.Stop()
	want = result{OK: false, Status: 0, Error: "Network error"}
	if r := pruuvtest.Eval[result](t, browser, `Pruuv.track("stg", {reference: "r3"})`); r != want {
		t.Errorf("Pruuv stopped after the page loaded: track resolved with %+v, want %+v", r, want)
	}
	noExceptions("Pruuv stopped")
}

// unescape undoes encodeURIComponent.
func unescape(t *testing.T, s string) string {
	t.Helper()
	v, err := url.PathUnescape(s)
	if err != nil {
		t.Fatalf("cookie value %q: %v", s, err)
	}
	return v
}

// trackRequest is what the fake endpoint saw of one request.
type trackRequest struct {
	Method, ContentType, Origin string
	Body                        map[string]any
}

// fakePruuv serves pixel.js and records what reaches the track endpoint, with
// CORS answers for origin. It stands in for the browser endpoint so the
// script's side of the contract is tested in a real browser.
func fakePruuv(t *testing.T, origin func() string) (*httptest.Server, chan trackRequest) {
	t.Helper()
	got := make(chan trackRequest, 16)
	mux := http.NewServeMux()
	mux.Handle("GET /pixel.js", pixel.Handler())
	mux.HandleFunc("/api/pixel/v1/track", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", origin())
		req := trackRequest{Method: r.Method, ContentType: r.Header.Get("Content-Type"), Origin: r.Header.Get("Origin")}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &req.Body)
		got <- req
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"received":true,"event_id":"ev_%v"}`, req.Body["reference"])
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, got
}

func next(t *testing.T, got chan trackRequest) trackRequest {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(pruuvtest.BrowserTimeout):
		t.Fatal("no request reached the track endpoint")
		return trackRequest{}
	}
}

// TestBrowserTrack checks the script's side of the endpoint contract in
// Chromium: the async snippet's queue, the request (text/plain, no preflight,
// captured values filled in), sendBeacon when fetch is missing, and a call
// made just before the page navigates away.
func TestBrowserTrack(t *testing.T) {
	browser := pruuvtest.Browser(t)
	var site *httptest.Server
	pruuv, got := fakePruuv(t, func() string { return site.URL })
	site = pruuvtest.Site(t, map[string]string{
		"/": pixel.Snippet(pruuv.URL, "pk_snippet") +
			`<script>window.queued = Pruuv.track("stg_q", {reference: "Q1", email: "a@b.example"})</script>` + form,
		"/plain": `<script src="` + pruuv.URL + `/pixel.js" data-site-key="pk_plain"></script>`,
		"/next":  `<p>next</p>`,
	})
	exceptions := pruuvtest.Exceptions(t, browser)

	landingURL := site.URL + "/?gclid=G7&utm_source=google&utm_medium=cpc"
	pruuvtest.Navigate(t, browser, landingURL)
	if r := pruuvtest.Eval[result](t, browser, `window.queued`); r != (result{OK: true, Status: 200, EventID: "ev_Q1"}) {
		t.Errorf("queued call resolved with %+v", r)
	}
	req := next(t, got)
	if req.Method != "POST" || req.ContentType != "text/plain;charset=UTF-8" || req.Origin != site.URL {
		t.Errorf("request %s, Content-Type %q, Origin %q: want a POST of text/plain;charset=UTF-8 from %s (no preflight)", req.Method, req.ContentType, req.Origin, site.URL)
	}
	b := req.Body
	for k, want := range map[string]any{
		"site_key": "pk_snippet", "stage_id": "stg_q", "reference": "Q1", "email": "a@b.example",
		"gclid": "G7", "utm_source": "google", "utm_medium": "cpc", "event_source_url": landingURL,
	} {
		if b[k] != want {
			t.Errorf("body %s = %v, want %v", k, b[k], want)
		}
	}
	if fbp, _ := b["fbp"].(string); !regexp.MustCompile(`^fb\.0\.\d{13}\.\d{10}$`).MatchString(fbp) {
		t.Errorf("body fbp = %v", b["fbp"])
	}
	if ts, _ := b["click_timestamp"].(string); !strings.HasSuffix(ts, "Z") || !validTime(ts) {
		t.Errorf("body click_timestamp = %v", b["click_timestamp"])
	}

	// No fetch: sendBeacon carries the event.
	r := pruuvtest.Eval[result](t, browser, `window.fetch = undefined, Pruuv.track("stg_b", {reference: "B1"})`)
	if r != (result{OK: true, Beacon: true}) {
		t.Errorf("beacon call resolved with %+v", r)
	}
	req = next(t, got)
	// Chromium lower-cases a Blob's type: the endpoint must compare media
	// types case-insensitively.
	if req.Method != "POST" || !strings.EqualFold(req.ContentType, "text/plain;charset=UTF-8") || req.Body["reference"] != "B1" || req.Body["gclid"] != "G7" {
		t.Errorf("beacon request: %+v", req)
	}

	// A call right before leaving the page still arrives.
	pruuvtest.Navigate(t, browser, site.URL+"/plain")
	pruuvtest.Eval[bool](t, browser, `Pruuv.track("stg_u", {reference: "U1"}), location.href = "/next", true`)
	if req = next(t, got); req.Body["reference"] != "U1" || req.Body["site_key"] != "pk_plain" || req.Body["gclid"] != "G7" {
		t.Errorf("request sent while leaving: %+v", req)
	}
	if e := exceptions.List(); len(e) > 0 {
		t.Fatalf("uncaught exceptions: %q", e)
	}
	select {
	case extra := <-got:
		t.Errorf("unexpected extra request (a preflight?): %+v", extra)
	default:
	}
}

// TestServedByPruuv fetches /pixel.js from a running server.
func TestServedByPruuv(t *testing.T) {
	srv := pruuvtest.Start(t, pruuvtest.SQLite(t))
	resp, err := pruuvtest.Client().Get(srv.URL + "/pixel.js")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || !strings.Contains(string(b), "/api/pixel/v1/track") {
		t.Fatalf("GET /pixel.js: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
}

func validTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}
