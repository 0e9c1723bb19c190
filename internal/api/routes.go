package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/funnel"
	"github.com/pruuv/pruuv/internal/report"
	"github.com/pruuv/pruuv/internal/store"
)

// Request and response bodies.
type (
	clientsOut struct {
		Clients []store.ClientDetail `json:"clients"`
	}
	clientIn struct {
		Name     string `json:"name"`
		TimeZone string `json:"time_zone,omitempty"`
		Currency string `json:"currency,omitempty"`
	}
	clientPatch struct {
		// TimeZone is an IANA name; it decides where the client's report days begin.
		TimeZone *string `json:"time_zone,omitempty"`
		// Currency is an ISO 4217 code, for revenue sent without one.
		Currency *string `json:"currency,omitempty"`
	}
	// reportOut is a funnel report: rows as `pruuv report --json` prints
	// them, the per-stage totals in the same shape (without the breakdown
	// field), and the daily series.
	reportOut struct {
		Rows   []report.JSONRow `json:"rows"`
		Stages []report.JSONRow `json:"stages"`
		Daily  []report.DayRow  `json:"daily"`
	}
	funnelsOut struct {
		Funnels []store.FunnelSummary `json:"funnels"`
	}
	funnelIn struct {
		ClientID string   `json:"client_id"`
		Name     string   `json:"name"`
		Stages   []string `json:"stages"`
	}
	funnelOut struct {
		Funnel store.FunnelSummary `json:"funnel"`
		Stages []store.Stage       `json:"stages"`
	}
	renameIn struct {
		Name string `json:"name"`
	}
	stagesOut struct {
		Stages []store.Stage `json:"stages"`
	}
	stagePatch struct {
		Name        *string `json:"name,omitempty"`
		Position    *int    `json:"position,omitempty"`
		HourlyLimit *int    `json:"hourly_limit,omitempty"`
	}
	rotateIn struct {
		// Overlap is how long the replaced token keeps working, as a Go
		// duration ("24h", "0s"); default 24h, at most 168h.
		Overlap string `json:"overlap,omitempty"`
	}
	rotateOut struct {
		ID                     string    `json:"id"`
		WebhookToken           string    `json:"webhook_token"`
		PreviousTokenExpiresAt time.Time `json:"previous_token_expires_at"`
	}
	tokenOut struct {
		ID           string `json:"id"`
		WebhookToken string `json:"webhook_token"`
	}
	eventsOut struct {
		Events     []event.Event `json:"events"`
		NextBefore *string       `json:"next_before"`
	}
)

// MaxEventsLimit is the most events one list call returns.
const MaxEventsLimit = 1000

func actor(k store.APIKey) string { return "apikey:" + k.ID }

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// routes is the admin API: every operation, in the order the document lists them.
func (a *API) routes() []Route {
	return append(a.coreRoutes(), a.conversionRoutes()...)
}

func (a *API) coreRoutes() []Route {
	return []Route{
		{Method: "GET", Path: Prefix + "/openapi.json", ID: "getOpenAPI", Summary: "This API's OpenAPI 3.1 document", Public: true, Result: map[string]any{},
			h: func(*http.Request, store.APIKey) (any, error) { return rawJSON(a.spec), nil }},

		{Method: "GET", Path: Prefix + "/clients", ID: "listClients", Summary: "List clients", Result: clientsOut{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				cs, err := a.Store.ListClients(r.Context())
				return clientsOut{orEmpty(cs)}, err
			}},
		{Method: "POST", Path: Prefix + "/clients", ID: "createClient", Summary: "Create a client", Body: clientIn{}, Status: http.StatusCreated, Result: store.ClientDetail{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				var in clientIn
				if err := decode(r, &in); err != nil {
					return nil, err
				}
				return a.Funnels.CreateClient(r.Context(), in.Name, in.TimeZone, in.Currency)
			}},

		{Method: "PATCH", Path: Prefix + "/clients/{id}", ID: "updateClient", Summary: "Set a client's time zone, default currency or both",
			Body: clientPatch{}, Result: store.ClientDetail{},
			h: func(r *http.Request, k store.APIKey) (any, error) {
				var in clientPatch
				if err := decode(r, &in); err != nil {
					return nil, err
				}
				return a.Funnels.SetClientSettings(r.Context(), r.PathValue("id"), in.TimeZone, in.Currency, actor(k))
			}},

		{Method: "GET", Path: Prefix + "/funnels", ID: "listFunnels", Summary: "List funnels", Result: funnelsOut{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				fs, err := a.Store.ListFunnels(r.Context())
				return funnelsOut{orEmpty(fs)}, err
			}},
		{Method: "POST", Path: Prefix + "/funnels", ID: "createFunnel", Summary: "Create a funnel with its stages; the answer holds each stage's webhook token",
			Body: funnelIn{}, Status: http.StatusCreated, Result: funnel.Created{},
			h: func(r *http.Request, k store.APIKey) (any, error) {
				var in funnelIn
				if err := decode(r, &in); err != nil {
					return nil, err
				}
				return a.Funnels.CreateFunnel(r.Context(), in.ClientID, in.Name, in.Stages, actor(k))
			}},
		{Method: "GET", Path: Prefix + "/funnels/{id}", ID: "getFunnel", Summary: "Get a funnel and its stages", Result: funnelOut{},
			h: func(r *http.Request, _ store.APIKey) (any, error) { return a.funnel(r, r.PathValue("id")) }},
		{Method: "PATCH", Path: Prefix + "/funnels/{id}", ID: "renameFunnel", Summary: "Rename a funnel", Body: renameIn{}, Result: funnelOut{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				var in renameIn
				if err := decode(r, &in); err != nil {
					return nil, err
				}
				if err := a.Funnels.RenameFunnel(r.Context(), r.PathValue("id"), in.Name); err != nil {
					return nil, err
				}
				return a.funnel(r, r.PathValue("id"))
			}},
		{Method: "POST", Path: Prefix + "/funnels/{id}/stages", ID: "addStage", Summary: "Append a stage to a funnel; the answer holds its webhook token",
			Body: renameIn{}, Status: http.StatusCreated, Result: funnel.NewStageOut{},
			h: func(r *http.Request, k store.APIKey) (any, error) {
				var in renameIn
				if err := decode(r, &in); err != nil {
					return nil, err
				}
				return a.Funnels.AddStage(r.Context(), r.PathValue("id"), in.Name, actor(k))
			}},

		{Method: "GET", Path: Prefix + "/funnels/{id}/report", ID: "getFunnelReport",
			Summary: "A funnel's report over days of its client's time zone: contacts, conversion and revenue per stage, optionally broken down, and the daily series",
			Query:   reportParams, Result: reportOut{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				rep, err := a.report(r)
				if err != nil {
					return nil, err
				}
				return reportOut{Rows: rep.JSONRows(), Stages: rep.JSONTotals(), Daily: orEmpty(rep.Daily)}, nil
			}},
		{Method: "GET", Path: Prefix + "/funnels/{id}/report.csv", ID: "getFunnelReportCSV",
			Summary: "One table of a funnel's report as CSV (the table parameter: stages, breakdown or daily)",
			Query:   append(reportParams[:len(reportParams):len(reportParams)], Param{"table", "string", "stages (default), breakdown or daily"}),
			Result:  csvFile{}, h: a.reportCSV},

		{Method: "GET", Path: Prefix + "/stages", ID: "listStages", Summary: "List every stage", Result: stagesOut{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				ss, err := a.Store.ListStages(r.Context())
				return stagesOut{orEmpty(ss)}, err
			}},
		{Method: "GET", Path: Prefix + "/stages/{id}", ID: "getStage", Summary: "Get a stage", Result: store.Stage{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				return a.Store.GetStage(r.Context(), r.PathValue("id"))
			}},
		{Method: "PATCH", Path: Prefix + "/stages/{id}", ID: "updateStage", Summary: "Rename a stage, move it to a position, or set its hourly limit",
			Body: stagePatch{}, Result: store.Stage{}, h: a.updateStage},
		{Method: "POST", Path: Prefix + "/stages/{id}/rotate-token", ID: "rotateStageToken",
			Summary: "Give a stage a new webhook token; the replaced one keeps working for the overlap", Body: rotateIn{}, BodyOptional: true, Result: rotateOut{},
			h: func(r *http.Request, k store.APIKey) (any, error) {
				var in rotateIn
				if r.ContentLength != 0 {
					if err := decode(r, &in); err != nil {
						return nil, err
					}
				}
				overlap := funnel.DefaultOverlap
				if in.Overlap != "" {
					d, err := time.ParseDuration(in.Overlap)
					if err != nil {
						return nil, &auth.InvalidError{Field: "overlap", Message: "must be a duration such as 24h or 0s"}
					}
					overlap = d
				}
				tok, until, err := a.Funnels.RotateToken(r.Context(), r.PathValue("id"), overlap, actor(k))
				return rotateOut{ID: r.PathValue("id"), WebhookToken: tok, PreviousTokenExpiresAt: until}, err
			}},
		{Method: "POST", Path: Prefix + "/stages/{id}/reveal-token", ID: "revealStageToken", Summary: "Show a stage's current webhook token (audited)", Result: tokenOut{},
			h: func(r *http.Request, k store.APIKey) (any, error) {
				tok, err := a.Funnels.RevealToken(r.Context(), r.PathValue("id"), actor(k))
				return tokenOut{ID: r.PathValue("id"), WebhookToken: tok}, err
			}},

		{Method: "GET", Path: Prefix + "/events", ID: "listEvents", Summary: "List events, newest first; page with next_before",
			Query: []Param{
				{"stage_id", "string", "only this stage's events"},
				{"source", "string", "webhook, pixel or import"},
				{"reference", "string", "exact reference"},
				{"from", "date-time", "received at or after (RFC 3339)"},
				{"to", "date-time", "received before (RFC 3339)"},
				{"before", "string", "only events older than this event id (the previous page's next_before)"},
				{"limit", "integer", "at most this many (1 to 1000, default 100)"},
			}, Result: eventsOut{}, h: a.listEvents},
		{Method: "GET", Path: Prefix + "/events/{id}", ID: "getEvent", Summary: "Get an event with every field", Result: event.Event{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				return a.Store.GetEvent(r.Context(), r.PathValue("id"))
			}},
	}
}

// rawJSON is a body already encoded.
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) { return j, nil }

func (a *API) funnel(r *http.Request, id string) (funnelOut, error) {
	f, err := a.Store.GetFunnel(r.Context(), id)
	if err != nil {
		return funnelOut{}, err
	}
	ss, err := a.Store.FunnelStages(r.Context(), id)
	return funnelOut{Funnel: f, Stages: orEmpty(ss)}, err
}

// updateStage checks every given field before changing any, then applies
// name, hourly limit and position in that order.
func (a *API) updateStage(r *http.Request, _ store.APIKey) (any, error) {
	id := r.PathValue("id")
	var in stagePatch
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if _, err := a.Store.GetStage(r.Context(), id); err != nil {
		return nil, err
	}
	if in.HourlyLimit != nil && (*in.HourlyLimit < 1 || *in.HourlyLimit > funnel.MaxHourlyLimit) {
		return nil, &auth.InvalidError{Field: "hourly_limit", Message: "must be between 1 and " + strconv.Itoa(funnel.MaxHourlyLimit)}
	}
	if in.Position != nil && (*in.Position < 1 || *in.Position > funnel.MaxStages) {
		return nil, &auth.InvalidError{Field: "position", Message: "must be between 1 and " + strconv.Itoa(funnel.MaxStages)}
	}
	if in.Name != nil {
		if err := a.Funnels.RenameStage(r.Context(), id, *in.Name); err != nil {
			return nil, err
		}
	}
	if in.HourlyLimit != nil {
		if err := a.Funnels.SetLimit(r.Context(), id, *in.HourlyLimit); err != nil {
			return nil, err
		}
	}
	if in.Position != nil {
		if err := a.Funnels.MoveStage(r.Context(), id, *in.Position); err != nil {
			return nil, err
		}
	}
	return a.Store.GetStage(r.Context(), id)
}

func (a *API) listEvents(r *http.Request, _ store.APIKey) (any, error) {
	q := r.URL.Query()
	f := store.EventFilter{StageID: q.Get("stage_id"), Source: event.Source(q.Get("source")), Reference: q.Get("reference"), Before: q.Get("before"), Limit: 100}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(t.name); v != "" {
			p, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, &auth.InvalidError{Field: t.name, Message: "must be an RFC 3339 date-time such as 2026-03-01T00:00:00Z"}
			}
			*t.dst = p
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEventsLimit {
			return nil, &auth.InvalidError{Field: "limit", Message: "must be between 1 and " + strconv.Itoa(MaxEventsLimit)}
		}
		f.Limit = n
	}
	want := f.Limit
	f.Limit++
	evs, err := a.Store.ListEvents(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := eventsOut{Events: orEmpty(evs)}
	if len(evs) > want {
		out.Events = evs[:want]
		next := evs[want-1].ID
		out.NextBefore = &next
	}
	return out, nil
}

// reportParams are the report operations' query parameters.
var reportParams = []Param{
	{"from", "date", "first day, YYYY-MM-DD, in the client's time zone (required)"},
	{"to", "date", "last day, included (required); at most 730 days after from (731 days in all)"},
	{"by", "string", "break down by one of: " + strings.Join(report.Fields, ", ")},
	{"source", "string", "only events from webhook, pixel or import"},
}

// report runs the report the request asks for.
func (a *API) report(r *http.Request) (*report.Report, error) {
	q := r.URL.Query()
	rq, err := report.ParseQuery(r.PathValue("id"), q.Get("from"), q.Get("to"), q.Get("by"), q.Get("source"))
	var qe *report.QueryError
	if errors.As(err, &qe) {
		return nil, &auth.InvalidError{Field: qe.Field, Message: qe.Message}
	} else if err != nil {
		return nil, err
	}
	return report.Run(r.Context(), a.Store, rq)
}

// tables are the CSV tables by their name in the table parameter.
var tables = map[string]report.Table{"stages": report.TableStages, "breakdown": report.TableBreakdown, "daily": report.TableDaily}

func (a *API) reportCSV(r *http.Request, _ store.APIKey) (any, error) {
	name := r.URL.Query().Get("table")
	if name == "" {
		name = "stages"
	}
	t, ok := tables[name]
	if !ok {
		return nil, &auth.InvalidError{Field: "table", Message: "must be stages, breakdown or daily"}
	}
	rep, err := a.report(r)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := report.WriteCSV(&b, rep, t); err != nil {
		return nil, err
	}
	return csvFile{name: fmt.Sprintf("pruuv-report-%s-%s-%s-%s.csv", rep.FunnelID, rep.From, rep.To, name), body: b.Bytes()}, nil
}
