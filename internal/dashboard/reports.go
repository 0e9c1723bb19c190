package dashboard

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/report"
	"github.com/pruuv/pruuv/internal/store"
)

// DefaultReportDays is the range a report shows until one is chosen: the
// last 30 days, today included, in the client's time zone.
const DefaultReportDays = 30

// reportTables are the CSV tables by their name in the export's query.
var reportTables = map[string]report.Table{"stages": report.TableStages, "breakdown": report.TableBreakdown, "daily": report.TableDaily}

// reportForm is the report page's GET form: what was asked, with the
// defaults filled in.
type reportForm struct {
	Client, Funnel  string
	From, To        string
	By, Source      string
	Clients         []store.ClientDetail
	Funnels         []store.FunnelSummary // of the chosen client
	Fields, Sources []string
	TimeZone        string // the chosen client's
	Currency        string // the chosen client's default
	NoFunnels       bool   // nothing to report on yet
	ExportQuery     url.Values
}

// reportRow is a report row as the page shows it.
type reportRow struct {
	Label      string
	StageID    string
	StageName  string
	Position   int
	Contacts   int
	Conversion string   // "50.0%", or "—" where there is none
	Revenue    []string // one per currency of the report, in order
}

type reportDay struct {
	Date     string
	Contacts []int // one per stage, in position order
}

type reportData struct {
	Form       reportForm
	Report     *report.Report
	Currencies []string
	Stages     []reportRow
	Breakdown  []reportRow
	Days       []reportDay
	Empty      bool // no contacts and no revenue in the range
	FunnelSVG  template.HTML
	DailySVG   template.HTML
	Export     map[string]template.URL // table → query of its CSV
}

// reportQuery resolves the page's query into a report query: the client and
// funnel (the client's first funnel when the funnel is not one of its own;
// the first client with a funnel when none is chosen) and the range, which
// defaults to the last DefaultReportDays days in the client's time zone.
// It returns the form to show and, when the query cannot run, the message.
func (d *Dashboard) reportQuery(r *http.Request) (reportForm, report.Query, int, string, error) {
	v := r.URL.Query()
	f := reportForm{Client: v.Get("client"), Funnel: v.Get("funnel"), From: v.Get("from"), To: v.Get("to"),
		By: v.Get("by"), Source: v.Get("source"), Fields: report.Fields, Sources: report.Sources}
	var q report.Query
	clients, err := d.Store.ListClients(r.Context())
	if err != nil {
		return f, q, 0, "", err
	}
	funnels, err := d.Store.ListFunnels(r.Context())
	if err != nil {
		return f, q, 0, "", err
	}
	f.Clients = clients
	var chosen *store.FunnelSummary
	for i := range funnels {
		if funnels[i].ID == f.Funnel {
			chosen = &funnels[i]
		}
	}
	switch {
	case f.Funnel != "" && chosen == nil && f.Client == "":
		return f, q, http.StatusNotFound, "There is no funnel with that id.", nil
	case f.Client == "" && chosen != nil:
		f.Client = chosen.ClientID
	case f.Client == "" && len(funnels) > 0:
		f.Client = funnels[0].ClientID // the first client by name that has a funnel
	}
	var client *store.ClientDetail
	for i := range clients {
		if clients[i].ID == f.Client {
			client = &clients[i]
		}
	}
	if client == nil && f.Client != "" {
		return f, q, http.StatusNotFound, "There is no client with that id.", nil
	}
	for _, fn := range funnels {
		if fn.ClientID == f.Client {
			f.Funnels = append(f.Funnels, fn)
		}
	}
	// A funnel of another client (the client was just changed) gives way to
	// the chosen client's first.
	if chosen == nil || chosen.ClientID != f.Client {
		f.Funnel = ""
		if len(f.Funnels) > 0 {
			f.Funnel = f.Funnels[0].ID
		}
	}
	if client == nil || f.Funnel == "" {
		f.NoFunnels = true
		return f, q, http.StatusOK, "", nil
	}
	f.TimeZone, f.Currency = client.TimeZone, client.Currency
	if f.From == "" || f.To == "" {
		loc, err := time.LoadLocation(client.TimeZone)
		if err != nil {
			return f, q, 0, "", err
		}
		from, to := report.LastDays(time.Now(), loc, DefaultReportDays)
		if f.To != "" {
			if t, err := report.ParseDate(f.To); err == nil {
				from = t.AddDays(1 - DefaultReportDays)
			}
		}
		if f.From == "" {
			f.From = from.String()
		}
		if f.To == "" {
			f.To = to.String()
		}
	}
	q, err = report.ParseQuery(f.Funnel, f.From, f.To, f.By, f.Source)
	var qe *report.QueryError
	if errors.As(err, &qe) {
		return f, q, http.StatusBadRequest, "The report cannot be shown: " + qe.Error() + ".", nil
	} else if err != nil {
		return f, q, 0, "", err
	}
	f.ExportQuery = url.Values{"funnel": {f.Funnel}, "from": {f.From}, "to": {f.To}}
	if f.By != "" {
		f.ExportQuery.Set("by", f.By)
	}
	if f.Source != "" {
		f.ExportQuery.Set("source", f.Source)
	}
	return f, q, http.StatusOK, "", nil
}

func (d *Dashboard) reportsPage(w http.ResponseWriter, r *http.Request, s *session) {
	f, q, status, msg, err := d.reportQuery(r)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	data := reportData{Form: f}
	if msg == "" && !f.NoFunnels {
		rep, err := report.Run(r.Context(), d.Store, q)
		if err != nil {
			d.failErr(w, r, err)
			return
		}
		data.fill(rep)
	}
	d.render(w, r, status, "reports", s, view{Title: "Reports", Nav: "reports", Error: msg, Data: data})
}

// fill lays the report out for the page.
func (data *reportData) fill(rep *report.Report) {
	data.Report = rep
	data.Currencies = rep.Currencies()
	data.Empty = true
	conv := func(c *float64) string {
		if c == nil {
			return "—"
		}
		return strconv.FormatFloat(100**c, 'f', 1, 64) + "%"
	}
	rows := func(in []report.Row) []reportRow {
		var out []reportRow
		for _, row := range in {
			rr := reportRow{Label: row.Label(), StageID: row.StageID, StageName: row.StageName, Position: row.Position,
				Contacts: row.Contacts, Conversion: conv(row.ConversionFromPrevious)}
			for _, c := range data.Currencies {
				rr.Revenue = append(rr.Revenue, event.FormatMicros(row.Revenue[c]))
			}
			if row.Contacts > 0 || len(row.Revenue) > 0 {
				data.Empty = false
			}
			out = append(out, rr)
		}
		return out
	}
	data.Stages = rows(rep.Totals)
	if rep.By != "" {
		data.Breakdown = rows(rep.Rows)
	}
	n := len(rep.Stages)
	for i := 0; n > 0 && i+n <= len(rep.Daily); i += n {
		day := reportDay{Date: rep.Daily[i].Date.String()}
		for _, dr := range rep.Daily[i : i+n] {
			day.Contacts = append(day.Contacts, dr.Contacts)
		}
		data.Days = append(data.Days, day)
	}
	// The charts are report's own SVG: every text in them is XML-escaped,
	// and they style themselves with presentation attributes only, which a
	// style-src 'self' policy allows.
	data.FunnelSVG = template.HTML(report.FunnelSVG(rep))
	data.DailySVG = template.HTML(report.DailySVG(rep))
	data.Export = map[string]template.URL{}
	for name := range reportTables {
		q := url.Values{}
		for k, v := range data.Form.ExportQuery {
			q[k] = v
		}
		q.Set("table", name)
		data.Export[name] = template.URL("/reports/export.csv?" + q.Encode())
	}
}

// exportReport answers one table of a report as a CSV download.
func (d *Dashboard) exportReport(w http.ResponseWriter, r *http.Request, _ *session) {
	v := r.URL.Query()
	name := v.Get("table")
	t, ok := reportTables[name]
	if !ok {
		d.fail(w, r, http.StatusBadRequest, "table must be stages, breakdown or daily.", nil)
		return
	}
	q, err := report.ParseQuery(v.Get("funnel"), v.Get("from"), v.Get("to"), v.Get("by"), v.Get("source"))
	var qe *report.QueryError
	if errors.As(err, &qe) {
		d.fail(w, r, http.StatusBadRequest, "The report cannot be exported: "+qe.Error()+".", nil)
		return
	}
	rep, err := report.Run(r.Context(), d.Store, q)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	var b bytes.Buffer
	if err := report.WriteCSV(&b, rep, t); err != nil {
		d.failErr(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="pruuv-report-`+rep.FunnelID+"-"+rep.From.String()+"-"+rep.To.String()+"-"+name+`.csv"`)
	w.Write(b.Bytes())
}
