package report_test

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/report"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// ev is one event of the hand-built dataset.
type ev struct {
	stage    int // 0 Lead, 1 Qualified, 2 Won
	ref      string
	at       string // RFC 3339, UTC
	campaign string
	clicks   map[string]string // gclid, fbc, fbp, ttclid, msclkid, gbraid, wbraid
	revenue  string            // decimal, "" for none
	currency string
	source   event.Source
}

// The range is 28–30 March 2026 in Europe/London, across the change to
// summer time (01:00 GMT on Sunday 29 March): it starts at 00:00 GMT on the
// 28th and ends at 00:00 BST on the 31st, which is 23:00 UTC on the 30th.
var (
	rangeFrom = report.Date{Year: 2026, Month: time.March, Day: 28}
	rangeTo   = report.Date{Year: 2026, Month: time.March, Day: 30}
	g         = map[string]string{"gclid": "EAIaIQobCh"}
)

var dataset = []ev{
	{stage: 0, ref: "A", at: "2026-03-28T00:00:00Z", campaign: "spring", clicks: g}, // the range's first millisecond
	{stage: 1, ref: "A", at: "2026-03-29T10:00:00Z", campaign: "spring", clicks: g},
	{stage: 2, ref: "A", at: "2026-03-30T22:30:00Z", campaign: "spring", clicks: g, revenue: "100.5", currency: "GBP"}, // 23:30 BST on the last day: in
	{stage: 0, ref: "B", at: "2026-03-27T23:59:59Z", campaign: "spring", clicks: map[string]string{"fbc": "fb.1.1.x"}}, // before the range
	{stage: 0, ref: "B", at: "2026-03-28T12:00:00Z", campaign: "summer", clicks: map[string]string{"fbc": "fb.1.1.x"}},
	{stage: 1, ref: "B", at: "2026-03-29T00:30:00Z", campaign: "summer", clicks: map[string]string{"fbc": "fb.1.1.x"}}, // 00:30 GMT, before the change
	{stage: 0, ref: "C", at: "2026-03-30T23:30:00Z", campaign: "spring"},                                               // 00:30 BST on the 31st: out
	{stage: 0, ref: "C", at: "2026-03-29T01:30:00Z", clicks: map[string]string{"ttclid": "tt"}},                        // 02:30 BST
	{stage: 0, ref: "D", at: "2026-03-28T09:00:00Z", campaign: "summer", clicks: map[string]string{"msclkid": "ms", "fbp": "fb.1.1.2"}},
	{stage: 0, ref: "D", at: "2026-03-28T10:00:00Z", campaign: "summer", clicks: map[string]string{"msclkid": "ms", "fbp": "fb.1.1.2"}}, // re-sent: one contact
	{stage: 2, ref: "D", at: "2026-03-30T12:00:00Z", campaign: "summer", clicks: map[string]string{"msclkid": "ms"}, revenue: "20", currency: "EUR"},
	{stage: 2, ref: "D", at: "2026-03-30T13:00:00Z", campaign: "summer", clicks: map[string]string{"msclkid": "ms"}, revenue: "30.000001", currency: "EUR"},
	{stage: 0, ref: "E", at: "2026-03-28T08:00:00Z", campaign: "=HYPERLINK(\"x\")", clicks: map[string]string{"gclid": "g", "fbc": "f", "ttclid": "t"}},
	{stage: 2, ref: "E", at: "2026-03-29T12:00:00Z", campaign: "=HYPERLINK(\"x\")", clicks: map[string]string{"wbraid": "w"}, revenue: "5"}, // no currency: the client's GBP
	{stage: 0, ref: "F", at: "2026-03-29T23:30:00Z"},                                                                                        // 00:30 BST on the 30th
	{stage: 0, ref: "G", at: "2026-03-28T10:00:00Z", campaign: "spring", source: event.SourcePixel},
	{stage: 0, ref: "G", at: "2026-03-28T11:00:00Z", campaign: "summer"}, // counted under its first event's campaign
	{stage: 1, ref: "H", at: "2026-04-02T11:00:00Z", campaign: "summer"}, // after the range
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// fixture stores the dataset on a fresh database and returns the store, the
// funnel id and the stage ids.
func fixture(t *testing.T, cfg config.Config, events []ev) (*store.Store, string, []string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var ns []store.NewStage
	var ids []string
	for _, n := range []string{"Lead", "Qualified", "Won"} {
		id := token.NewID("stg")
		ns = append(ns, store.NewStage{ID: id, Name: n, Token: store.StageToken{ID: token.NewID("tok"), Hash: []byte(id), Sealed: "x", Hint: "h"}})
		ids = append(ids, id)
	}
	_, f, err := st.CreateFunnel(ctx, token.NewID("cli"), "Acme", token.NewID("fun"), "Leads", ns, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	setTimeZone(t, cfg, "Europe/London")
	// In arrival order, as ingest sees events.
	events = slices.Clone(events)
	slices.SortStableFunc(events, func(a, b ev) int { return ts(a.at).Compare(ts(b.at)) })
	for _, e := range events {
		at := ts(e.at)
		var fl event.Fields
		fl.Reference, fl.UTMCampaign = e.ref, e.campaign
		fl.GCLID, fl.FBC, fl.FBP, fl.TTCLID, fl.MSCLKID, fl.GBRAID, fl.WBRAID = e.clicks["gclid"], e.clicks["fbc"], e.clicks["fbp"], e.clicks["ttclid"], e.clicks["msclkid"], e.clicks["gbraid"], e.clicks["wbraid"]
		if e.revenue != "" {
			var whole, frac int64
			fmt.Sscanf(e.revenue, "%d", &whole)
			if _, f, ok := cut(e.revenue); ok {
				fmt.Sscanf((f + "000000")[:6], "%d", &frac)
			}
			fl.HasRevenue, fl.RevenueMicros, fl.Currency = true, whole*1_000_000+frac, e.currency
		}
		src := cmp.Or(e.source, event.SourceWebhook)
		it := &store.Item{Event: event.Event{ID: token.NewEventID(at), StageID: ids[e.stage], Source: src, ReceivedAt: at, Fields: fl},
			HourlyLimit: 1000, DedupSince: at.Add(-time.Minute).UnixMilli(), HourStart: at.Truncate(time.Hour).UnixMilli()}
		if err := st.Ingest(ctx, []*store.Item{it}); err != nil {
			t.Fatal(err)
		}
		if it.Outcome != store.Accepted {
			t.Fatalf("event %+v was not accepted: %v", e, it.Outcome)
		}
	}
	return st, f.ID, ids
}

func cut(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// setTimeZone sets the only client's time zone directly, below the rules of
// internal/funnel, so the report is tested on its own.
func setTimeZone(t *testing.T, cfg config.Config, tz string) {
	t.Helper()
	driver, dsn := "pgx", cfg.DatabaseURL
	if dsn == "" {
		driver, dsn = "sqlite", "file:"+filepath.Join(cfg.DataDir, store.SQLiteFile)+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE clients SET time_zone = $1", tz); err != nil {
		t.Fatal(err)
	}
}

// model computes what the report should say, the slow and obvious way.
type model struct {
	contacts map[string]map[int]map[string]bool // value → stage → refs
	revenue  map[string]map[int]map[string]int64
	daily    map[report.Date]map[int]int
}

func platform(c map[string]string) string {
	switch {
	case c["gclid"] != "" || c["gbraid"] != "" || c["wbraid"] != "":
		return "google"
	case c["fbc"] != "":
		return "meta"
	case c["ttclid"] != "":
		return "tiktok"
	case c["msclkid"] != "":
		return "microsoft"
	}
	return ""
}

func expect(events []ev, by string, source event.Source) model {
	loc, _ := time.LoadLocation("Europe/London")
	m := model{contacts: map[string]map[int]map[string]bool{}, revenue: map[string]map[int]map[string]int64{}, daily: map[report.Date]map[int]int{}}
	var in []ev
	for _, e := range events {
		d := report.DateOf(ts(e.at).In(loc))
		if !d.Before(rangeFrom) && !rangeTo.Before(d) && (source == "" || cmp.Or(e.source, event.SourceWebhook) == source) {
			in = append(in, e)
		}
	}
	slices.SortStableFunc(in, func(a, b ev) int { return ts(a.at).Compare(ts(b.at)) })
	value := func(e ev) string {
		switch by {
		case "utm_campaign":
			return e.campaign
		case "click_platform":
			return platform(e.clicks)
		}
		return ""
	}
	first := map[[2]any]ev{}
	for _, e := range in {
		k := [2]any{e.stage, e.ref}
		if _, ok := first[k]; !ok {
			first[k] = e
		}
	}
	for _, e := range in {
		f := first[[2]any{e.stage, e.ref}]
		v := value(f)
		if m.contacts[v] == nil {
			m.contacts[v], m.revenue[v] = map[int]map[string]bool{}, map[int]map[string]int64{}
		}
		if m.contacts[v][e.stage] == nil {
			m.contacts[v][e.stage], m.revenue[v][e.stage] = map[string]bool{}, map[string]int64{}
		}
		if !m.contacts[v][e.stage][e.ref] {
			m.contacts[v][e.stage][e.ref] = true
			d := report.DateOf(ts(e.at).In(loc))
			if m.daily[d] == nil {
				m.daily[d] = map[int]int{}
			}
			m.daily[d][e.stage]++
		}
		if e.revenue != "" {
			var whole, frac int64
			fmt.Sscanf(e.revenue, "%d", &whole)
			if _, f, ok := cut(e.revenue); ok {
				fmt.Sscanf((f + "000000")[:6], "%d", &frac)
			}
			// Revenue goes with the event's own value; in this dataset a
			// contact's events agree, so this is also the contact's.
			rv := value(e)
			if m.revenue[rv] == nil {
				m.revenue[rv] = map[int]map[string]int64{}
			}
			if m.revenue[rv][e.stage] == nil {
				m.revenue[rv][e.stage] = map[string]int64{}
			}
			m.revenue[rv][e.stage][cmp.Or(e.currency, "GBP")] += whole*1_000_000 + frac
		}
	}
	return m
}

func (m model) rows(ids []string, names []string, by string) []report.Row {
	var values []string
	for v := range m.contacts {
		if v != "" || by == "" {
			values = append(values, v)
		}
	}
	slices.Sort(values)
	if _, ok := m.contacts[""]; ok && by != "" {
		values = append(values, "") // none last
	}
	var out []report.Row
	for _, v := range values {
		var prev int
		for s := range ids {
			n := len(m.contacts[v][s])
			rev := map[string]int64{}
			for c, x := range m.revenue[v][s] {
				rev[c] = x
			}
			row := report.Row{StageID: ids[s], StageName: names[s], Position: s + 1, Contacts: n, Revenue: rev}
			if by != "" && v != "" {
				row.Value = &v
			}
			if s > 0 && prev > 0 {
				c := float64(n) / float64(prev)
				row.ConversionFromPrevious = &c
			}
			prev = n
			out = append(out, row)
		}
	}
	return out
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func sameRows(t *testing.T, got, want []report.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		gc, wc := -1.0, -1.0
		if g.ConversionFromPrevious != nil {
			gc = *g.ConversionFromPrevious
		}
		if w.ConversionFromPrevious != nil {
			wc = *w.ConversionFromPrevious
		}
		if str(g.Value) != str(w.Value) || g.StageID != w.StageID || g.StageName != w.StageName || g.Position != w.Position ||
			g.Contacts != w.Contacts || !reflect.DeepEqual(g.Revenue, w.Revenue) || math.Abs(gc-wc) > 1e-12 {
			t.Errorf("row %d:\n got  %s %s %d contacts %v conv %v\n want %s %s %d contacts %v conv %v", i,
				str(g.Value), g.StageName, g.Contacts, g.Revenue, gc, str(w.Value), w.StageName, w.Contacts, w.Revenue, wc)
		}
	}
}

func TestFunnelReport(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			st, funnelID, ids := fixture(t, cfg, dataset)
			names := []string{"Lead", "Qualified", "Won"}
			ctx := context.Background()
			for _, by := range []string{"", "utm_campaign", "click_platform"} {
				t.Run("by="+by, func(t *testing.T) {
					r, err := report.Run(ctx, st, report.Query{FunnelID: funnelID, From: rangeFrom, To: rangeTo, By: by})
					if err != nil {
						t.Fatal(err)
					}
					m := expect(dataset, by, "")
					if r.TimeZone != "Europe/London" || r.FunnelName != "Leads" || len(r.Stages) != 3 || r.Stages[2].Name != "Won" {
						t.Errorf("report header %+v", r)
					}
					sameRows(t, r.Rows, m.rows(ids, names, by))
					sameRows(t, r.Totals, expect(dataset, "", "").rows(ids, names, ""))
					// Daily: three days by three stages, summing to the totals.
					if len(r.Daily) != 9 {
						t.Fatalf("%d daily rows, want 9", len(r.Daily))
					}
					for i, d := range r.Daily {
						s := i % 3
						want := m.daily[d.Date][s]
						if d.Date != rangeFrom.AddDays(i/3) || d.StageID != ids[s] || d.Contacts != want {
							t.Errorf("daily %d = %+v, want %s %s %d", i, d, rangeFrom.AddDays(i/3), names[s], want)
						}
					}
				})
			}

			// Spot checks of the figures the model computes, in case it and
			// the report were wrong the same way.
			r, err := report.Run(ctx, st, report.Query{FunnelID: funnelID, From: rangeFrom, To: rangeTo})
			if err != nil {
				t.Fatal(err)
			}
			if got := []int{r.Totals[0].Contacts, r.Totals[1].Contacts, r.Totals[2].Contacts}; !slices.Equal(got, []int{7, 2, 3}) {
				t.Errorf("contacts per stage %v, want [7 2 3]", got)
			}
			if want := map[string]int64{"GBP": 105_500_000, "EUR": 50_000_001}; !reflect.DeepEqual(r.Totals[2].Revenue, want) {
				t.Errorf("revenue at Won %v, want %v", r.Totals[2].Revenue, want)
			}
			if c := r.Totals[2].ConversionFromPrevious; c == nil || *c != 1.5 {
				t.Errorf("Qualified→Won conversion %v, want 1.5", c)
			}
			if r.Totals[0].ConversionFromPrevious != nil {
				t.Error("the first stage has a conversion")
			}
			// The Lead contacts per local day: A, B, D, E, G on the 28th; C
			// at 02:30 BST on the 29th; F at 00:30 BST on the 30th.
			if got := []int{r.Daily[0].Contacts, r.Daily[3].Contacts, r.Daily[6].Contacts}; !slices.Equal(got, []int{5, 1, 1}) {
				t.Errorf("Lead per day %v, want [5 1 1]", got)
			}

			// One day shorter: A's Won at 23:30 BST on the 30th drops out.
			r, err = report.Run(ctx, st, report.Query{FunnelID: funnelID, From: rangeFrom, To: rangeTo.AddDays(-1)})
			if err != nil {
				t.Fatal(err)
			}
			if r.Totals[2].Contacts != 1 || len(r.Daily) != 6 {
				t.Errorf("28–29 March: %d at Won, %d daily rows; want 1 and 6", r.Totals[2].Contacts, len(r.Daily))
			}
			// One day later: C's Lead at 00:30 BST on the 31st comes in, but C
			// is already counted (on the 29th), and H on 2 April stays out.
			r, err = report.Run(ctx, st, report.Query{FunnelID: funnelID, From: rangeFrom, To: rangeTo.AddDays(1)})
			if err != nil {
				t.Fatal(err)
			}
			if r.Totals[0].Contacts != 7 || r.Totals[1].Contacts != 2 {
				t.Errorf("28–31 March: %d leads and %d qualified, want 7 and 2", r.Totals[0].Contacts, r.Totals[1].Contacts)
			}

			// Source filter: only G's first event came from the pixel.
			r, err = report.Run(ctx, st, report.Query{FunnelID: funnelID, From: rangeFrom, To: rangeTo, By: "utm_campaign", Source: "pixel"})
			if err != nil {
				t.Fatal(err)
			}
			sameRows(t, r.Rows, expect(dataset, "utm_campaign", event.SourcePixel).rows(ids, names, "utm_campaign"))
			if len(r.Rows) != 3 || str(r.Rows[0].Value) != "spring" || r.Rows[0].Contacts != 1 {
				t.Errorf("pixel-only rows %+v", r.Rows)
			}
		})
	}
}

func TestReportErrors(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	st, funnelID, _ := fixture(t, cfg, nil)
	ctx := context.Background()
	_, err := report.Run(ctx, st, report.Query{FunnelID: "fun_nope", From: rangeFrom, To: rangeTo})
	if !errors.Is(err, report.ErrNotFound) {
		t.Errorf("unknown funnel: %v", err)
	}
	for _, q := range []report.Query{
		{FunnelID: funnelID, From: rangeFrom, To: rangeTo, By: "reference"},
		{FunnelID: funnelID, From: rangeTo, To: rangeFrom},
		{FunnelID: funnelID, From: rangeFrom, To: rangeFrom.AddDays(report.MaxDays)},
	} {
		if _, err := report.Run(ctx, st, q); !errors.Is(err, report.ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", q, err)
		}
	}
	// An empty range of a funnel with no events: every stage, zero.
	r, err := report.Run(ctx, st, report.Query{FunnelID: funnelID, From: rangeFrom, To: rangeFrom, By: "gender"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Totals) != 3 || r.Totals[0].Contacts != 0 || len(r.Rows) != 0 || len(r.Daily) != 3 {
		t.Errorf("empty report: %d totals, %d rows, %d days", len(r.Totals), len(r.Rows), len(r.Daily))
	}
}

// A revenue total too large for int64 millionths fails the report with
// ErrRevenueOverflow on both databases; on SQLite the error comes back from
// inside the query, which keeps only an error's text.
func TestRevenueOverflow(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			var events []ev
			for i := range 10 { // 10 × the largest revenue_value: over 9.2 × 10¹² units
				events = append(events, ev{stage: 2, ref: fmt.Sprint("big", i), at: fmt.Sprintf("2026-03-28T10:0%d:00Z", i),
					revenue: fmt.Sprint(event.MaxRevenue), currency: "GBP"})
			}
			st, funnelID, _ := fixture(t, b.Config(t), events)
			_, err := report.Run(context.Background(), st, report.Query{FunnelID: funnelID, From: rangeFrom, To: rangeTo})
			if !errors.Is(err, report.ErrRevenueOverflow) {
				t.Fatalf("err = %v, want ErrRevenueOverflow", err)
			}
		})
	}
}

func TestDayStart(t *testing.T) {
	for _, c := range []struct {
		zone string
		day  report.Date
		want string
	}{
		{"Europe/London", report.Date{Year: 2026, Month: time.March, Day: 29}, "2026-03-29T00:00:00Z"},        // the change is at 01:00
		{"Europe/London", report.Date{Year: 2026, Month: time.March, Day: 30}, "2026-03-29T23:00:00Z"},        // summer time
		{"Europe/London", report.Date{Year: 2026, Month: time.October, Day: 26}, "2026-10-26T00:00:00Z"},      // after the 25-hour day
		{"America/Santiago", report.Date{Year: 2022, Month: time.September, Day: 11}, "2022-09-11T04:00:00Z"}, // midnight skipped
		{"Asia/Beirut", report.Date{Year: 2023, Month: time.March, Day: 26}, "2023-03-25T22:00:00Z"},          // midnight skipped
		{"Asia/Kathmandu", report.Date{Year: 2026, Month: time.January, Day: 1}, "2025-12-31T18:15:00Z"},
	} {
		loc, err := time.LoadLocation(c.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.day.In(loc).UTC().Format(time.RFC3339); got != c.want {
			t.Errorf("%s in %s starts at %s, want %s", c.day, c.zone, got, c.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	d, err := report.ParseDate("2026-03-29")
	if err != nil || d != (report.Date{Year: 2026, Month: time.March, Day: 29}) || d.String() != "2026-03-29" {
		t.Errorf("ParseDate: %v %v", d, err)
	}
	for _, bad := range []string{"", "2026-3-29", "2026-02-30", "29/03/2026", "2026-03-29T00:00:00Z"} {
		if _, err := report.ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) accepted", bad)
		}
	}
	if got := (report.Date{Year: 2026, Month: time.December, Day: 31}).AddDays(1); got.String() != "2027-01-01" {
		t.Errorf("AddDays across a year: %s", got)
	}
}

func TestFieldsMatchTheStore(t *testing.T) {
	if len(report.Fields) != len(store.ReportBreakdowns) {
		t.Errorf("report offers %d fields, the store %d", len(report.Fields), len(store.ReportBreakdowns))
	}
	for _, f := range report.Fields {
		if _, ok := store.ReportBreakdowns[f]; !ok {
			t.Errorf("the store cannot break down by %q", f)
		}
	}
}
