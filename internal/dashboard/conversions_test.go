package dashboard_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/conversion/conversiontest"
	"github.com/pruuv/pruuv/internal/pixel"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
)

// startQuiet is start with the server's own conversion loop idle after its
// first (empty) run, so only the test's `conversions send` sends.
func startQuiet(t *testing.T, be pruuvtest.Backend) (*pruuvtest.Server, config.Config, *browser, []pruuvtest.Stage) {
	cfg := be.Config(t)
	cfg.ConversionsPoll = 10 * time.Minute
	srv := pruuvtest.Start(t, cfg)
	pruuvtest.Run(t, cfg, "user", "create", "--email", email, "--password", password)
	stages := pruuvtest.Funnel(t, cfg, "Acme", "Leads", "Lead", "Qualified", "Won")
	b := newBrowser(t, srv.URL)
	b.login()
	return srv, cfg, b, stages
}

func openStore(t *testing.T, cfg config.Config) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func clientID(t *testing.T, st *store.Store, name string) string {
	t.Helper()
	cs, err := st.ListClients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c.ID
		}
	}
	t.Fatalf("no client %q", name)
	return ""
}

func auditCounts(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	entries, err := st.ListAudit(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range entries {
		if e.Actor == "user:"+email {
			out[e.Action]++
		}
	}
	return out
}

const metaToken = "EAAB-very-secret-access-token-9XyZ"

func TestAdPlatformsPage(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			_, cfg, b, stages := startQuiet(t, be)
			st := openStore(t, cfg)
			ctx := context.Background()
			acme := clientID(t, st, "Acme")
			p := b.get("/connections/ad-platforms")
			for _, want := range []string{`data-client-id="` + acme + `"`, `name="set_pixel_id"`, `type="password" name="set_access_token"`,
				`data-platform="google"`, `data-testid="mappings"`, `data-stage-id="` + stages[0].ID + `"`} {
				if !strings.Contains(p.body, want) {
					t.Fatalf("ad platforms page lacks %s", want)
				}
			}
			save := "/connections/ad-platforms/" + acme + "/meta"

			// Without the session's CSRF token nothing is stored.
			if p := b.post(save, url.Values{"set_pixel_id": {"123"}, "set_access_token": {metaToken}, "csrf": {""}}); p.status != http.StatusForbidden {
				t.Fatalf("no CSRF token: %d", p.status)
			}
			if raw := pruuvtest.RawConnections(t, cfg); raw != "" {
				t.Fatalf("a refused form stored %s", raw)
			}
			// Settings the platform refuses: 422, shown at the form, nothing stored.
			b.get("/connections/ad-platforms")
			p = b.post(save, url.Values{"set_pixel_id": {"not-digits"}, "set_access_token": {metaToken}})
			if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `data-testid="form-error"`) ||
				!strings.Contains(p.body, "pixel_id") || strings.Contains(p.body, metaToken) {
				t.Fatalf("invalid settings: %d\n%s", p.status, p.body)
			}
			if raw := pruuvtest.RawConnections(t, cfg); raw != "" {
				t.Fatalf("invalid settings stored %s", raw)
			}

			p = b.post(save, url.Values{"set_pixel_id": {"123"}, "set_access_token": {metaToken}, "set_api_version": {""}})
			if p.status != http.StatusSeeOther {
				t.Fatalf("save connection: %d\n%s", p.status, p.body)
			}
			raw := pruuvtest.RawConnections(t, cfg)
			if !strings.Contains(raw, "123") || strings.Contains(raw, metaToken) || strings.Contains(raw, "very-secret") {
				t.Fatalf("raw connection row: %s", raw)
			}
			p = b.get("/connections/ad-platforms")
			if strings.Contains(p.body, metaToken) || !strings.Contains(p.body, "…9XyZ") || !strings.Contains(p.body, `value="123"`) {
				t.Fatal("the page must show the plain setting and only the secret's hint")
			}
			// A blank secret keeps the stored one; a plain setting changes.
			if p := b.post(save, url.Values{"set_pixel_id": {"456"}, "set_access_token": {""}}); p.status != http.StatusSeeOther {
				t.Fatalf("update connection: %d\n%s", p.status, p.body)
			}
			conn, err := st.GetConnection(ctx, acme, "meta")
			if err != nil {
				t.Fatal(err)
			}
			key, _ := secret.Parse(pruuvtest.SecretKey)
			if s, err := conversion.OpenSettings(key, conn); err != nil || s["access_token"] != metaToken || s["pixel_id"] != "456" {
				t.Fatalf("after update: %v %v", s, err)
			}
			// A new connection that fails Validate stores nothing.
			b.get("/connections/ad-platforms")
			if p := b.post("/connections/ad-platforms/"+acme+"/google", url.Values{"set_customer_id": {"x"}}); p.status != http.StatusUnprocessableEntity {
				t.Fatalf("invalid google connection: %d", p.status)
			}
			if _, err := st.GetConnection(ctx, acme, "google"); err == nil {
				t.Fatal("a refused google connection was stored")
			}
			if p := b.post("/connections/ad-platforms/"+acme+"/myspace", nil); p.status != http.StatusNotFound {
				t.Fatalf("unknown platform: %d", p.status)
			}

			// Map and unmap.
			mapPath := save + "/map"
			if p := b.post(mapPath, url.Values{"stage_id": {stages[2].ID}, "event": {"Purchase"}, "op": {"map"}, "csrf": {""}}); p.status != http.StatusForbidden {
				t.Fatalf("map without CSRF: %d", p.status)
			}
			b.get("/connections/ad-platforms")
			if p := b.post(mapPath, url.Values{"stage_id": {stages[2].ID}, "event": {"Purchase"}, "op": {"map"}}); p.status != http.StatusSeeOther {
				t.Fatalf("map: %d\n%s", p.status, p.body)
			}
			if p := b.post(mapPath, url.Values{"stage_id": {stages[0].ID}, "event": {"Lead"}, "op": {"map"}}); p.status != http.StatusSeeOther {
				t.Fatalf("map: %d", p.status)
			}
			if p := b.post(mapPath, url.Values{"stage_id": {stages[0].ID}, "event": {strings.Repeat("x", 201)}, "op": {"map"}}); p.status != http.StatusUnprocessableEntity {
				t.Fatalf("long event: %d", p.status)
			}
			p = b.get("/connections/ad-platforms")
			if !strings.Contains(p.body, `data-platform="meta" data-event="Purchase"`) || !strings.Contains(p.body, `data-platform="meta" data-event="Lead"`) {
				t.Fatal("the mappings are not shown")
			}
			if p := b.post(mapPath, url.Values{"stage_id": {stages[2].ID}, "event": {"Purchase"}, "op": {"unmap"}}); p.status != http.StatusSeeOther {
				t.Fatalf("unmap: %d", p.status)
			}
			maps, err := st.ListMappings(ctx)
			if err != nil || len(maps) != 1 || maps[0].StageID != stages[0].ID || maps[0].EventName != "Lead" || maps[0].Platform != "meta" {
				t.Fatalf("mappings %+v %v", maps, err)
			}
			if got := auditCounts(t, st); got["connection.save"] != 2 || got["stage.map"] != 2 || got["stage.unmap"] != 1 {
				t.Fatalf("audit %v", got)
			}
		})
	}
}

var snippetPre = regexp.MustCompile(`(?s)<pre id="snippet-([^"]+)" data-testid="pixel-snippet">(.*?)</pre>`)

func TestPixelPage(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			srv, cfg, b, _ := startQuiet(t, be)
			st := openStore(t, cfg)
			ctx := context.Background()
			acme := clientID(t, st, "Acme")
			b.get("/pixel")
			form := url.Values{"client_id": {acme}, "origins": {"https://Shop.example\r\nhttps://www.shop.example:443"}}
			if p := b.post("/pixel/sites", url.Values{"client_id": {acme}, "origins": {"https://shop.example"}, "csrf": {""}}); p.status != http.StatusForbidden {
				t.Fatalf("no CSRF token: %d", p.status)
			}
			for _, bad := range []string{"http://shop.example", "shop.example", "https://shop.example/path", ""} {
				if p := b.post("/pixel/sites", url.Values{"client_id": {acme}, "origins": {bad}}); p.status != http.StatusUnprocessableEntity {
					t.Errorf("origin %q: %d", bad, p.status)
				}
			}
			if p := b.post("/pixel/sites", url.Values{"client_id": {"cli_nope"}, "origins": {"https://x.example"}}); p.status != http.StatusUnprocessableEntity {
				t.Errorf("unknown client: %d", p.status)
			}
			if sites, _ := st.ListSites(ctx); len(sites) != 0 {
				t.Fatalf("refused forms created %v", sites)
			}
			p := b.post("/pixel/sites", form)
			if p.status != http.StatusSeeOther {
				t.Fatalf("create site: %d\n%s", p.status, p.body)
			}
			sites, err := st.ListSites(ctx)
			if err != nil || len(sites) != 1 || !slices.Equal(sites[0].Origins, []string{"https://shop.example", "https://www.shop.example"}) ||
				sites[0].Name != "shop.example" || sites[0].Client.ID != acme {
				t.Fatalf("sites %+v %v", sites, err)
			}
			s := sites[0]
			p = b.get("/pixel")
			m := snippetPre.FindStringSubmatch(p.body)
			if m == nil || m[1] != s.ID || html.UnescapeString(m[2]) != pixel.Snippet(srv.URL, s.Key) {
				t.Fatalf("snippet on the page:\n%v\nwant\n%s", m, pixel.Snippet(srv.URL, s.Key))
			}
			if !strings.Contains(p.body, html.EscapeString(pixel.Tag(srv.URL, s.Key))) || !strings.Contains(p.body, `data-copy="snippet-`+s.ID+`"`) {
				t.Fatal("the page lacks the tag or the copy button")
			}

			b.get("/pixel")
			if p := b.post("/pixel/sites/"+s.ID+"/origins", url.Values{"origin": {"https://m.shop.example"}}); p.status != http.StatusSeeOther {
				t.Fatalf("add origin: %d\n%s", p.status, p.body)
			}
			if p := b.post("/pixel/sites/"+s.ID+"/origins", url.Values{"origin": {"ftp://x"}}); p.status != http.StatusUnprocessableEntity {
				t.Fatalf("bad origin: %d", p.status)
			}
			if p := b.post("/pixel/sites/"+s.ID+"/origins/remove", url.Values{"origin": {"https://shop.example"}, "csrf": {""}}); p.status != http.StatusForbidden {
				t.Fatalf("remove without CSRF: %d", p.status)
			}
			if p := b.post("/pixel/sites/"+s.ID+"/origins/remove", url.Values{"origin": {"https://shop.example"}}); p.status != http.StatusSeeOther {
				t.Fatalf("remove origin: %d", p.status)
			}
			if p := b.post("/pixel/sites/site_nope/origins", url.Values{"origin": {"https://x.example"}}); p.status != http.StatusNotFound {
				t.Fatalf("unknown site: %d", p.status)
			}
			got, err := st.GetSite(ctx, s.Key)
			if err != nil || !slices.Equal(got.Origins, []string{"https://m.shop.example", "https://www.shop.example"}) {
				t.Fatalf("origins after the forms: %v %v", got.Origins, err)
			}
			p = b.get("/pixel")
			if !strings.Contains(p.body, `data-origin="https://m.shop.example"`) || strings.Contains(p.body, `data-origin="https://shop.example"`) {
				t.Fatal("the page does not show the origins as stored")
			}
			if a := auditCounts(t, st); a["site.create"] != 1 || a["site.add_origins"] != 1 || a["site.remove_origins"] != 1 {
				t.Fatalf("audit %v", a)
			}
		})
	}
}

var sendRow = regexp.MustCompile(`data-testid="send-row" data-event-id="([^"]+)" data-platform="([^"]+)" data-status="([^"]+)"`)

func sendRows(p page) []string {
	var out []string
	for _, m := range sendRow.FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1]+" "+m[2]+" "+m[3])
	}
	slices.Sort(out)
	return out
}

func TestConversionLog(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			srv, cfg, b, stages := startQuiet(t, be)
			st := openStore(t, cfg)
			ctx := context.Background()
			acme := clientID(t, st, "Acme")
			pruuvtest.Funnel(t, cfg, "Other", "Leads", "Lead")
			other := clientID(t, st, "Other")

			// The connection and mapping through the dashboard, the events
			// through the Webhook API, the sends through the real queue with
			// scripted platform clients.
			b.get("/connections/ad-platforms")
			if p := b.post("/connections/ad-platforms/"+acme+"/meta", url.Values{"set_pixel_id": {"1"}, "set_access_token": {metaToken}}); p.status != http.StatusSeeOther {
				t.Fatalf("connection: %d", p.status)
			}
			if p := b.post("/connections/ad-platforms/"+acme+"/meta/map", url.Values{"stage_id": {stages[0].ID}, "event": {"Lead"}}); p.status != http.StatusSeeOther {
				t.Fatalf("map: %d", p.status)
			}
			var ids []string
			for _, body := range []string{`{"reference":"ok","fbc":"fb.1.1.ok"}`, `{"reference":"bad","fbc":"fb.1.1.bad"}`,
				`{"reference":"later","fbc":"fb.1.1.later"}`, `{"reference":"g","gclid":"EAIaIQobCh"}`} {
				r := pruuvtest.Post(t, srv.URL, stages[0].ID, stages[0].WebhookToken, body)
				if r.Status != 200 {
					t.Fatalf("webhook %d %s", r.Status, r.Body)
				}
				ids = append(ids, r.JSON["event_id"].(string))
			}
			reg, cls := conversiontest.Registry(time.Now)
			cls[conversion.Meta].Script(ids[1], conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 400, Message: "invalid fbc"},
				conversion.Result{Outcome: conversion.Sent, HTTPStatus: 200, Message: "ok"})
			cls[conversion.Meta].Script(ids[2], conversion.Result{Outcome: conversion.Transient, HTTPStatus: 503, Message: "busy"})
			pruuvtest.RunWith(t, cfg, reg, "conversions", "send")

			all := sendRows(b.get("/conversions"))
			// The gclid event: no Google connection, and nothing Meta matches on.
			want := []string{ids[0] + " meta sent", ids[1] + " meta failed", ids[2] + " meta retrying", ids[3] + " google skipped", ids[3] + " meta skipped"}
			slices.Sort(want)
			if !slices.Equal(all, want) {
				t.Fatalf("log %v, want %v", all, want)
			}
			for q, want := range map[string][]string{
				"status=failed":                   {ids[1] + " meta failed"},
				"status=retrying&platform=meta":   {ids[2] + " meta retrying"},
				"platform=google":                 {ids[3] + " google skipped"},
				"platform=tiktok":                 nil,
				"client=" + other:                 nil,
				"client=" + acme + "&status=sent": {ids[0] + " meta sent"},
			} {
				if got := sendRows(b.get("/conversions?" + q)); !slices.Equal(got, want) {
					t.Errorf("?%s: %v, want %v", q, got, want)
				}
			}
			if p := b.get("/conversions?status=lost"); p.status != http.StatusBadRequest {
				t.Errorf("bad status filter: %d", p.status)
			}
			p := b.get("/conversions?status=failed")
			for _, want := range []string{`href="/events/` + ids[1] + `"`, "<td>400</td>", "invalid fbc", "rejected", `data-testid="send-retry"`} {
				if !strings.Contains(p.body, want) {
					t.Errorf("failed row lacks %s", want)
				}
			}
			if p := b.get("/conversions?status=sent"); strings.Contains(p.body, `data-testid="send-retry"`) {
				t.Error("a sent send has a Retry button")
			}
			if p := b.get("/conversions?platform=google"); !strings.Contains(p.body, "no_connection") || !strings.Contains(p.body, `data-testid="send-retry"`) {
				t.Error("the skipped send lacks its reason or its Retry button")
			}

			p = b.get("/conversions/" + ids[1])
			if p.status != http.StatusOK || !strings.Contains(p.body, `data-outcome="permanent"`) ||
				!strings.Contains(p.body, "meta event=Lead id="+ids[1]) {
				t.Fatalf("detail: %d\n%s", p.status, p.body)
			}
			if p := b.get("/conversions/" + ids[0] + "x"); p.status != http.StatusNotFound {
				t.Fatalf("detail of an event without sends: %d", p.status)
			}

			// Retry: not without the token, not a sent send, then for real.
			if p := b.post("/conversions/"+ids[1]+"/retry", url.Values{"platform": {"meta"}, "csrf": {""}}); p.status != http.StatusForbidden {
				t.Fatalf("retry without CSRF: %d", p.status)
			}
			failed := func() store.SendRow {
				rows, err := st.ListSends(ctx, store.SendFilter{EventID: ids[1], Platform: "meta"})
				if err != nil || len(rows) != 1 {
					t.Fatalf("send of %s: %v %v", ids[1], rows, err)
				}
				return rows[0]
			}
			if r := failed(); r.Status != "failed" || r.Attempts != 1 {
				t.Fatalf("a refused retry changed the send: %+v", r)
			}
			b.get("/conversions/" + ids[0])
			if p := b.post("/conversions/"+ids[0]+"/retry", url.Values{"platform": {"meta"}}); p.status != http.StatusConflict {
				t.Fatalf("retry of a sent send: %d", p.status)
			}
			if p := b.post("/conversions/"+ids[1]+"/retry", url.Values{"platform": {"meta"}}); p.status != http.StatusSeeOther ||
				p.header.Get("Location") != "/conversions/"+ids[1]+"?done=retried" {
				t.Fatalf("retry: %d %s", p.status, p.header.Get("Location"))
			}
			if r := failed(); r.Status != "pending" || r.Attempts != 0 {
				t.Fatalf("after retry: %+v", r)
			}
			if a := auditCounts(t, st); a["conversion.retry"] != 1 {
				t.Fatalf("audit %v", a)
			}
			pruuvtest.RunWith(t, cfg, reg, "conversions", "send")
			if r := failed(); r.Status != "sent" || cls[conversion.Meta].Count(ids[1]) != 2 {
				t.Fatalf("the retried send: %+v, sent %d times", r, cls[conversion.Meta].Count(ids[1]))
			}
		})
	}
}
