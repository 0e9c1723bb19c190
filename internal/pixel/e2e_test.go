package pixel_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/pixel"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// The landing of the ad click every case starts from.
const landingQuery = "?gclid=G-1&fbclid=F-1&utm_source=google&utm_medium=cpc&utm_campaign=spring&utm_content=ad-7&utm_term=shoes"

var (
	fbcFormat = regexp.MustCompile(`^fb\.\d\.(\d{13})\.F-1$`)
	fbpFormat = regexp.MustCompile(`^fb\.\d\.(\d{13})\.\d+$`)
)

// answer is what Pruuv.track resolves with.
type answer struct {
	OK        bool   `json:"ok"`
	Status    int    `json:"status"`
	Error     string `json:"error"`
	Received  bool   `json:"received"`
	Duplicate bool   `json:"duplicate"`
	EventID   string `json:"event_id"`
}

// leadForm is the advertiser's form: hidden inputs the Pixel fills, and a
// submit handler that tracks the lead. window.submitted settles with the
// answer of Pruuv.track.
func leadForm(stageID string) string {
	return `<form id="lead" action="/thanks" method="post">
<input type="hidden" name="gclid"><input type="hidden" name="fbc"><input type="hidden" name="fbp">
<input type="hidden" name="utm_source"><input type="hidden" name="utm_campaign"><input type="hidden" name="click_timestamp">
<input type="email" name="email" value="Jane.Doe@Example.com"><input type="tel" name="phone" value="+1 415 555 0123">
<button id="send" type="submit">Send</button></form>
<script>
window.submitted = new Promise(function (resolve) {
	document.getElementById("lead").addEventListener("submit", function (e) {
		e.preventDefault();
		resolve(Pruuv.track(` + strconv.Quote(stageID) + `, {reference: "LEAD-1", email: this.email.value, phone: this.phone.value}));
	});
});
</script>`
}

// marker is the host page's own script after the Pixel's: it must run.
const marker = `<script>window.after = true</script>`

// TestEndToEnd drives headless Chromium through an advertiser's pages on one
// origin, with the Pixel installed from a real Pruuv on another, and checks
// what reaches the real storage, on each backend: the landing's click ids,
// UTMs and Meta cookies on an event tracked from a form on a later page; the
// attribution kept on a return visit and replaced by a new click; dedup; a
// visitor's clock days ahead; another origin refused; and a host page
// unharmed when Pruuv goes down.
func TestEndToEnd(t *testing.T) {
	browser := pruuvtest.Browser(t)
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			testEndToEnd(t, browser, cfg)
		})
	}
}

// e2e is one backend's run: its Pruuv, database and funnel stage.
type e2e struct {
	t     *testing.T
	cfg   config.Config
	pruuv *pruuvtest.Server
	lead  pruuvtest.Stage
}

func testEndToEnd(t *testing.T, browser context.Context, cfg config.Config) {
	e := &e2e{t: t, cfg: cfg, pruuv: pruuvtest.Start(t, cfg)}
	stages := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead", "Won")
	e.lead = stages[0]

	// The site is created for the landing pages' origin, which exists only
	// once their server runs; the pages carry the key it is given.
	site, setPages := pruuvtest.SiteLater(t)
	var created struct {
		SiteKey string   `json:"site_key"`
		Origins []string `json:"origins"`
		Snippet string   `json:"snippet"`
		Tag     string   `json:"tag"`
	}
	out := pruuvtest.Run(t, cfg, "site", "create", "--client", "Acme", "--origin", site.URL, "--server-url", e.pruuv.URL, "--json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.SiteKey == "" {
		t.Fatalf("site create printed %q: %v", out, err)
	}
	snippet, tag := pixel.Snippet(e.pruuv.URL, created.SiteKey), pixel.Tag(e.pruuv.URL, created.SiteKey)
	if len(created.Origins) != 1 || created.Origins[0] != site.URL || created.Snippet != snippet || created.Tag != tag {
		t.Fatalf("site create: origins %q, snippet %q, tag %q; want [%s] and the snippets of package pixel", created.Origins, created.Snippet, created.Tag, site.URL)
	}
	setPages(map[string]string{
		"/":     snippet + marker + `<p>landing</p>`,
		"/form": snippet + marker + leadForm(e.lead.ID),
		"/tag":  tag + marker + leadForm(e.lead.ID),
	})

	tab := pruuvtest.Tab(t, browser)
	exceptions := pruuvtest.Exceptions(t, tab)
	noExceptions := func(step string) {
		t.Helper()
		if l := exceptions.List(); len(l) > 0 {
			t.Fatalf("%s: uncaught exceptions: %q", step, l)
		}
	}

	// 1. The ad click lands on /, the visitor goes on to /form and sends it.
	before := time.Now()
	e.open(tab, site.URL+"/"+landingQuery)
	after := time.Now()
	cookies := e.cookies(tab)
	fbc, fbp := cookies["_fbc"], cookies["_fbp"]
	if m := fbcFormat.FindStringSubmatch(fbc); m == nil || !within(m[1], before, after) {
		t.Errorf("_fbc = %q, want fb.<index>.<ms of the landing>.F-1", fbc)
	}
	if m := fbpFormat.FindStringSubmatch(fbp); m == nil || !within(m[1], before, after) {
		t.Errorf("_fbp = %q, want fb.<index>.<ms of the landing>.<random>", fbp)
	}

	formURL := site.URL + "/form"
	e.open(tab, formURL)
	clickTime := e.input(tab, "click_timestamp")
	for name, want := range map[string]string{
		"gclid": "G-1", "fbc": fbc, "fbp": fbp, "utm_source": "google", "utm_campaign": "spring",
	} {
		if got := e.input(tab, name); got != want {
			t.Errorf("hidden input %s = %q, want %q", name, got, want)
		}
	}
	if !strings.HasSuffix(clickTime, "Z") || !between(clickTime, before, after) {
		t.Errorf("hidden click_timestamp = %q, want the landing's time in UTC, between %s and %s", clickTime, before.UTC().Format(time.RFC3339Nano), after.UTC().Format(time.RFC3339Nano))
	}
	userAgent := pruuvtest.Eval[string](t, tab, `navigator.userAgent`)
	e.click(tab, "send")
	first := pruuvtest.Eval[answer](t, tab, `window.submitted`)
	if !first.OK || first.Status != 200 || !first.Received || first.Duplicate || first.EventID == "" {
		t.Fatalf("the form's Pruuv.track resolved with %+v, want ok and an event_id", first)
	}
	lead := e.event("LEAD-1")
	want := map[string]any{
		"event_id": first.EventID, "stage_id": e.lead.ID, "source": "pixel",
		"gclid": "G-1", "fbc": fbc, "fbp": fbp,
		"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring", "utm_content": "ad-7", "utm_term": "shoes",
		"gbraid": nil, "wbraid": nil, "ttclid": nil, "msclkid": nil,
		"event_source_url":    formURL,
		"client_user_agent":   userAgent,
		"client_ip_address":   "127.0.0.1",
		"email_sha256":        sha("jane.doe@example.com"),
		"email_google_sha256": sha("jane.doe@example.com"),
		"phone_sha256":        sha("+14155550123"),
		"phone_meta_sha256":   sha("14155550123"),
	}
	e.check("LEAD-1", lead, want)
	if !sameTime(lead["click_timestamp"], clickTime) {
		t.Errorf("LEAD-1 click_timestamp = %v, want the hidden input's %s", lead["click_timestamp"], clickTime)
	}
	row, _ := json.Marshal(lead)
	for _, clear := range []string{"jane.doe", "Jane.Doe", "4155550123", "415 555"} {
		if strings.Contains(string(row), clear) {
			t.Errorf("the stored row holds %q in clear: %s", clear, row)
		}
	}
	noExceptions("landing and form")

	// 6. The same reference again within 60 s, from the page and from the
	// webhook: duplicates, and the first copy stays the only row.
	again := pruuvtest.Eval[answer](t, tab, `Pruuv.track(`+strconv.Quote(e.lead.ID)+`, {reference: "LEAD-1", utm_source: "changed"})`)
	if again != (answer{OK: true, Status: 200, Received: true, Duplicate: true}) {
		t.Errorf("LEAD-1 tracked again resolved with %+v, want a duplicate", again)
	}
	wh := pruuvtest.Post(t, e.pruuv.URL, e.lead.ID, e.lead.WebhookToken, `{"reference":"LEAD-1","utm_source":"webhook"}`)
	if wh.Status != 200 || wh.Body != `{"received":true,"duplicate":true}` || wh.Header.Get("Pruuv-Event-Id") != first.EventID {
		t.Errorf("LEAD-1 through the webhook: %d %s, Pruuv-Event-Id %q; want a duplicate of %s", wh.Status, wh.Body, wh.Header.Get("Pruuv-Event-Id"), first.EventID)
	}
	if n := e.count("LEAD-1"); n != 1 {
		t.Errorf("%d rows for LEAD-1, want 1", n)
	}
	e.check("LEAD-1 after the duplicates", e.event("LEAD-1"), map[string]any{"event_id": first.EventID, "utm_source": "google"})

	// 4. A return visit through a newsletter link, on a page with the plain
	// tag: UTMs without a click id do not replace a stored click
	// (docs/pixel.md, "Which click wins").
	returnURL := site.URL + "/tag?utm_source=newsletter&utm_campaign=nov"
	e.open(tab, returnURL)
	if g, u := e.input(tab, "gclid"), e.input(tab, "utm_source"); g != "G-1" || u != "google" {
		t.Errorf("return visit: hidden gclid %q, utm_source %q; want the stored G-1, google", g, u)
	}
	r := e.track(tab, "LEAD-2")
	want = map[string]any{
		"event_id": r.EventID, "source": "pixel", "gclid": "G-1", "fbc": fbc, "fbp": fbp, "msclkid": nil,
		"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring", "utm_content": "ad-7", "utm_term": "shoes",
		"click_timestamp":  lead["click_timestamp"],
		"event_source_url": returnURL,
	}
	e.check("LEAD-2, a return visit", e.event("LEAD-2"), want)
	noExceptions("return visit")

	// 5. A new click, from Microsoft: it replaces the whole set, the gclid
	// and the other UTMs included; _fbc lives apart and stays, and track
	// still sends it.
	before = time.Now()
	clickURL := site.URL + "/tag?msclkid=M-2&utm_source=bing&utm_medium=cpc"
	e.open(tab, clickURL)
	after = time.Now()
	if g, f := e.input(tab, "gclid"), e.input(tab, "fbc"); g != "" || f != fbc {
		t.Errorf("after a new click: hidden gclid %q, fbc %q; want none, and the _fbc %q", g, f, fbc)
	}
	if c := e.cookies(tab); c["_fbc"] != fbc || c["_fbp"] != fbp {
		t.Errorf("after a new click: _fbc %q, _fbp %q; want them unchanged, %q and %q", c["_fbc"], c["_fbp"], fbc, fbp)
	}
	r = e.track(tab, "LEAD-3")
	want = map[string]any{
		"event_id": r.EventID, "msclkid": "M-2", "gclid": nil, "ttclid": nil, "fbc": fbc, "fbp": fbp,
		"utm_source": "bing", "utm_medium": "cpc", "utm_campaign": nil, "utm_content": nil, "utm_term": nil,
		"event_source_url": clickURL,
	}
	third := e.event("LEAD-3")
	e.check("LEAD-3, after a new click", third, want)
	if s, _ := third["click_timestamp"].(string); !between(s, before, after) {
		t.Errorf("LEAD-3 click_timestamp = %q, want the new click's time, between %s and %s", s, before.UTC().Format(time.RFC3339Nano), after.UTC().Format(time.RFC3339Nano))
	}
	noExceptions("new click")

	// The other half of the rule: with no click stored, a tagged link
	// replaces an older one, whole.
	fresh := pruuvtest.Tab(t, browser)
	e.open(fresh, site.URL+"/tag?utm_source=newsletter&utm_campaign=nov")
	e.open(fresh, site.URL+"/tag?utm_source=partner")
	r = e.track(fresh, "LEAD-UTM")
	e.check("LEAD-UTM, two tagged links", e.event("LEAD-UTM"), map[string]any{
		"event_id": r.EventID, "utm_source": "partner", "utm_campaign": nil, "gclid": nil, "click_timestamp": nil, "fbc": nil,
	})

	// A visitor whose clock runs three days fast: the endpoint drops the
	// click_timestamp it cannot believe and keeps the event.
	fast := pruuvtest.Tab(t, browser)
	e.fastClock(fast, 72*time.Hour)
	e.open(fast, site.URL+"/tag?gclid=G-9")
	if ts, err := time.Parse(time.RFC3339Nano, e.input(fast, "click_timestamp")); err != nil || !ts.After(time.Now().Add(event.MaxFuture)) {
		t.Fatalf("fast clock: hidden click_timestamp %v (%v), want more than %s ahead", ts, err, event.MaxFuture)
	}
	r = e.track(fast, "FAST-CLOCK")
	e.check("FAST-CLOCK, a visitor's clock three days fast", e.event("FAST-CLOCK"), map[string]any{
		"event_id": r.EventID, "gclid": "G-9", "click_timestamp": nil, "event_source_url": site.URL + "/tag?gclid=G-9",
	})

	// 2. The same key on a page of an origin that is not the site's: the
	// server refuses it without CORS headers, so the page cannot read the
	// answer, and nothing is stored.
	foreign := pruuvtest.Site(t, map[string]string{"/": snippet + marker})
	other := pruuvtest.Tab(t, browser)
	otherExceptions := pruuvtest.Exceptions(t, other)
	e.open(other, foreign.URL+"/"+landingQuery)
	stored := e.count("")
	r = pruuvtest.Eval[answer](t, other, `Pruuv.track(`+strconv.Quote(e.lead.ID)+`, {reference: "FOREIGN-1"})`)
	if r != (answer{OK: false, Status: 0, Error: "Network error"}) {
		t.Errorf("track from %s resolved with %+v, want the network error of a CORS refusal", foreign.URL, r)
	}
	if n := e.count(""); n != stored || e.count("FOREIGN-1") != 0 {
		t.Errorf("a refused origin changed the events: %d before, %d after", stored, n)
	}
	if l := otherExceptions.List(); len(l) > 0 {
		t.Errorf("refused origin: uncaught exceptions: %q", l)
	}

	// 3. Pruuv goes down while the visitor browses.
	e.pruuv.Stop()
	r = pruuvtest.Eval[answer](t, tab, `Pruuv.track(`+strconv.Quote(e.lead.ID)+`, {reference: "DOWN-1"})`)
	if r != (answer{OK: false, Status: 0, Error: "Network error"}) {
		t.Errorf("Pruuv stopped after the page loaded: track resolved with %+v, want a network error", r)
	}
	// A new landing: pixel.js comes from the browser's cache (fresh for an
	// hour), so the page's own script after the snippet runs (open waits for
	// it) and the Pixel still captures; only sending fails.
	e.open(tab, site.URL+"/?gclid=G-3")
	if g := pruuvtest.Eval[string](t, tab, `Pruuv.values().gclid`); g != "G-3" {
		t.Errorf("Pruuv down, pixel.js from the cache: the stored gclid is %q, want the new click's G-3", g)
	}
	r = pruuvtest.Eval[answer](t, tab, `Pruuv.track(`+strconv.Quote(e.lead.ID)+`, {reference: "DOWN-2"})`)
	if r != (answer{OK: false, Status: 0, Error: "Network error"}) {
		t.Errorf("Pruuv down, pixel.js from the cache: track resolved with %+v, want a network error", r)
	}
	noExceptions("Pruuv down")
	// A visitor without the script in cache: the snippet's stub answers the
	// form's track, and the page stays.
	cold := pruuvtest.Tab(t, browser)
	coldExceptions := pruuvtest.Exceptions(t, cold)
	pruuvtest.Navigate(t, cold, formURL)
	e.wait(cold, `window.Pruuv && window.Pruuv.q === 0`)
	if !pruuvtest.Eval[bool](t, cold, `window.after === true`) {
		t.Error("Pruuv down, no cache: the page's own script after the snippet did not run")
	}
	e.click(cold, "send")
	if r := pruuvtest.Eval[answer](t, cold, `window.submitted`); r != (answer{OK: false, Status: 0, Error: "Pixel not loaded"}) {
		t.Errorf("Pruuv down, no cache: the form's track resolved with %+v, want Pixel not loaded", r)
	}
	if u := pruuvtest.Eval[string](t, cold, `location.href`); u != formURL {
		t.Errorf("Pruuv down, no cache: the page is now %s, want still %s", u, formURL)
	}
	if l := coldExceptions.List(); len(l) > 0 {
		t.Errorf("Pruuv down, no cache: uncaught exceptions: %q", l)
	}
	if n := e.count(""); n != stored {
		t.Errorf("%d events after Pruuv went down, want still %d", n, stored)
	}
}

// open navigates the tab and waits until pixel.js has run on the page.
func (e *e2e) open(tab context.Context, url string) {
	e.t.Helper()
	pruuvtest.Navigate(e.t, tab, url)
	e.wait(tab, `window.Pruuv && window.Pruuv.v === 1 && window.after === true`)
}

// fastClock makes Date.now in the tab's next pages run ahead by d, as a
// visitor's wrong clock would.
func (e *e2e) fastClock(tab context.Context, d time.Duration) {
	e.t.Helper()
	src := `(function () { var now = Date.now; Date.now = function () { return now.call(Date) + ` + strconv.FormatInt(d.Milliseconds(), 10) + ` } })()`
	ctx, cancel := context.WithTimeout(tab, pruuvtest.BrowserTimeout)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return err
	}))
	if err != nil {
		e.t.Fatalf("setting the clock ahead: %v", err)
	}
}

// wait waits until expr is truthy in the tab's page.
func (e *e2e) wait(tab context.Context, expr string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(tab, pruuvtest.BrowserTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr)); err != nil {
		e.t.Fatalf("waiting for %s: %v", expr, err)
	}
}

// click clicks the element with the id, as the visitor would.
func (e *e2e) click(tab context.Context, id string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(tab, pruuvtest.BrowserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID(id))); err != nil {
		e.t.Fatalf("clicking #%s: %v", id, err)
	}
}

// track tracks reference at the lead stage from the tab's page and requires
// an accepted event.
func (e *e2e) track(tab context.Context, reference string) answer {
	e.t.Helper()
	r := pruuvtest.Eval[answer](e.t, tab, `Pruuv.track(`+strconv.Quote(e.lead.ID)+`, {reference: `+strconv.Quote(reference)+`})`)
	if !r.OK || r.Status != 200 || r.EventID == "" || r.Duplicate {
		e.t.Fatalf("track %s resolved with %+v, want an accepted event", reference, r)
	}
	return r
}

// input is the value of the form's input with the name.
func (e *e2e) input(tab context.Context, name string) string {
	e.t.Helper()
	return pruuvtest.Eval[string](e.t, tab, `document.querySelector('form input[name="`+name+`"]').value`)
}

// cookies are the page's cookies, unescaped.
func (e *e2e) cookies(tab context.Context) map[string]string {
	e.t.Helper()
	m := map[string]string{}
	for _, kv := range strings.Split(pruuvtest.Eval[string](e.t, tab, `document.cookie`), "; ") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = unescape(e.t, v)
	}
	return m
}

// events lists every stored event through the CLI, against the database.
func (e *e2e) events() []map[string]any {
	e.t.Helper()
	var evs []map[string]any
	out := pruuvtest.Run(e.t, e.cfg, "events", "list", "--json")
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		e.t.Fatalf("events list printed %q: %v", out, err)
	}
	return evs
}

// count is how many events have the reference, or how many there are in all
// for "".
func (e *e2e) count(reference string) int {
	e.t.Helper()
	n := 0
	for _, ev := range e.events() {
		if reference == "" || ev["reference"] == reference {
			n++
		}
	}
	return n
}

// event is the one stored event with the reference.
func (e *e2e) event(reference string) map[string]any {
	e.t.Helper()
	var found map[string]any
	for _, ev := range e.events() {
		if ev["reference"] == reference {
			if found != nil {
				e.t.Fatalf("two events with reference %s: %v and %v", reference, found, ev)
			}
			found = ev
		}
	}
	if found == nil {
		e.t.Fatalf("no event with reference %s stored", reference)
	}
	return found
}

// check compares the fields of a stored event with want; nil means absent.
func (e *e2e) check(what string, ev map[string]any, want map[string]any) {
	e.t.Helper()
	for k, v := range want {
		if _, ok := ev[k]; !ok {
			e.t.Errorf("%s: the stored event has no field %s", what, k)
		}
		if ev[k] != v {
			e.t.Errorf("%s: %s = %v, want %v", what, k, ev[k], v)
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// within reports whether ms, a Unix time in milliseconds, lies in [from, to].
func within(ms string, from, to time.Time) bool {
	n, err := strconv.ParseInt(ms, 10, 64)
	return err == nil && n >= from.UnixMilli() && n <= to.UnixMilli()
}

// between reports whether s is an RFC 3339 time in [from, to], from taken to
// the millisecond, as the script's clock reads.
func between(s string, from, to time.Time) bool {
	ts, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && !ts.Before(from.Truncate(time.Millisecond)) && !ts.After(to)
}

// sameTime reports whether a stored time and an RFC 3339 text are the same
// instant: the store keeps the text's instant and offset, not its digits.
func sameTime(stored any, text string) bool {
	s, _ := stored.(string)
	a, err1 := time.Parse(time.RFC3339Nano, s)
	b, err2 := time.Parse(time.RFC3339Nano, text)
	return err1 == nil && err2 == nil && a.Equal(b)
}
