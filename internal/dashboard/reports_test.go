package dashboard_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/report"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// openStore opens the test server's database beside it.
// ingestAt stores a webhook event as if Pruuv had received it at at: the
// Webhook API stamps events with its own clock, so a test that needs events
// on past days or at a chosen minute writes them as ingest would.
func ingestAt(t testing.TB, st *store.Store, stageID string, at time.Time, body string) {
	t.Helper()
	f, err := event.Decode([]byte(body), at)
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	it := &store.Item{Event: event.Event{ID: token.NewEventID(at), StageID: stageID, Source: event.SourceWebhook, ReceivedAt: at, Fields: f},
		HourlyLimit: 1_000_000, DedupSince: at.Add(-time.Minute).UnixMilli(), HourStart: at.Truncate(time.Hour).UnixMilli()}
	if err := st.Ingest(context.Background(), []*store.Item{it}); err != nil || it.Outcome != store.Accepted {
		t.Fatalf("ingest %s at %s: %v (outcome %d)", body, at, err, it.Outcome)
	}
}

var (
	stageRowRe = regexp.MustCompile(`(?s)data-testid="report-stage-row" data-stage-id="([^"]+)">(.*?)</tr>`)
	cellRe     = regexp.MustCompile(`data-col="(\w+)">([^<]*)<`)
)

// stageCells reads the stages table: stage id → column → cells.
func stageCells(body string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, m := range stageRowRe.FindAllStringSubmatch(body, -1) {
		cols := map[string][]string{}
		for _, c := range cellRe.FindAllStringSubmatch(m[2], -1) {
			cols[c[1]] = append(cols[c[1]], c[2])
		}
		out[m[1]] = cols
	}
	return out
}

func TestReportsPage(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			srv, cfg, b, stages := start(t, be)
			funnelID := stageList(t, cfg)[stages[0].ID].FunnelID

			// Before any event: the page shows the funnel, empty.
			p := b.get("/reports")
			if p.status != http.StatusOK || !strings.Contains(p.body, `data-testid="report-empty"`) || strings.Contains(p.body, "<svg") ||
				!strings.Contains(p.body, `value="`+funnelID+`" selected`) {
				t.Fatalf("empty report: %d\n%s", p.status, p.body)
			}
			for _, e := range []struct {
				stage int
				body  string
			}{
				{0, `{"reference":"a","utm_campaign":"brand","gclid":"G"}`},
				{0, `{"reference":"b","utm_campaign":"brand"}`},
				{0, `{"reference":"c","utm_campaign":"=cmd()"}`},
				{1, `{"reference":"a","utm_campaign":"brand","gclid":"G"}`},
				{2, `{"reference":"a","utm_campaign":"brand","gclid":"G","revenue_value":250,"currency":"GBP"}`},
				{2, `{"reference":"b","utm_campaign":"brand","revenue_value":0.5,"currency":"EUR"}`},
			} {
				if r := pruuvtest.Post(t, srv.URL, stages[e.stage].ID, stages[e.stage].WebhookToken, e.body); r.Status != 200 {
					t.Fatalf("post %s: %d", e.body, r.Status)
				}
			}
			p = b.get("/reports")
			if p.status != http.StatusOK {
				t.Fatalf("report: %d\n%s", p.status, p.body)
			}
			if n := strings.Count(p.body, `class="bar"`); n != 3 {
				t.Errorf("funnel chart has %d bars, want 3", n)
			}
			if n := strings.Count(p.body, `class="series"`); n != 3 || !strings.Contains(p.body, `data-testid="funnel-chart"><svg`) ||
				!strings.Contains(p.body, `data-testid="daily-chart"><svg`) {
				t.Errorf("daily chart has %d lines, want 3, or a chart is missing", n)
			}
			if strings.Contains(p.body, " style=") || strings.Contains(p.body, "<style") || strings.Contains(p.body, "<script>") {
				t.Error("the page has inline style or script, which its CSP refuses")
			}
			cells := stageCells(p.body)
			want := map[string]string{stages[0].ID: "3 — 0 0", stages[1].ID: "1 33.3% 0 0", stages[2].ID: "2 200.0% 0.5 250"}
			for id, w := range want {
				c := cells[id]
				got := strings.Join(append(append(c["contacts"], c["conversion"]...), c["revenue"]...), " ")
				if got != w {
					t.Errorf("stage %s: %q, want %q (contacts, conversion, revenue EUR, GBP)", id, got, w)
				}
			}
			if strings.Contains(p.body, `data-testid="report-breakdown"`) {
				t.Error("a breakdown table without a breakdown")
			}

			// Broken down by campaign: one row per campaign and stage.
			p = b.get("/reports?funnel=" + funnelID + "&by=utm_campaign")
			rows := regexp.MustCompile(`data-testid="report-breakdown-row" data-stage-id="[^"]+" data-value="([^"]*)"`).FindAllStringSubmatch(p.body, -1)
			var values []string
			for _, r := range rows {
				values = append(values, r[1])
			}
			if strings.Join(values, ",") != "=cmd(),=cmd(),=cmd(),brand,brand,brand" {
				t.Errorf("breakdown rows %q", values)
			}

			// Every table's CSV is report.WriteCSV's, as a download.
			st := openStore(t, cfg)
			today := report.DateOf(time.Now().UTC()) // the client's zone is UTC
			q := report.Query{FunnelID: funnelID, From: today.AddDays(-29), To: today, By: "utm_campaign"}
			rep, err := report.Run(context.Background(), st, q)
			if err != nil {
				t.Fatal(err)
			}
			links := regexp.MustCompile(`href="(/reports/export\.csv\?[^"]+)"`).FindAllStringSubmatch(p.body, -1)
			if len(links) != 3 {
				t.Fatalf("%d CSV links, want 3", len(links))
			}
			for _, l := range links {
				u, _ := url.Parse(strings.ReplaceAll(l[1], "&amp;", "&"))
				table := map[string]report.Table{"stages": report.TableStages, "breakdown": report.TableBreakdown, "daily": report.TableDaily}[u.Query().Get("table")]
				var wantCSV bytes.Buffer
				if err := report.WriteCSV(&wantCSV, rep, table); err != nil {
					t.Fatal(err)
				}
				c := b.get(u.String())
				if c.status != http.StatusOK || c.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
					!strings.HasPrefix(c.header.Get("Content-Disposition"), `attachment; filename="pruuv-report-`+funnelID+"-") {
					t.Errorf("%s: %d %q %q", u, c.status, c.header.Get("Content-Type"), c.header.Get("Content-Disposition"))
				}
				if c.body != wantCSV.String() {
					t.Errorf("%s:\n%s\nwant\n%s", u, c.body, wantCSV.String())
				}
			}
			if !strings.Contains(b.get("/reports/export.csv?funnel="+funnelID+"&from="+q.From.String()+"&to="+q.To.String()+"&by=utm_campaign&table=breakdown").body, "'=cmd()") {
				t.Error("a formula-like value is not guarded in the CSV")
			}

			// Wrong queries are shown on the page, not run.
			for _, bad := range []string{"from=2026-13-01", "from=2026-03-02&to=2026-03-01", "from=2020-01-01&to=2026-01-01", "by=email", "source=crm"} {
				p := b.get("/reports?funnel=" + funnelID + "&" + bad)
				if p.status != http.StatusBadRequest || !strings.Contains(p.body, `data-testid="error"`) || strings.Contains(p.body, "<svg") ||
					!strings.Contains(p.body, `data-testid="report-form"`) {
					t.Errorf("%s: %d", bad, p.status)
				}
				if c := b.get("/reports/export.csv?funnel=" + funnelID + "&table=stages&" + bad); c.status != http.StatusBadRequest {
					t.Errorf("export %s: %d", bad, c.status)
				}
			}
			if p := b.get("/reports?funnel=fun_nope"); p.status != http.StatusNotFound {
				t.Errorf("unknown funnel: %d", p.status)
			}
			if c := b.get("/reports/export.csv?funnel=fun_nope&from=2026-01-01&to=2026-01-02&table=stages"); c.status != http.StatusNotFound {
				t.Errorf("export of an unknown funnel: %d", c.status)
			}
			if c := b.get("/reports/export.csv?funnel=" + funnelID + "&from=2026-01-01&to=2026-01-02&table=events"); c.status != http.StatusBadRequest {
				t.Errorf("export of an unknown table: %d", c.status)
			}
		})
	}
}

// A client's time zone decides the report's days: an event received at
// 23:30 UTC is on that day in UTC and on the next in Europe/Berlin.
func TestClientTimeZoneMovesTheDay(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			_, cfg, b, stages := start(t, be)
			funnelID := stageList(t, cfg)[stages[0].ID].FunnelID
			st := openStore(t, cfg)
			ingestAt(t, st, stages[0].ID, time.Date(2026, 1, 14, 23, 30, 0, 0, time.UTC), `{"reference":"late","revenue_value":10}`)
			contacts := func(day string) string {
				t.Helper()
				p := b.get("/reports?funnel=" + funnelID + "&from=" + day + "&to=" + day)
				if p.status != http.StatusOK {
					t.Fatalf("report of %s: %d", day, p.status)
				}
				c := stageCells(p.body)[stages[0].ID]
				return strings.Join(append(c["contacts"], c["revenue"]...), " ")
			}
			if a, b := contacts("2026-01-14"), contacts("2026-01-15"); a != "1 10" || b != "0" {
				t.Fatalf("in UTC: 14th %q, 15th %q; want 1 contact and 10 GBP on the 14th", a, b)
			}

			p := b.get("/clients")
			id := regexp.MustCompile(`data-id="(cli_[^"]+)"><td>Acme</td>`).FindStringSubmatch(p.body)[1]
			if p := b.post("/clients/"+id+"/settings", url.Values{"time_zone": {"Mars/Olympus"}, "currency": {"EUR"}}); p.status != http.StatusUnprocessableEntity ||
				!strings.Contains(p.body, "time zone must be an IANA time zone") {
				t.Fatalf("bad time zone: %d", p.status)
			}
			if p := b.post("/clients/"+id+"/settings", url.Values{"time_zone": {"Europe/Berlin"}, "currency": {"EUR"}, "csrf": {""}}); p.status != http.StatusForbidden {
				t.Fatalf("settings without the CSRF token: %d", p.status)
			}
			if c, _ := st.GetClient(context.Background(), id); c.TimeZone != "UTC" || c.Currency != "GBP" {
				t.Fatalf("a refused form changed the client: %+v", c)
			}
			b.get("/clients")
			if p := b.post("/clients/"+id+"/settings", url.Values{"time_zone": {"Europe/Berlin"}, "currency": {"eur"}}); p.status != http.StatusSeeOther {
				t.Fatalf("settings: %d\n%s", p.status, p.body)
			}
			if p := b.get("/clients?done=settings"); !strings.Contains(p.body, `data-testid="client-tz">Europe/Berlin<`) ||
				!strings.Contains(p.body, `data-testid="client-currency">EUR<`) || !strings.Contains(p.body, "Client settings saved.") {
				t.Fatal("the clients page does not show the new settings")
			}
			// The event had no currency: it now counts in EUR.
			if a, b := contacts("2026-01-14"), contacts("2026-01-15"); a != "0" || b != "1 10" {
				t.Fatalf("in Europe/Berlin: 14th %q, 15th %q; want 1 contact and 10 EUR on the 15th", a, b)
			}
			if p := b.get("/reports?funnel=" + funnelID + "&from=2026-01-15&to=2026-01-15"); !strings.Contains(p.body, "Revenue EUR") {
				t.Error("revenue without a currency is not in the new default currency")
			}
			audit, err := st.ListAudit(context.Background(), 100)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range audit {
				if e.Action == "client.update" && e.Target == id && e.Actor == "user:"+email {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d client.update audit entries, want 1", n)
			}
			// The default range is the last 30 days in the client's zone.
			today := report.DateOf(time.Now().In(mustLoad(t, "Europe/Berlin")))
			if p := b.get("/reports"); !strings.Contains(p.body, `name="from" value="`+today.AddDays(-29).String()+`"`) ||
				!strings.Contains(p.body, `name="to" value="`+today.String()+`"`) {
				t.Error("the default range is not the last 30 days in the client's time zone")
			}
		})
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
