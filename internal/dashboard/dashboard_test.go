package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/dashboard"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/store"
)

const (
	email    = "ann@example.com"
	password = "correct horse battery"
)

// browser is a cookie-keeping client that does not follow redirects and
// remembers the CSRF token of the last page it loaded.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

type page struct {
	status int
	header http.Header
	body   string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if m := csrfField.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

// post submits a form; the last page's CSRF token is added unless the form
// has a csrf field (even an empty one).
func (b *browser) post(path string, form url.Values, header ...string) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

func (b *browser) login() {
	b.t.Helper()
	b.get("/login")
	p := b.post("/login", url.Values{"email": {email}, "password": {password}})
	if p.status != http.StatusSeeOther {
		b.t.Fatalf("login: %d\n%s", p.status, p.body)
	}
}

// start runs a server with one user and one funnel and returns a logged-in browser.
func start(t *testing.T, be pruuvtest.Backend) (*pruuvtest.Server, config.Config, *browser, []pruuvtest.Stage) {
	cfg := be.Config(t)
	srv := pruuvtest.Start(t, cfg)
	pruuvtest.Run(t, cfg, "user", "create", "--email", email, "--password", password)
	stages := pruuvtest.Funnel(t, cfg, "Acme", "Leads", "Lead", "Qualified", "Won")
	b := newBrowser(t, srv.URL)
	b.login()
	return srv, cfg, b, stages
}

func stageList(t *testing.T, cfg config.Config) map[string]store.Stage {
	var ss []store.Stage
	if err := json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "stage", "list", "--json")), &ss); err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Stage{}
	for _, s := range ss {
		out[s.ID] = s
	}
	return out
}

func pages(funnelID string) []string {
	return []string{"/clients", "/funnels", "/funnels/" + funnelID, "/connections/webhooks", "/events",
		"/settings/api-keys", "/connections/ad-platforms", "/pixel", "/conversions", "/reports"}
}

// externalURL finds absolute URLs in attributes, where a page would load or
// link them. Text may show other URLs (example origins, OAuth scope names in
// the platforms' setting docs); nothing is fetched from them.
var externalURL = regexp.MustCompile(`(?i)(?:src|href|action|formaction|srcset|poster|data|content)\s*=\s*["']?\s*((?:https?:)?//[^\s"'<>]*)`)

func TestEveryPageRendersAndNeedsLogin(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			srv, cfg, b, stages := start(t, be)
			funnelID := stageList(t, cfg)[stages[0].ID].FunnelID
			// An event, so the events page and an event page have content.
			r := pruuvtest.Post(t, srv.URL, stages[0].ID, stages[0].WebhookToken, `{"reference":"R1","utm_source":"google"}`)
			// A site, so the Pixel page shows a snippet.
			pruuvtest.Run(t, cfg, "site", "create", "--client", "Acme", "--origin", "https://shop.example")
			anon := newBrowser(t, srv.URL)
			for _, path := range append(pages(funnelID), "/events/"+r.JSON["event_id"].(string)) {
				p := b.get(path)
				if p.status != http.StatusOK {
					t.Errorf("GET %s logged in: %d", path, p.status)
				}
				if csp := p.header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
					t.Errorf("GET %s: CSP %q", path, csp)
				}
				if !strings.Contains(p.body, `data-testid="current-user">`+email) {
					t.Errorf("GET %s: the page does not show the user", path)
				}
				// No fonts, scripts, styles or links to elsewhere: the only
				// absolute URLs in attributes are the instance's own.
				for _, m := range externalURL.FindAllStringSubmatch(p.body, -1) {
					if u := m[1]; !strings.HasPrefix(u, srv.URL+"/") {
						t.Errorf("GET %s: external URL %q", path, u)
					}
				}
				a := anon.get(path)
				if a.status != http.StatusSeeOther || !strings.HasPrefix(a.header.Get("Location"), "/login?next=") {
					t.Errorf("GET %s without a session: %d %s", path, a.status, a.header.Get("Location"))
				}
			}
			for _, path := range []string{"/funnels/fun_nope", "/events/0190-nope"} {
				if p := b.get(path); p.status != http.StatusNotFound {
					t.Errorf("GET %s: %d", path, p.status)
				}
			}
			if p := b.get("/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/funnels" {
				t.Errorf("GET /: %d %s", p.status, p.header.Get("Location"))
			}
		})
	}
}

// Every route of the dashboard's table, not only the pages listed above,
// needs a session: without one a GET is sent to the login page and any
// other method is refused before its handler runs. Only the login form and
// the static files are public.
func TestEveryRouteNeedsASession(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	srv := pruuvtest.Start(t, cfg)
	pruuvtest.Run(t, cfg, "user", "create", "--email", email, "--password", password)
	stages := pruuvtest.Funnel(t, cfg, "Acme", "Leads", "Lead")
	d, err := dashboard.New(dashboard.Options{Auth: auth.New(auth.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	public := map[string]bool{"GET /login": true, "POST /login": true, "GET /static/{file}": true}
	wildcard := regexp.MustCompile(`\{[^}]+\}`)
	before := stageList(t, cfg)[stages[0].ID]
	anon := newBrowser(t, srv.URL)
	for _, pat := range d.Patterns() {
		if public[pat] {
			continue
		}
		method, path, _ := strings.Cut(pat, " ")
		// A real stage id, so that a handler reached by mistake would find
		// something to change.
		path = wildcard.ReplaceAllString(strings.TrimSuffix(path, "{$}"), stages[0].ID)
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(url.Values{"name": {"Hacked"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		p := anon.do(req)
		switch {
		case method == http.MethodGet:
			if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login?next=") {
				t.Errorf("%s without a session: %d %s", pat, p.status, p.header.Get("Location"))
			}
		case p.status != http.StatusForbidden:
			t.Errorf("%s without a session: %d, want 403", pat, p.status)
		}
	}
	if s := stageList(t, cfg)[stages[0].ID]; s != before {
		t.Errorf("an anonymous request changed the stage: %+v", s)
	}
}

func TestLoginLogout(t *testing.T) {
	be := pruuvtest.Backends()[0]
	cfg := be.Config(t)
	srv := pruuvtest.Start(t, cfg)
	b := newBrowser(t, srv.URL)
	if p := b.get("/login"); !strings.Contains(p.body, `data-testid="first-run"`) {
		t.Fatal("the login page does not explain the first run when no user exists")
	}
	pruuvtest.Run(t, cfg, "user", "create", "--email", email, "--password", password)
	b.get("/login")
	if p := b.post("/login", url.Values{"email": {email}, "password": {"not the password"}}); p.status != http.StatusUnauthorized ||
		!strings.Contains(p.body, "Wrong email or password") {
		t.Fatalf("wrong password: %d", p.status)
	}
	if p := b.post("/login", url.Values{"email": {email}, "password": {password}, "csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Fatalf("login with a forged form token: %d", p.status)
	}
	p := b.post("/login", url.Values{"email": {email}, "password": {password}, "next": {"/events?stage=x"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/events?stage=x" {
		t.Fatalf("login: %d %s", p.status, p.header.Get("Location"))
	}
	var sc *http.Cookie
	for _, c := range b.c.Jar.Cookies(mustURL(srv.URL)) {
		if c.Name == "pruuv_session" {
			sc = c
		}
	}
	if sc == nil {
		t.Fatal("no session cookie")
	}
	setCookie := strings.Join(p.header.Values("Set-Cookie"), "\n")
	if !strings.Contains(setCookie, "HttpOnly") || !strings.Contains(setCookie, "SameSite=Lax") {
		t.Fatalf("session cookie attributes: %s", setCookie)
	}
	// An off-site next is ignored.
	b2 := newBrowser(t, srv.URL)
	b2.get("/login")
	if p := b2.post("/login", url.Values{"email": {email}, "password": {password}, "next": {"//evil.example/"}}); p.header.Get("Location") != "/" {
		t.Fatalf("off-site next followed: %s", p.header.Get("Location"))
	}

	b.get("/funnels")
	if p := b.post("/logout", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("logout: %d", p.status)
	}
	if p := b.get("/funnels"); p.status != http.StatusSeeOther {
		t.Fatalf("after logout: %d", p.status)
	}
	// The old cookie, replayed, names no session.
	replay := newBrowser(t, srv.URL)
	replay.c.Jar.SetCookies(mustURL(srv.URL), []*http.Cookie{{Name: "pruuv_session", Value: sc.Value}})
	if p := replay.get("/funnels"); p.status != http.StatusSeeOther {
		t.Fatalf("replayed cookie after logout: %d", p.status)
	}
	// The other session is untouched.
	if p := b2.get("/funnels"); p.status != http.StatusOK {
		t.Fatalf("other session after logout: %d", p.status)
	}
}

// A post-login redirect stays on this site whatever next holds. Browsers
// remove tabs and newlines from a Location and read a backslash as a slash,
// so each of these would otherwise lead to evil.example.
func TestLoginNextStaysOnSite(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	srv := pruuvtest.Start(t, cfg)
	pruuvtest.Run(t, cfg, "user", "create", "--email", email, "--password", password)
	for _, next := range []string{"//evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example",
		"/\t\\evil.example", "\t//evil.example", "https://evil.example/", "/\x00/evil.example"} {
		b := newBrowser(t, srv.URL)
		p := b.get("/login?next=" + url.QueryEscape(next))
		if strings.Contains(p.body, "evil.example") {
			t.Errorf("next=%q: the login form carries it on", next)
		}
		form := url.Values{"email": {email}, "password": {password}, "next": {next}, "csrf": {b.csrf}}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range b.c.Jar.Cookies(mustURL(srv.URL)) {
			req.AddCookie(c)
		}
		// The transport, not the client, so that a Location Go cannot parse
		// (but a browser follows) is read as sent.
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("next=%q: %d Location %q, want /", next, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// A local path with a query is kept.
	b := newBrowser(t, srv.URL)
	b.get("/login")
	if p := b.post("/login", url.Values{"email": {email}, "password": {password}, "next": {"/events?stage=x&from=2026-01-01"}}); p.header.Get("Location") != "/events?stage=x&from=2026-01-01" {
		t.Errorf("local next: %q", p.header.Get("Location"))
	}
}

func TestLoginThrottled(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	srv := pruuvtest.Start(t, cfg)
	pruuvtest.Run(t, cfg, "user", "create", "--email", email, "--password", password)
	b := newBrowser(t, srv.URL)
	b.get("/login")
	for i := range 10 {
		if p := b.post("/login", url.Values{"email": {email}, "password": {"wrong password"}}); p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i+1, p.status)
		}
	}
	p := b.post("/login", url.Values{"email": {email}, "password": {password}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many login attempts") {
		t.Fatalf("11th attempt: %d %q", p.status, p.header.Get("Retry-After"))
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestFormsNeedTheSessionsCSRFTokenAndSameOrigin(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			srv, cfg, b, stages := start(t, be)
			funnelID := stageList(t, cfg)[stages[0].ID].FunnelID
			other := newBrowser(t, srv.URL)
			other.login()
			other.get("/funnels") // other.csrf is now the other session's token

			rename := "/funnels/" + funnelID + "/rename"
			cases := []struct {
				name   string
				form   url.Values
				header []string
			}{
				{"no token", url.Values{"name": {"Hacked"}, "csrf": {""}}, nil},
				{"another session's token", url.Values{"name": {"Hacked"}, "csrf": {other.csrf}}, nil},
				{"cross-site", url.Values{"name": {"Hacked"}}, []string{"Sec-Fetch-Site", "cross-site"}},
				{"cross-origin", url.Values{"name": {"Hacked"}}, []string{"Origin", "http://evil.example"}},
			}
			b.get("/funnels/" + funnelID)
			for _, c := range cases {
				if p := b.post(rename, c.form, c.header...); p.status != http.StatusForbidden {
					t.Errorf("%s: %d", c.name, p.status)
				}
				if p := b.post("/stages/"+stages[0].ID+"/limit", url.Values{"hourly_limit": {"7"}, "csrf": c.form["csrf"]}, c.header...); c.form["csrf"] != nil && p.status != http.StatusForbidden {
					t.Errorf("%s (limit): %d", c.name, p.status)
				}
			}
			if p := b.post("/connections/webhooks/"+stages[0].ID+"/reveal", url.Values{"csrf": {""}}); p.status != http.StatusForbidden ||
				strings.Contains(p.body, stages[0].WebhookToken) {
				t.Errorf("reveal without a token: %d", p.status)
			}
			for _, s := range stageList(t, cfg) {
				if s.FunnelName != "Leads" || s.HourlyLimit != store.DefaultHourlyLimit {
					t.Fatalf("a refused form changed the database: %+v", s)
				}
			}
			// The same form with the right token and same-origin headers works.
			b.get("/funnels/" + funnelID)
			if p := b.post(rename, url.Values{"name": {"Renamed"}}, "Sec-Fetch-Site", "same-origin", "Origin", srv.URL); p.status != http.StatusSeeOther {
				t.Fatalf("good rename: %d\n%s", p.status, p.body)
			}
			if s := stageList(t, cfg)[stages[0].ID]; s.FunnelName != "Renamed" {
				t.Fatalf("rename did not reach the database: %+v", s)
			}
		})
	}
}

func TestFunnelForms(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			_, cfg, b, _ := start(t, be)
			b.get("/clients")
			if p := b.post("/clients", url.Values{"name": {"Globex"}, "time_zone": {"Europe/Paris"}, "currency": {"eur"}}); p.status != http.StatusSeeOther {
				t.Fatalf("create client: %d\n%s", p.status, p.body)
			}
			if p := b.post("/clients", url.Values{"name": {"Globex"}, "time_zone": {"UTC"}, "currency": {"EUR"}}); p.status != http.StatusUnprocessableEntity {
				t.Fatalf("duplicate client: %d", p.status)
			}
			if p := b.post("/clients", url.Values{"name": {"Initech"}, "time_zone": {"Mars/Olympus"}, "currency": {"EUR"}}); p.status != http.StatusUnprocessableEntity {
				t.Fatalf("bad time zone: %d", p.status)
			}
			p := b.get("/clients")
			m := regexp.MustCompile(`data-id="(cli_[^"]+)"><td>Globex</td>`).FindStringSubmatch(p.body)
			if m == nil || !strings.Contains(p.body, "Europe/Paris") || !strings.Contains(p.body, "EUR") {
				t.Fatalf("client not listed:\n%s", p.body)
			}
			b.get("/funnels")
			p = b.post("/funnels", url.Values{"client_id": {m[1]}, "name": {"Sales"}, "stages": {"Lead\r\nDemo\r\nWon"}})
			if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/funnels/fun_") {
				t.Fatalf("create funnel: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
			}
			funnelPath := strings.TrimSuffix(p.header.Get("Location"), "?done=funnel")
			if p := b.post("/funnels", url.Values{"client_id": {m[1]}, "name": {"Bad"}, "stages": {"Lead\nlead"}}); p.status != http.StatusUnprocessableEntity {
				t.Fatalf("duplicate stage names: %d", p.status)
			}
			byName := func() map[string]store.Stage {
				out := map[string]store.Stage{}
				for _, s := range stageList(t, cfg) {
					if s.ClientName == "Globex" {
						out[s.Name] = s
					}
				}
				return out
			}
			st := byName()
			if len(st) != 3 || st["Lead"].Position != 1 || st["Demo"].Position != 2 || st["Won"].Position != 3 {
				t.Fatalf("stages %+v", st)
			}
			b.get(funnelPath)
			if p := b.post("/stages/"+st["Demo"].ID+"/rename", url.Values{"name": {"Meeting"}}); p.status != http.StatusSeeOther {
				t.Fatalf("rename stage: %d", p.status)
			}
			if p := b.post("/stages/"+st["Won"].ID+"/rename", url.Values{"name": {"lead"}}); p.status != http.StatusUnprocessableEntity {
				t.Fatalf("rename to a sibling's name: %d", p.status)
			}
			if p := b.post("/stages/"+st["Won"].ID+"/move", url.Values{"direction": {"up"}}); p.status != http.StatusSeeOther {
				t.Fatalf("move: %d", p.status)
			}
			if p := b.post("/stages/"+st["Lead"].ID+"/limit", url.Values{"hourly_limit": {"250"}}); p.status != http.StatusSeeOther {
				t.Fatalf("limit: %d", p.status)
			}
			if p := b.post("/stages/"+st["Lead"].ID+"/limit", url.Values{"hourly_limit": {"0"}}); p.status != http.StatusUnprocessableEntity {
				t.Fatalf("limit 0: %d", p.status)
			}
			if p := b.post(strings.Replace(funnelPath, "/funnels/", "/funnels/", 1)+"/stages", url.Values{"name": {"Repeat"}}); p.status != http.StatusSeeOther {
				t.Fatalf("add stage: %d", p.status)
			}
			st = byName()
			got := fmt.Sprintf("%s=%d %s=%d %s=%d %s=%d limit=%d", "Lead", st["Lead"].Position, "Won", st["Won"].Position, "Meeting", st["Meeting"].Position,
				"Repeat", st["Repeat"].Position, st["Lead"].HourlyLimit)
			if got != "Lead=1 Won=2 Meeting=3 Repeat=4 limit=250" {
				t.Fatalf("after the forms: %s", got)
			}
			if p := b.get(funnelPath); !strings.Contains(p.body, `value="Meeting"`) {
				t.Fatal("funnel page does not show the renamed stage")
			}
		})
	}
}

var tokenInput = regexp.MustCompile(`id="token-([^"]+)" value="([^"]+)"`)

func TestWebhookTokensRevealAndRotate(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			srv, cfg, b, stages := start(t, be)
			st := stages[1]
			p := b.get("/connections/webhooks")
			for _, s := range stages {
				if strings.Contains(p.body, s.WebhookToken) {
					t.Fatal("a token is shown before it is revealed")
				}
				if !strings.Contains(p.body, srv.URL+"/api/webhooks/funnel/"+s.ID) {
					t.Fatalf("endpoint of %s missing", s.ID)
				}
			}
			if !strings.Contains(p.body, "YOUR_WEBHOOK_TOKEN") || !strings.Contains(p.body, `"reference":    "CRM-REF-001"`) {
				t.Fatal("curl example missing")
			}
			p = b.post("/connections/webhooks/"+st.ID+"/reveal", nil)
			m := tokenInput.FindAllStringSubmatch(p.body, -1)
			if p.status != http.StatusOK || len(m) != 1 || m[0][1] != st.ID || m[0][2] != st.WebhookToken {
				t.Fatalf("reveal: %d %v", p.status, m)
			}
			if p.header.Get("Cache-Control") != "no-store" || !strings.Contains(p.body, `data-testid="copy-token"`) ||
				!strings.Contains(p.body, "Bearer "+st.WebhookToken) {
				t.Fatal("revealed token page: no-store, copy button and curl example with the token expected")
			}

			b.get("/connections/webhooks")
			p = b.post("/connections/webhooks/"+st.ID+"/rotate", url.Values{"overlap": {"24h"}})
			m = tokenInput.FindAllStringSubmatch(p.body, -1)
			if p.status != http.StatusOK || len(m) != 1 || m[0][2] == st.WebhookToken || !strings.Contains(p.body, "keeps working until") {
				t.Fatalf("rotate: %d %v", p.status, m)
			}
			newTok := m[0][2]
			for i, tok := range []string{newTok, st.WebhookToken} { // the old one works for the overlap
				if r := pruuvtest.Post(t, srv.URL, st.ID, tok, fmt.Sprintf(`{"reference":"rot-%d"}`, i)); r.Status != 200 {
					t.Fatalf("token %d after rotation: %d %s", i, r.Status, r.Body)
				}
			}
			b.get("/connections/webhooks")
			p = b.post("/connections/webhooks/"+st.ID+"/rotate", url.Values{"overlap": {"0s"}})
			newest := tokenInput.FindStringSubmatch(p.body)[2]
			// (That newTok stops at once is the store's and ingest's tested
			// contract; a running server may honour it for up to its 1 s cache.)
			if r := pruuvtest.Post(t, srv.URL, st.ID, newest, `{"reference":"rot-y"}`); r.Status != 200 {
				t.Fatalf("newest token: %d", r.Status)
			}
			b.get("/connections/webhooks")
			p = b.post("/connections/webhooks/"+st.ID+"/reveal", nil)
			if tokenInput.FindStringSubmatch(p.body)[2] != newest {
				t.Fatal("reveal after rotation does not show the current token")
			}
			b.get("/connections/webhooks")
			if p := b.post("/connections/webhooks/stg_nope/reveal", nil); p.status != http.StatusNotFound {
				t.Fatalf("reveal of an unknown stage: %d", p.status)
			}
			db, err := store.Open(context.Background(), store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			audit, err := db.ListAudit(context.Background(), 100)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, e := range audit {
				if e.Target == st.ID && e.Actor == "user:"+email {
					counts[e.Action]++
				}
			}
			if counts["stage.reveal_token"] != 2 || counts["stage.rotate_token"] != 2 {
				t.Fatalf("audit trail of the stage: %v", counts)
			}
		})
	}
}
