package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/store"
)

// seedBody is the body of the Webhook API page's curl example, as the seed
// page prints it; the Funnel Webhooks page must offer exactly this.
const seedBody = `{
    "reference":    "CRM-REF-001",
    "utm_source":   "google",
    "utm_medium":   "cpc",
    "utm_campaign": "brand-search",
    "gclid":        "EAIaIQobCh...",
    "revenue_value": 250,
    "currency":     "GBP"
  }`

// UpdateScreenshotsEnv names the variable that, set to 1, makes
// TestDashboardInChromium fill the report with a fortnight of demo events
// and write its screenshot to docs/screenshots/report.png.
const UpdateScreenshotsEnv = "PRUUV_UPDATE_SCREENSHOTS"

// curlExample reads the parts of a copied curl example.
var curlExample = regexp.MustCompile(`(?s)^curl -X POST (\S+) \\\n  -H "Authorization: Bearer (\S+)" \\\n  -H "Content-Type: application/json" \\\n  -d '(.*)'$`)

// TestDashboardInChromium drives the dashboard in headless Chromium as an
// operator would, on each backend: log in with a user made by the CLI,
// create a client and a funnel with the forms, reveal and copy a stage's
// token and curl example on Connections > Funnel Webhooks, send that
// example, find the event in the events browser and in the report, and see
// a form post without the CSRF token refused. It saves a screenshot of the
// report page.
//
// The Copy buttons are exercised for real: the tab is granted clipboard
// access and focus, so app.js takes its navigator.clipboard path (a
// loopback origin is a secure context), and the test reads back what was
// copied with navigator.clipboard.readText.
func TestDashboardInChromium(t *testing.T) {
	chrome := pruuvtest.Browser(t)
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			testInChromium(t, chrome, be)
		})
	}
}

// ui is one backend's run: its server and the tab driving it.
type ui struct {
	t   *testing.T
	srv *pruuvtest.Server
	tab context.Context
}

func testInChromium(t *testing.T, chrome context.Context, be pruuvtest.Backend) {
	cfg := be.Config(t)
	u := &ui{t: t, srv: pruuvtest.Start(t, cfg), tab: pruuvtest.Tab(t, chrome)}
	pruuvtest.RunInput(t, cfg, password+"\n", "user", "create", "--email", email, "--password-stdin")
	exceptions := pruuvtest.Exceptions(t, u.tab)
	u.prepare()

	// Log in.
	u.open("/funnels")
	if !strings.HasPrefix(u.eval(`location.pathname`), "/login") {
		t.Fatalf("without a session /funnels is at %s, want /login", u.eval(`location.href`))
	}
	u.do(chromedp.SetValue(chromedp.ID("email"), email), chromedp.SetValue(chromedp.ID("password"), password))
	u.submit(`[data-testid="login-submit"]`)
	if got := u.eval(`document.querySelector('[data-testid="current-user"]').textContent`); got != email {
		t.Fatalf("after logging in the page shows user %q", got)
	}

	// A client in Europe/London, then a funnel, with the forms.
	u.open("/clients")
	u.do(chromedp.SetValue(chromedp.ID("client-name"), "Acme"), chromedp.SetValue(chromedp.ID("client-tz"), "Europe/London"))
	u.submit(`[data-testid="client-create"]`)
	u.open("/funnels")
	u.do(chromedp.SetValue(chromedp.ID("funnel-name"), "Website leads"), chromedp.SetValue(chromedp.ID("funnel-stages"), "Lead\nQualified\nWon"))
	u.submit(`[data-testid="funnel-create"]`)
	funnelID := u.eval(`document.querySelector('[data-testid="funnel-id"]').textContent`)
	if !strings.HasPrefix(funnelID, "fun_") {
		t.Fatalf("after creating the funnel the page shows funnel id %q", funnelID)
	}

	// Connections > Funnel Webhooks: reveal the Lead stage's token, and copy
	// it and the curl example.
	u.submit(`[data-testid="nav-webhooks"]`)
	stageID := u.eval(`[...document.querySelectorAll('[data-testid="webhook-stage"]')]
		.find(s => s.querySelector('h2').textContent.trim() === 'Acme › Website leads › Lead').dataset.stageId`)
	section := `#stage-` + stageID
	u.submit(section + ` [data-testid="reveal-token"]`)
	tok := u.eval(`document.getElementById('token-` + stageID + `').value`)
	if !strings.HasPrefix(tok, "pruuv_whk_") {
		t.Fatalf("revealed token %q", tok)
	}
	if copied := u.copy(section + ` [data-testid="copy-token"]`); copied != tok {
		t.Fatalf("Copy put %q on the clipboard, want the token %q", copied, tok)
	}
	example := u.copy(section + ` [data-testid="copy-curl"]`)
	m := curlExample.FindStringSubmatch(example)
	if m == nil {
		t.Fatalf("the copied curl example is not the Webhook API page's:\n%s", example)
	}
	endpoint, bearer, body := m[1], m[2], m[3]
	if endpoint != u.srv.URL+"/api/webhooks/funnel/"+stageID || bearer != tok || body != seedBody {
		t.Fatalf("copied example: endpoint %s, token %s, body\n%s\nwant %s, %s and the seed page's body", endpoint, bearer, body, u.srv.URL+"/api/webhooks/funnel/"+stageID, tok)
	}

	// Send the example as curl would.
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := pruuvtest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Received bool   `json:"received"`
		EventID  string `json:"event_id"`
	}
	if err := json.Unmarshal(answer, &got); err != nil || resp.StatusCode != 200 || !got.Received || got.EventID == "" {
		t.Fatalf("the curl example got %d %s", resp.StatusCode, answer)
	}

	// The event in the events browser…
	u.submit(`[data-testid="nav-events"]`)
	row := u.eval(`(r => r ? r.textContent : '')(document.querySelector('[data-testid="event-row"][data-id="` + got.EventID + `"]'))`)
	if !strings.Contains(row, "CRM-REF-001") || !strings.Contains(row, "google / cpc / brand-search") || !strings.Contains(row, "250 GBP") {
		t.Fatalf("the events browser's row of %s: %q", got.EventID, row)
	}
	// …and in the report, with its charts.
	u.submit(`[data-testid="nav-reports"]`)
	lead := `[data-testid="report-stage-row"][data-stage-id="` + stageID + `"]`
	cells := u.eval(`[...document.querySelectorAll('` + lead + ` td')].map(td => td.textContent).join('|')`)
	if cells != "1|Lead|1|—|250" {
		t.Fatalf("the report's Lead row reads %q, want 1 contact and 250 GBP", cells)
	}
	if h := u.eval(`document.querySelector('` + lead + `').closest('table').tHead.textContent`); !strings.Contains(h, "Revenue GBP") {
		t.Fatalf("the stages table's header %q names no GBP column", h)
	}
	u.checkCharts(3)

	// A form post without the CSRF token, from the logged-in page: refused,
	// and nothing created.
	status := u.eval(`fetch('/funnels', {method: 'POST', body: new URLSearchParams({client_id: document.querySelector('[data-testid="report-client"]').value,
		name: 'Forged', stages: 'Lead'})}).then(r => String(r.status))`)
	if status != "403" {
		t.Fatalf("a POST without the CSRF token got %s, want 403", status)
	}
	u.open("/funnels")
	if n := u.eval(`String(document.querySelectorAll('[data-testid="funnel-row"]').length)`); n != "1" {
		t.Fatalf("%s funnels after the refused post, want 1", n)
	}

	update := os.Getenv(UpdateScreenshotsEnv) == "1" && be.Name == "sqlite"
	path := "/reports?funnel=" + funnelID
	if update {
		from := seedDemo(t, openStore(t, cfg), u.srv.URL, funnelStages(t, cfg, funnelID), tok)
		path += "&from=" + from + "&by=utm_campaign"
	}
	u.open(path)
	u.checkCharts(3)
	if l := exceptions.List(); len(l) > 0 {
		t.Fatalf("uncaught exceptions: %q", l)
	}
	if v := u.eval(`JSON.stringify(window.cspViolations)`); v != "[]" {
		t.Fatalf("Content-Security-Policy violations: %s", v)
	}
	png := u.screenshot()
	out := filepath.Join(t.TempDir(), "report.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the report page: %s", out)
	if update {
		docs := filepath.Join("..", "..", "docs", "screenshots", "report.png")
		if err := os.MkdirAll(filepath.Dir(docs), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(docs, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", docs)
	}
}

// prepare sets the tab up: a wide window, focus (the Clipboard API refuses
// an unfocused page, and a headless one is never focused), clipboard access
// for the server's origin, and a record of Content-Security-Policy
// violations in window.cspViolations.
func (u *ui) prepare() {
	u.t.Helper()
	c := chromedp.FromContext(u.tab)
	u.do(chromedp.EmulateViewport(1280, 900), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.cspViolations = []; document.addEventListener('securitypolicyviolation', e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI))`})
		return err
	}))
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(u.tab, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted,
			Origin: u.srv.URL, BrowserContextID: c.BrowserContextID})
		if err != nil {
			u.t.Fatalf("granting %s: %v", name, err)
		}
	}
}

func (u *ui) do(steps ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.tab, pruuvtest.BrowserTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		u.t.Fatal(err)
	}
}

func (u *ui) open(path string) {
	u.t.Helper()
	pruuvtest.Navigate(u.t, u.tab, u.srv.URL+path)
}

// eval evaluates a JavaScript expression whose value is a string.
func (u *ui) eval(expr string) string {
	u.t.Helper()
	return pruuvtest.Eval[string](u.t, u.tab, expr)
}

// submit clicks a button or link that loads another page, waits for that
// page, and fails on an error message there. The old page is marked so the
// wait cannot mistake it for the new one; evaluation errors while the pages
// swap are expected and retried.
func (u *ui) submit(sel string) {
	u.t.Helper()
	u.eval(`window.leaving = 'yes'`)
	u.do(chromedp.Click(sel))
	deadline := time.Now().Add(pruuvtest.BrowserTimeout)
	for {
		done, err := pruuvtest.EvalErr[bool](u.tab, `!window.leaving && document.readyState === 'complete'`)
		if err == nil && done {
			break
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("clicking %s loaded no page (%v)", sel, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if msg := u.eval(`(e => e ? e.textContent : '')(document.querySelector('[data-testid="error"]'))`); msg != "" {
		u.t.Fatalf("after clicking %s the page says: %s", sel, msg)
	}
}

// copy clicks a Copy button, waits for it to say Copied, and returns what
// is on the clipboard.
func (u *ui) copy(sel string) string {
	u.t.Helper()
	u.do(void(chromedp.Evaluate[bool](`navigator.clipboard.writeText('').then(() => true)`, chromedp.EvalAwaitPromise)), chromedp.Click(sel),
		void(chromedp.Poll[bool](`document.querySelector('`+sel+`').textContent === 'Copied'`)))
	return u.eval(`navigator.clipboard.readText()`)
}

// checkCharts checks that both charts are drawn: bars of some height, one
// line per stage, and no inline style anywhere on the page.
func (u *ui) checkCharts(stages int) {
	u.t.Helper()
	got := u.eval(`JSON.stringify({
		bars: document.querySelectorAll('[data-testid="funnel-chart"] svg rect.bar').length,
		tall: [...document.querySelectorAll('[data-testid="funnel-chart"] svg rect.bar')].some(r => r.getBBox().height > 0),
		lines: document.querySelectorAll('[data-testid="daily-chart"] svg polyline.series').length,
		styled: document.querySelectorAll('[style]').length})`)
	want := fmt.Sprintf(`{"bars":%d,"tall":true,"lines":%d,"styled":0}`, stages, stages)
	if got != want {
		u.t.Fatalf("charts: %s, want %s", got, want)
	}
}

func (u *ui) screenshot() []byte {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.tab, pruuvtest.BrowserTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		u.t.Fatal(err)
	}
	return png
}

// void drops an action's value, so it can be a step of chromedp.Do.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// funnelStages lists the funnel's stages in position order.
func funnelStages(t *testing.T, cfg config.Config, funnelID string) []store.Stage {
	t.Helper()
	var out []store.Stage
	for _, s := range stageList(t, cfg) {
		if s.FunnelID == funnelID {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b store.Stage) int { return a.Position - b.Position })
	return out
}

// seedDemo fills the funnel with a fortnight of plausible traffic for the
// screenshot: leads from four campaigns on three platforms and a
// newsletter, some of whom qualify a day or two later and some of those
// buy. The Webhook API stamps events with the time it receives them, so the
// past days' events are written as ingest would write them (ingestAt);
// today's leads go through the webhook with the Lead stage's token. The
// numbers come from a fixed seed, so a regenerated screenshot shows the
// same funnel. It returns the first day of the fortnight, in London.
func seedDemo(t *testing.T, st *store.Store, baseURL string, stages []store.Stage, leadToken string) string {
	t.Helper()
	type campaign struct {
		source, medium, name, click string
		weight                      int
	}
	campaigns := []campaign{
		{"google", "cpc", "brand-search", `"gclid":"EAIaIQobCh%d"`, 5},
		{"facebook", "paid-social", "spring-sale", `"fbc":"fb.1.1700000000000.IwAR%d"`, 4},
		{"tiktok", "paid-social", "creator-video", `"ttclid":"E.C.P.%d"`, 2},
		{"newsletter", "email", "april-digest", "", 2},
	}
	rnd := rand.New(rand.NewPCG(7, 11))
	pick := func() campaign {
		n := rnd.IntN(13)
		for _, c := range campaigns {
			if n -= c.weight; n < 0 {
				return c
			}
		}
		return campaigns[0]
	}
	london, _ := time.LoadLocation("Europe/London")
	now := time.Now()
	y, m, d := now.In(london).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, london)
	body := func(ref int, c campaign, extra string) string {
		b := fmt.Sprintf(`{"reference":"CRM-%04d","utm_source":%q,"utm_medium":%q,"utm_campaign":%q,"utm_content":"ad-%d"`,
			ref, c.source, c.medium, c.name, ref%3+1)
		if c.click != "" {
			b += "," + fmt.Sprintf(c.click, ref)
		}
		return b + extra + "}"
	}
	ref := 0
	for day := -13; day <= 0; day++ {
		leads := 3 + rnd.IntN(4) + (day+13)/3
		for range leads {
			ref++
			c := pick()
			at := today.AddDate(0, 0, day).Add(time.Duration(8*60+rnd.IntN(12*60)) * time.Minute)
			if day == 0 {
				if at.After(now) {
					at = now
				}
				if r := pruuvtest.Post(t, baseURL, stages[0].ID, leadToken, body(ref, c, "")); r.Status != 200 {
					t.Fatalf("demo lead: %d %s", r.Status, r.Body)
				}
				continue
			}
			ingestAt(t, st, stages[0].ID, at, body(ref, c, ""))
			if rnd.IntN(100) >= 45 {
				continue
			}
			at = at.Add(time.Duration(12+rnd.IntN(36)) * time.Hour)
			if !at.Before(now) {
				continue
			}
			ingestAt(t, st, stages[1].ID, at, body(ref, c, ""))
			if rnd.IntN(100) >= 40 {
				continue
			}
			at = at.Add(time.Duration(6+rnd.IntN(48)) * time.Hour)
			if !at.Before(now) {
				continue
			}
			value := 150 + 50*rnd.IntN(16)
			ingestAt(t, st, stages[2].ID, at, body(ref, c, fmt.Sprintf(`,"revenue_value":%d,"currency":"GBP"`, value)))
		}
	}
	return today.AddDate(0, 0, -13).Format(time.DateOnly)
}
