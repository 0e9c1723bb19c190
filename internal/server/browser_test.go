package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/store"
)

const (
	shop  = "https://shop.example"
	track = "/api/pixel/v1/track"
)

// newSite creates a site through the CLI and returns its key.
func newSite(t *testing.T, cfg config.Config, client string, origins ...string) string {
	t.Helper()
	args := []string{"site", "create", "--client", client, "--json"}
	for _, o := range origins {
		args = append(args, "--origin", o)
	}
	var out struct {
		SiteKey string `json:"site_key"`
	}
	if err := json.Unmarshal([]byte(pruuvtest.Run(t, cfg, args...)), &out); err != nil || out.SiteKey == "" {
		t.Fatalf("site create: %v", err)
	}
	return out.SiteKey
}

// pixelBody is a Pixel request's body: the envelope, then payload fields.
func pixelBody(key, stage, fields string) string {
	b := `{"site_key":"` + key + `","stage_id":"` + stage + `"`
	if fields != "" {
		b += "," + fields
	}
	return b + "}"
}

// sendPixel makes a request to the Pixel's endpoint as a browser would: the
// Origin, a sendBeacon text/plain body unless headers say otherwise.
func sendPixel(t *testing.T, base, method, origin, body string, headers ...string) pruuvtest.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+track, rd)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		switch {
		case headers[i] == "User-Agent" && headers[i+1] == "":
			req.Header["User-Agent"] = []string{""} // stops Go sending its own
		case headers[i+1] == "":
			req.Header.Del(headers[i])
		default:
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := pruuvtest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := pruuvtest.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	json.Unmarshal(b, &out.JSON)
	return out
}

func post(t *testing.T, base, origin, body string, headers ...string) pruuvtest.Response {
	t.Helper()
	return sendPixel(t, base, http.MethodPost, origin, body, headers...)
}

// events lists a stage's stored events through the CLI.
func events(t *testing.T, cfg config.Config, stageID string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	if err := json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "events", "list", "--stage", stageID, "--json")), &evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

// pixelFixture is a server with two clients: Acme, whose site allows shop,
// with stages Lead, Won and Paid; and Beta with a stage of its own.
type pixelFixture struct {
	cfg             config.Config
	url             string
	key             string
	lead, won, paid pruuvtest.Stage
	beta            pruuvtest.Stage
}

func startPixel(t *testing.T, cfg config.Config) pixelFixture {
	srv := pruuvtest.Start(t, cfg)
	acme := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead", "Won", "Paid")
	beta := pruuvtest.Funnel(t, cfg, "Beta", "Main", "Lead")
	newSite(t, cfg, "Beta", "https://beta.example")
	return pixelFixture{cfg: cfg, url: srv.URL, key: newSite(t, cfg, "Acme", shop, "http://localhost:3000"),
		lead: acme[0], won: acme[1], paid: acme[2], beta: beta[0]}
}

func TestPixelEndpoint(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			cfg.PixelIPRate = config.MaxPixelIPRate // the per-IP cap has its own test
			f := startPixel(t, cfg)
			t.Run("preflight", func(t *testing.T) { testPreflight(t, f) })
			t.Run("stored", func(t *testing.T) { testPixelStored(t, f) })
			t.Run("refused", func(t *testing.T) { testPixelRefused(t, f) })
			t.Run("validation", func(t *testing.T) { testPixelValidation(t, f) })
			t.Run("visitor clock", func(t *testing.T) { testVisitorClock(t, f) })
			t.Run("dedup", func(t *testing.T) { testDedupAcrossSources(t, f) })
			t.Run("quotas", func(t *testing.T) { testSeparateQuotas(t, f) })
		})
	}
}

func testPreflight(t *testing.T, f pixelFixture) {
	for _, origin := range []string{shop, "http://localhost:3000", "https://beta.example"} {
		r := sendPixel(t, f.url, http.MethodOptions, origin, "", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
		h := r.Header
		if r.Status != 204 || r.Body != "" || h.Get("Access-Control-Allow-Origin") != origin || h.Get("Access-Control-Allow-Methods") != "POST" ||
			h.Get("Access-Control-Allow-Headers") != "Content-Type" || h.Get("Access-Control-Max-Age") != "7200" || h.Get("Vary") != "Origin" {
			t.Errorf("preflight from %s: %d %q %v", origin, r.Status, r.Body, h)
		}
	}
	for _, origin := range []string{"https://evil.example", "https://shop.example.evil.example", "http://shop.example", "null", ""} {
		r := sendPixel(t, f.url, http.MethodOptions, origin, "", "Access-Control-Request-Method", "POST")
		if r.Status != 403 || r.Body != `{"error":"Forbidden"}` || r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight from %q: %d %q %v", origin, r.Status, r.Body, r.Header)
		}
	}
}

// A sendBeacon-style post is stored with source pixel, the observed address
// and user agent, and email and phone only as hashes.
func testPixelStored(t *testing.T, f pixelFixture) {
	const email, phone = "Jane.Doe+News@Example.com", "+44 7700 900123"
	body := pixelBody(f.key, f.lead.ID, `"reference":"PIXEL-REF-1","utm_source":"google","gclid":"EAIa-1","email":"`+email+`",`+
		`"phone":"`+phone+`","client_ip_address":"192.0.2.99","event_source_url":"https://shop.example/thanks?step=2"`)
	ua := "Mozilla/5.0 (X11; Linux x86_64) PixelTest/1.0"
	r := post(t, f.url, shop, body, "User-Agent", ua, "Referer", "https://shop.example/other")
	id, _ := r.JSON["event_id"].(string)
	if r.Status != 200 || id == "" || r.Body != `{"received":true,"event_id":"`+id+`"}` {
		t.Fatalf("post: %d %s", r.Status, r.Body)
	}
	if r.Header.Get("Access-Control-Allow-Origin") != shop || r.Header.Get("Vary") != "Origin" || r.Header.Get("Pruuv-Event-Id") != "" {
		t.Errorf("headers %v", r.Header)
	}
	// No Content-Type, and application/json, are taken as well; the Referer
	// stands in for a missing event_source_url, the body's user agent wins.
	r = post(t, f.url, "http://localhost:3000", pixelBody(f.key, f.lead.ID, `"reference":"PIXEL-REF-2","client_user_agent":"BodyAgent/2"`),
		"Content-Type", "", "User-Agent", ua, "Referer", "http://localhost:3000/form")
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Fatalf("post without a Content-Type: %d %s", r.Status, r.Body)
	}
	if r := post(t, f.url, shop, pixelBody(f.key, f.lead.ID, `"reference":"PIXEL-REF-3"`), "Content-Type", "application/json", "User-Agent", ""); r.Status != 200 {
		t.Fatalf("post as application/json: %d %s", r.Status, r.Body)
	}

	byRef := map[string]map[string]any{}
	for _, e := range events(t, f.cfg, f.lead.ID) {
		byRef[e["reference"].(string)] = e
	}
	e := byRef["PIXEL-REF-1"]
	if e == nil || e["event_id"] != id {
		t.Fatalf("stored %v", byRef)
	}
	want := map[string]any{
		"source": "pixel", "utm_source": "google", "gclid": "EAIa-1",
		"client_ip_address": "127.0.0.1", // observed, not the body's 192.0.2.99
		"client_user_agent": ua,
		"event_source_url":  "https://shop.example/thanks?step=2",
		"email_sha256":      event.SHA256Hex("jane.doe+news@example.com"),
		"phone_sha256":      event.SHA256Hex("+447700900123"),
		"phone_meta_sha256": event.SHA256Hex("447700900123"),
	}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("%s = %v, want %v", k, e[k], v)
		}
	}
	e2 := byRef["PIXEL-REF-2"]
	if e2 == nil || e2["client_user_agent"] != "BodyAgent/2" || e2["event_source_url"] != "http://localhost:3000/form" || e2["client_ip_address"] != "127.0.0.1" {
		t.Errorf("second event %v", e2)
	}
	if e3 := byRef["PIXEL-REF-3"]; e3 == nil || e3["client_user_agent"] != nil || e3["event_source_url"] != nil {
		t.Errorf("third event, without User-Agent or Referer: %v", e3)
	}
	checkNotStored(t, f.cfg, "PIXEL-REF-1", "jane.doe", "Jane.Doe", "7700 900123", "7700900123")
}

// checkNotStored reads the database's raw contents — the SQLite files
// including the WAL, or every PostgreSQL events row as text — and fails if any
// of clear appears. present must appear, so that the search is shown to see
// the data at all.
func checkNotStored(t *testing.T, cfg config.Config, present string, clear ...string) {
	t.Helper()
	var dump []byte
	if cfg.DatabaseURL == "" {
		for _, name := range []string{store.SQLiteFile, store.SQLiteFile + "-wal"} {
			b, err := os.ReadFile(filepath.Join(cfg.DataDir, name))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			dump = append(dump, b...)
		}
	} else {
		db, err := sql.Open("pgx", cfg.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.QueryContext(context.Background(), "SELECT e::text FROM events e")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			dump = append(dump, s...)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Contains(dump, []byte(present)) {
		t.Fatalf("the database dump (%d bytes) lacks %q: the search cannot see the events", len(dump), present)
	}
	for _, c := range clear {
		if bytes.Contains(dump, []byte(c)) {
			t.Errorf("the database holds %q in clear", c)
		}
	}
}

func testPixelRefused(t *testing.T, f pixelFixture) {
	ok := func(ref string) string { return pixelBody(f.key, f.won.ID, `"reference":"`+ref+`"`) }
	cases := []struct {
		name, origin, body string
		status             int
		answer             string
		cors               bool // the page may read the answer
		headers            []string
	}{
		{"another origin", "https://evil.example", ok("R1"), 403, `{"error":"Forbidden"}`, false, nil},
		{"another site's origin", "https://beta.example", ok("R2"), 403, `{"error":"Forbidden"}`, false, nil},
		{"no origin", "", ok("R3"), 403, `{"error":"Forbidden"}`, false, nil},
		{"origin with a path", "https://shop.example/", ok("R4"), 403, `{"error":"Forbidden"}`, false, nil},
		{"webhook token as site key", shop, pixelBody(f.won.WebhookToken, f.won.ID, `"reference":"R5"`), 401, `{"error":"Unauthorized"}`, true, nil},
		{"no site key", shop, `{"stage_id":"` + f.won.ID + `","reference":"R6"}`, 401, `{"error":"Unauthorized"}`, true, nil},
		{"site key twice", shop, `{"site_key":"` + f.key + `","site_key":"` + f.key + `","stage_id":"` + f.won.ID + `","reference":"R7"}`, 401, `{"error":"Unauthorized"}`, true, nil},
		{"site key not a string", shop, `{"site_key":7,"stage_id":"` + f.won.ID + `","reference":"R8"}`, 401, `{"error":"Unauthorized"}`, true, nil},
		{"Site_Key", shop, `{"Site_Key":"` + f.key + `","stage_id":"` + f.won.ID + `","reference":"R9"}`, 401, `{"error":"Unauthorized"}`, true, nil},
		{"not JSON", shop, `site_key=` + f.key, 401, `{"error":"Unauthorized"}`, true, nil},
		{"unknown key from an unlisted origin", "https://evil.example", pixelBody("pk_0000000000000000000000", f.won.ID, `"reference":"R10"`), 401, `{"error":"Unauthorized"}`, false, nil},
		{"another client's stage", shop, pixelBody(f.key, f.beta.ID, `"reference":"R11"`), 404, `{"error":"Stage not found"}`, true, nil},
		{"unknown stage", shop, pixelBody(f.key, "stg_0000000000000000000000", `"reference":"R12"`), 404, `{"error":"Stage not found"}`, true, nil},
		{"no stage", shop, `{"site_key":"` + f.key + `","reference":"R13"}`, 404, `{"error":"Stage not found"}`, true, nil},
		{"too large", shop, pixelBody(f.key, f.won.ID, `"reference":"R14","industry":"`+strings.Repeat("x", 64<<10)+`"`), 413, `{"error":"Payload too large"}`, true, nil},
	}
	for _, c := range cases {
		r := post(t, f.url, c.origin, c.body, c.headers...)
		acao := r.Header.Get("Access-Control-Allow-Origin")
		if r.Status != c.status || r.Body != c.answer || (acao != "") != c.cors || (c.cors && acao != c.origin) {
			t.Errorf("%s: %d %s, Access-Control-Allow-Origin %q; want %d %s, readable %v", c.name, r.Status, r.Body, acao, c.status, c.answer, c.cors)
		}
	}
	r := sendPixel(t, f.url, http.MethodGet, shop, "")
	if r.Status != 405 || r.Body != `{"error":"Method not allowed"}` || r.Header.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("GET: %d %s %v", r.Status, r.Body, r.Header)
	}
	if evs := events(t, f.cfg, f.won.ID); len(evs) != 0 {
		t.Errorf("refused requests stored %d events: %v", len(evs), evs)
	}
	if evs := events(t, f.cfg, f.beta.ID); len(evs) != 0 {
		t.Errorf("another client's stage holds %d events", len(evs))
	}
}

// The Pixel validates exactly as the webhook does.
func testPixelValidation(t *testing.T, f pixelFixture) {
	for _, fields := range []string{
		`"revenue_value":"250","currency":"XXX","email":"not-an-email","phone":"0207 946 0000"`,
		`"reference":"","click_timestamp":"yesterday","client_ip_address":"1.2.3","event_source_url":"/thanks"`,
		`"reference":"V","reference":"V"`,
	} {
		wh := pruuvtest.Post(t, f.url, f.paid.ID, f.paid.WebhookToken, "{"+fields+"}")
		px := post(t, f.url, shop, pixelBody(f.key, f.paid.ID, fields))
		if wh.Status != 400 || px.Status != 400 || !reflect.DeepEqual(wh.JSON, px.JSON) || px.JSON["error"] != "Validation failed" {
			t.Errorf("%s:\nwebhook %d %s\npixel   %d %s", fields, wh.Status, wh.Body, px.Status, px.Body)
		}
		if px.Header.Get("Access-Control-Allow-Origin") != shop {
			t.Errorf("400 not readable by the page: %v", px.Header)
		}
	}
	if evs := events(t, f.cfg, f.paid.ID); len(evs) != 0 {
		t.Errorf("invalid requests stored %d events", len(evs))
	}
}

// A click_timestamp that the visitor's clock put out of range does not cost
// the event: the Pixel stores it without one. The webhook still refuses it,
// and a malformed one is a 400 on both.
func testVisitorClock(t *testing.T, f pixelFixture) {
	farFuture := time.Now().Add(event.MaxFuture + time.Hour).UTC().Format(time.RFC3339Nano)
	for i, ts := range []string{farFuture, "2999-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z"} {
		ref := "CLOCK-" + strconv.Itoa(i)
		fields := `"reference":"` + ref + `","gclid":"G-CLOCK","click_timestamp":"` + ts + `"`
		px := post(t, f.url, shop, pixelBody(f.key, f.lead.ID, fields))
		if px.Status != 200 || px.JSON["event_id"] == nil {
			t.Errorf("pixel, click_timestamp %s: %d %s, want the event stored", ts, px.Status, px.Body)
		}
		wh := pruuvtest.Post(t, f.url, f.lead.ID, f.lead.WebhookToken, "{"+fields+"}")
		if wh.Status != 400 || !strings.Contains(wh.Body, `"click_timestamp"`) {
			t.Errorf("webhook, click_timestamp %s: %d %s, want a 400 for it", ts, wh.Status, wh.Body)
		}
	}
	// In range, the browser's time is kept as sent.
	const inRange = "2026-01-02T03:04:05.678Z"
	if px := post(t, f.url, shop, pixelBody(f.key, f.lead.ID, `"reference":"CLOCK-OK","click_timestamp":"`+inRange+`"`)); px.Status != 200 {
		t.Fatalf("pixel, click_timestamp %s: %d %s", inRange, px.Status, px.Body)
	}
	for _, bad := range []string{`"yesterday"`, `1767323045`} {
		px := post(t, f.url, shop, pixelBody(f.key, f.lead.ID, `"reference":"CLOCK-BAD","click_timestamp":`+bad))
		if px.Status != 400 || !strings.Contains(px.Body, `"click_timestamp"`) {
			t.Errorf("pixel, click_timestamp %s: %d %s, want a 400 for it", bad, px.Status, px.Body)
		}
	}
	got := map[string]map[string]any{}
	for _, e := range events(t, f.cfg, f.lead.ID) {
		if ref := e["reference"].(string); strings.HasPrefix(ref, "CLOCK-") {
			got[ref] = e
		}
	}
	for i := range 3 {
		e := got["CLOCK-"+strconv.Itoa(i)]
		if e == nil || e["source"] != "pixel" || e["gclid"] != "G-CLOCK" || e["click_timestamp"] != nil {
			t.Errorf("CLOCK-%d stored as %v, want a pixel event with its gclid and no click_timestamp", i, e)
		}
	}
	if e := got["CLOCK-OK"]; e == nil || e["click_timestamp"] != inRange {
		t.Errorf("CLOCK-OK stored as %v, want click_timestamp %s", e, inRange)
	}
	if len(got) != 4 {
		t.Errorf("%d events stored, want 4 (three without click_timestamp, one with): %v", len(got), got)
	}
}

// The same reference at the same stage within 60 s is a duplicate whichever
// way it came.
func testDedupAcrossSources(t *testing.T, f pixelFixture) {
	wh := pruuvtest.Post(t, f.url, f.lead.ID, f.lead.WebhookToken, `{"reference":"BOTH-1"}`)
	if wh.Status != 200 || wh.JSON["event_id"] == nil {
		t.Fatalf("webhook: %d %s", wh.Status, wh.Body)
	}
	px := post(t, f.url, shop, pixelBody(f.key, f.lead.ID, `"reference":"BOTH-1","utm_source":"changed"`))
	if px.Status != 200 || px.Body != `{"received":true,"duplicate":true}` || px.Header.Get("Pruuv-Event-Id") != "" {
		t.Fatalf("pixel after webhook: %d %s %v", px.Status, px.Body, px.Header)
	}
	px = post(t, f.url, shop, pixelBody(f.key, f.lead.ID, `"reference":"BOTH-2"`))
	if px.Status != 200 || px.JSON["event_id"] == nil {
		t.Fatalf("pixel: %d %s", px.Status, px.Body)
	}
	wh = pruuvtest.Post(t, f.url, f.lead.ID, f.lead.WebhookToken, `{"reference":"BOTH-2"}`)
	if wh.Status != 200 || wh.Body != `{"received":true,"duplicate":true}` || wh.Header.Get("Pruuv-Event-Id") != px.JSON["event_id"] {
		t.Fatalf("webhook after pixel: %d %s, original %q want %v", wh.Status, wh.Body, wh.Header.Get("Pruuv-Event-Id"), px.JSON["event_id"])
	}
	n := 0
	for _, e := range events(t, f.cfg, f.lead.ID) {
		if ref := e["reference"]; ref == "BOTH-1" || ref == "BOTH-2" {
			n++
			if (ref == "BOTH-1") != (e["source"] == "webhook") || e["utm_source"] != nil {
				t.Errorf("stored %v: the first copy must win", e)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d events stored for two references", n)
	}
}

// The Pixel's hourly quota and the webhook's are counted apart: using up one
// leaves the other whole.
func testSeparateQuotas(t *testing.T, f pixelFixture) {
	hourWithRoom(t, time.Minute)
	for _, st := range []pruuvtest.Stage{f.won, f.paid} {
		pruuvtest.Run(t, f.cfg, "stage", "set-limit", st.ID, "--per-hour", "2", "--pixel-per-hour", "2")
	}
	time.Sleep(ingest.CacheFor) // a running server takes a new limit within this time
	viaPixel := func(st pruuvtest.Stage, ref string) pruuvtest.Response {
		return post(t, f.url, shop, pixelBody(f.key, st.ID, `"reference":"`+ref+`"`))
	}
	viaWebhook := func(st pruuvtest.Stage, ref string) pruuvtest.Response {
		return pruuvtest.Post(t, f.url, st.ID, st.WebhookToken, `{"reference":"`+ref+`"}`)
	}
	limited := func(r pruuvtest.Response) bool {
		s, _ := strconv.Atoi(r.Header.Get("Retry-After"))
		return r.Status == 429 && r.Body == `{"error":"Rate limit exceeded"}` && s >= 1 && s <= 3600
	}
	for i, c := range []struct {
		st           pruuvtest.Stage
		first, other func(pruuvtest.Stage, string) pruuvtest.Response
		name         string
	}{{f.won, viaPixel, viaWebhook, "pixel first"}, {f.paid, viaWebhook, viaPixel, "webhook first"}} {
		p := strconv.Itoa(i)
		for _, ref := range []string{"A", "B"} {
			if r := c.first(c.st, p+ref); r.Status != 200 || r.JSON["event_id"] == nil {
				t.Fatalf("%s: %s: %d %s", c.name, ref, r.Status, r.Body)
			}
		}
		if r := c.first(c.st, p+"C"); !limited(r) {
			t.Fatalf("%s: third event over a quota of 2: %d %s %v", c.name, r.Status, r.Body, r.Header)
		}
		if r := c.first(c.st, p+"A"); r.Status != 200 || r.Body != `{"received":true,"duplicate":true}` {
			t.Fatalf("%s: a repeat at the limit must stay a duplicate: %d %s", c.name, r.Status, r.Body)
		}
		for _, ref := range []string{"D", "E"} {
			if r := c.other(c.st, p+ref); r.Status != 200 || r.JSON["event_id"] == nil {
				t.Fatalf("%s: the other quota is untouched, yet %s got %d %s", c.name, ref, r.Status, r.Body)
			}
		}
		if r := c.other(c.st, p+"F"); !limited(r) {
			t.Fatalf("%s: the other quota is 2 as well: %d %s", c.name, r.Status, r.Body)
		}
		if evs := events(t, f.cfg, c.st.ID); len(evs) != 4 {
			t.Fatalf("%s: %d events stored, want 2 + 2", c.name, len(evs))
		}
	}
}

// The per-IP cap comes after validation and before dedup; behind a trusted
// proxy the client's address is the right-most untrusted one in
// X-Forwarded-For, and without one the header is ignored.
func TestPixelIPCapAndProxies(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	cfg.PixelIPRate, cfg.PixelIPBurst = 1, 2 // two at once, then one a minute
	cfg.TrustedProxies = "127.0.0.1/32, 10.0.0.0/8"
	f := startPixel(t, cfg)

	body := func(ref string) string { return pixelBody(f.key, f.lead.ID, `"reference":"`+ref+`"`) }
	for _, ref := range []string{"IP-1", "IP-2"} {
		if r := post(t, f.url, shop, body(ref)); r.Status != 200 {
			t.Fatalf("%s within the burst: %d %s", ref, r.Status, r.Body)
		}
	}
	r := post(t, f.url, shop, body("IP-3"))
	if s, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.Status != 429 || r.Body != `{"error":"Rate limit exceeded"}` || s < 1 || s > 60 ||
		r.Header.Get("Access-Control-Allow-Origin") != shop {
		t.Fatalf("over the per-IP cap: %d %s %v", r.Status, r.Body, r.Header)
	}
	if r := post(t, f.url, shop, body("IP-1")); r.Status != 429 {
		t.Fatalf("a repeat from a capped address: %d %s, want 429 (the cap comes before dedup)", r.Status, r.Body)
	}
	if r := post(t, f.url, shop, pixelBody(f.key, f.lead.ID, `"reference":5`)); r.Status != 400 {
		t.Fatalf("an invalid body from a capped address: %d, want 400 (validation comes first)", r.Status)
	}
	if r := pruuvtest.Post(t, f.url, f.lead.ID, f.lead.WebhookToken, `{"reference":"WH-1"}`); r.Status != 200 {
		t.Fatalf("the webhook is not under the Pixel's per-IP cap: %d %s", r.Status, r.Body)
	}

	// The peer 127.0.0.1 is a trusted proxy: the client is the right-most
	// untrusted hop, and each client has its own cap.
	for _, c := range []struct{ xff, ip string }{
		{"203.0.113.5", "203.0.113.5"},
		{"198.51.100.1, 203.0.113.6", "203.0.113.6"}, // the left one is the client's own claim
		{"203.0.113.7, 10.1.2.3", "203.0.113.7"},     // through a second trusted proxy
		{"203.0.113.8:5123", "203.0.113.8"},          // with a port
		{"2001:db8::1, 10.0.0.9", "2001:db8::1"},     // IPv6
		{"::ffff:203.0.113.9", "203.0.113.9"},        // IPv4-mapped
		{"not-an-address, 10.0.0.7", "10.0.0.7"},     // garbage ends the walk at the last trusted hop
	} {
		ref := "XFF-" + c.ip
		if r := post(t, f.url, shop, body(ref), "X-Forwarded-For", c.xff); r.Status != 200 {
			t.Fatalf("X-Forwarded-For %s: %d %s", c.xff, r.Status, r.Body)
		}
		for _, e := range events(t, cfg, f.lead.ID) {
			if e["reference"] == ref && e["client_ip_address"] != c.ip {
				t.Errorf("X-Forwarded-For %q recorded %v, want %s", c.xff, e["client_ip_address"], c.ip)
			}
		}
	}

	// Without trusted proxies the header is the client's word: ignored.
	cfg2 := pruuvtest.SQLite(t)
	f2 := startPixel(t, cfg2)
	if r := post(t, f2.url, shop, pixelBody(f2.key, f2.lead.ID, `"reference":"NOPROXY"`), "X-Forwarded-For", "203.0.113.5"); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if evs := events(t, cfg2, f2.lead.ID); len(evs) != 1 || evs[0]["client_ip_address"] != "127.0.0.1" {
		t.Fatalf("untrusted X-Forwarded-For: %v", evs)
	}
}

func TestPixelMetrics(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	f := startPixel(t, cfg)
	post(t, f.url, shop, pixelBody(f.key, f.lead.ID, `"reference":"M1"`))
	post(t, f.url, shop, pixelBody(f.key, f.lead.ID, `"reference":"M1"`))
	post(t, f.url, "https://evil.example", pixelBody(f.key, f.lead.ID, `"reference":"M2"`))
	post(t, f.url, shop, pixelBody(f.key, f.lead.ID, `"reference":7`))
	sendPixel(t, f.url, http.MethodOptions, shop, "")
	sendPixel(t, f.url, http.MethodOptions, "https://evil.example", "")
	_, metrics := get(t, f.url+"/metrics")
	for _, want := range []string{
		`pruuv_pixel_events_total{outcome="accepted"} 1`,
		`pruuv_pixel_events_total{outcome="duplicate"} 1`,
		`pruuv_pixel_events_total{outcome="forbidden"} 1`,
		`pruuv_pixel_events_total{outcome="invalid"} 1`,
		`pruuv_pixel_events_total{outcome="preflight"} 1`,
		`pruuv_pixel_events_total{outcome="preflight_forbidden"} 1`,
		`pruuv_pixel_events_total{outcome="ip_limited"} 0`,
		`pruuv_webhook_events_total{outcome="accepted"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
