package dashboard

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/funnel"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// notices are the fixed messages a redirect after a change may show; the
// query names one, so no text from a link reaches the page.
var notices = map[string]string{
	"client":   "Client created.",
	"settings": "Client settings saved.",
	"funnel":   "Funnel created. Its stages' endpoints and tokens are under Connections › Funnel Webhooks.",
	"renamed":  "Renamed.",
	"moved":    "Stage moved.",
	"limit":    "Hourly limit saved.",
	"stage":    "Stage added.",
	"revoked":  "API key revoked.",

	"connection":     "Connection saved.",
	"mapped":         "Mapping saved.",
	"unmapped":       "Mapping removed: the stage sends nothing to that platform.",
	"site":           "Site created. Install its snippet on the site's pages.",
	"origin_added":   "Origin added.",
	"origin_removed": "Origin removed. Running servers stop taking events from it within a few seconds.",
	"retried":        "Re-queued: it goes with the next run (or run pruuv conversions send).",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

func actor(s *session) string { return "user:" + s.user.Email }

// invalidMessage is the message of a domain validation error, if err is one.
func invalidMessage(err error) (string, bool) {
	var inv *auth.InvalidError
	if errors.As(err, &inv) {
		return strings.ReplaceAll(inv.Field, "_", " ") + " " + inv.Message, true
	}
	if errors.Is(err, store.ErrConflict) {
		return "That name is already taken.", true
	}
	return "", false
}

// safeNext keeps a post-login redirect on this site: a path starting with
// one "/". Browsers drop tabs and newlines from a Location and read a
// backslash as "/", so "/\t/evil.example" or "/\\evil.example" would reach
// evil.example; any control character or backslash sends the user to "/".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	for _, c := range []byte(next) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	return next
}

type loginData struct {
	Token   string
	Email   string
	Next    string
	NoUsers bool
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request, _ *session) {
	if s, err := d.session(r); err == nil && s != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d.renderLogin(w, r, http.StatusOK, "", "")
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, email, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	pre := ""
	if c, err := r.Cookie(d.loginCookie(r)); err == nil && len(c.Value) >= 22 && len(c.Value) <= 64 {
		pre = c.Value
	} else {
		pre = token.Opaque(24)
		d.setCookie(w, r, d.loginCookie(r), pre, time.Hour)
	}
	n, err := d.Store.CountUsers(r.Context())
	if err != nil {
		d.fail(w, r, http.StatusInternalServerError, "", err)
		return
	}
	next := r.FormValue("next")
	d.render(w, r, status, "login", nil, view{Title: "Log in", Error: msg,
		Data: loginData{Token: d.Auth.LoginFormToken(pre), Email: email, Next: safeNext(next), NoUsers: n == 0}})
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request, _ *session) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		d.fail(w, r, http.StatusBadRequest, "The form could not be read.", nil)
		return
	}
	c, err := r.Cookie(d.loginCookie(r))
	if err != nil || !d.Auth.CheckLoginFormToken(c.Value, r.PostForm.Get("csrf")) {
		d.fail(w, r, http.StatusForbidden, "The login form had expired. Reload the page and try again.", nil)
		return
	}
	email := r.PostForm.Get("email")
	sid, _, err := d.Auth.Login(r.Context(), email, r.PostForm.Get("password"), d.clientIP(r))
	var th *auth.Throttled
	switch {
	case errors.As(err, &th):
		w.Header().Set("Retry-After", strconv.Itoa(int(time.Until(th.RetryAt).Seconds())+1))
		d.Log.Info("login throttled", "ip", d.clientIP(r))
		d.renderLogin(w, r, http.StatusTooManyRequests, email, "Too many login attempts. Try again after "+th.RetryAt.UTC().Format("15:04")+" UTC.")
		return
	case errors.Is(err, auth.ErrBadCredentials):
		d.Log.Info("login failed", "ip", d.clientIP(r))
		d.renderLogin(w, r, http.StatusUnauthorized, email, "Wrong email or password.")
		return
	case err != nil:
		d.fail(w, r, http.StatusInternalServerError, "", err)
		return
	}
	d.setCookie(w, r, d.sessionCookie(r), sid, d.Auth.MaxAge())
	d.clearCookie(w, r, d.loginCookie(r))
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := d.Auth.Logout(r.Context(), s.sid); err != nil {
		d.fail(w, r, http.StatusInternalServerError, "", err)
		return
	}
	d.clearCookie(w, r, d.sessionCookie(r))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// Clients

func (d *Dashboard) clientsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderClients(w, r, s, http.StatusOK, "")
}

func (d *Dashboard) renderClients(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	cs, err := d.Store.ListClients(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	d.render(w, r, status, "clients", s, view{Title: "Clients", Nav: "clients", Notice: notice(r), Error: msg, Data: cs})
}

func (d *Dashboard) createClient(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	_, err := d.Funnels.CreateClient(r.Context(), f.Get("name"), f.Get("time_zone"), f.Get("currency"))
	if msg, ok := invalidMessage(err); ok {
		d.renderClients(w, r, s, http.StatusUnprocessableEntity, msg)
		return
	} else if err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/clients?done=client", http.StatusSeeOther)
}

func (d *Dashboard) setClientSettings(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	tz, currency := f.Get("time_zone"), f.Get("currency")
	_, err := d.Funnels.SetClientSettings(r.Context(), r.PathValue("id"), &tz, &currency, actor(s))
	if msg, ok := invalidMessage(err); ok {
		d.renderClients(w, r, s, http.StatusUnprocessableEntity, msg)
		return
	} else if err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/clients?done=settings", http.StatusSeeOther)
}

// Funnels

type funnelsData struct {
	Clients []store.ClientDetail
	Funnels []store.FunnelSummary
	Form    url.Values
}

func (d *Dashboard) funnelsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderFunnels(w, r, s, http.StatusOK, "")
}

func (d *Dashboard) renderFunnels(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	cs, err := d.Store.ListClients(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	fs, err := d.Store.ListFunnels(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	d.render(w, r, status, "funnels", s, view{Title: "Funnels", Nav: "funnels", Notice: notice(r), Error: msg,
		Data: funnelsData{Clients: cs, Funnels: fs, Form: r.PostForm}})
}

func (d *Dashboard) createFunnel(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	// Stage names one per line or comma-separated.
	names := strings.FieldsFunc(f.Get("stages"), func(c rune) bool { return c == '\n' || c == ',' || c == '\r' })
	out, err := d.Funnels.CreateFunnel(r.Context(), f.Get("client_id"), f.Get("name"), names, actor(s))
	if msg, ok := invalidMessage(err); ok {
		d.renderFunnels(w, r, s, http.StatusUnprocessableEntity, msg)
		return
	} else if err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/funnels/"+out.Funnel.ID+"?done=funnel", http.StatusSeeOther)
}

type funnelData struct {
	Funnel store.FunnelSummary
	Stages []store.Stage
}

func (d *Dashboard) funnelPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderFunnel(w, r, s, r.PathValue("id"), http.StatusOK, "")
}

func (d *Dashboard) renderFunnel(w http.ResponseWriter, r *http.Request, s *session, id string, status int, msg string) {
	f, err := d.Store.GetFunnel(r.Context(), id)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	stages, err := d.Store.FunnelStages(r.Context(), id)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	d.render(w, r, status, "funnel", s, view{Title: f.Name, Nav: "funnels", Notice: notice(r), Error: msg,
		Data: funnelData{Funnel: f, Stages: stages}})
}

// afterStageChange redirects to the stage's funnel, or shows the error there.
func (d *Dashboard) afterStageChange(w http.ResponseWriter, r *http.Request, s *session, stageID, done string, err error) {
	st, gerr := d.Store.GetStage(r.Context(), stageID)
	if gerr != nil {
		d.failErr(w, r, gerr)
		return
	}
	d.afterFunnelChange(w, r, s, st.FunnelID, done, err)
}

// afterFunnelChange redirects to the funnel, or shows the error there.
func (d *Dashboard) afterFunnelChange(w http.ResponseWriter, r *http.Request, s *session, funnelID, done string, err error) {
	if msg, ok := invalidMessage(err); ok {
		d.renderFunnel(w, r, s, funnelID, http.StatusUnprocessableEntity, msg)
		return
	} else if err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/funnels/"+funnelID+"?done="+done, http.StatusSeeOther)
}

func (d *Dashboard) renameFunnel(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	d.afterFunnelChange(w, r, s, id, "renamed", d.Funnels.RenameFunnel(r.Context(), id, r.PostForm.Get("name")))
}

func (d *Dashboard) addStage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	_, err := d.Funnels.AddStage(r.Context(), id, r.PostForm.Get("name"), actor(s))
	d.afterFunnelChange(w, r, s, id, "stage", err)
}

func (d *Dashboard) renameStage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	d.afterStageChange(w, r, s, id, "renamed", d.Funnels.RenameStage(r.Context(), id, r.PostForm.Get("name")))
}

func (d *Dashboard) moveStage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	st, err := d.Store.GetStage(r.Context(), id)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	pos := st.Position
	switch r.PostForm.Get("direction") {
	case "up":
		pos--
	case "down":
		pos++
	default:
		if n, err := strconv.Atoi(r.PostForm.Get("position")); err == nil {
			pos = n
		}
	}
	if pos < 1 {
		pos = 1
	}
	d.afterStageChange(w, r, s, id, "moved", d.Funnels.MoveStage(r.Context(), id, pos))
}

func (d *Dashboard) setLimit(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	n, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("hourly_limit")))
	if err != nil {
		n = 0 // refused below with the rule's message
	}
	d.afterStageChange(w, r, s, id, "limit", d.Funnels.SetLimit(r.Context(), id, n))
}

// Connections > Funnel Webhooks

type webhookStage struct {
	store.Stage
	Endpoint string
	Token    string // in clear only after a reveal or rotation
}

type webhooksData struct {
	Origin string
	Stages []webhookStage
}

func (d *Dashboard) webhooksPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderWebhooks(w, r, s, "", "", "")
}

func (d *Dashboard) renderWebhooks(w http.ResponseWriter, r *http.Request, s *session, stageID, tok, msg string) {
	stages, err := d.Store.ListStages(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	data := webhooksData{Origin: d.origin(r)}
	for _, st := range stages {
		ws := webhookStage{Stage: st, Endpoint: data.Origin + "/api/webhooks/funnel/" + st.ID}
		if st.ID == stageID {
			ws.Token = tok
		}
		data.Stages = append(data.Stages, ws)
	}
	d.render(w, r, http.StatusOK, "webhooks", s, view{Title: "Funnel Webhooks", Nav: "webhooks", Notice: msg, Data: data})
}

// revealToken shows one stage's current token. It is a POST, so the token
// never sits in a URL, a history entry or a cache, and each reveal is audited.
func (d *Dashboard) revealToken(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	tok, err := d.Funnels.RevealToken(r.Context(), id, actor(s))
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	d.renderWebhooks(w, r, s, id, tok, "")
}

func (d *Dashboard) rotateToken(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	overlap := funnel.DefaultOverlap
	if v := r.PostForm.Get("overlap"); v != "" {
		o, err := time.ParseDuration(v)
		if err != nil {
			d.fail(w, r, http.StatusUnprocessableEntity, "The overlap must be a duration such as 24h or 0s.", nil)
			return
		}
		overlap = o
	}
	tok, until, err := d.Funnels.RotateToken(r.Context(), id, overlap, actor(s))
	if msg, ok := invalidMessage(err); ok {
		d.fail(w, r, http.StatusUnprocessableEntity, msg, nil)
		return
	} else if err != nil {
		d.failErr(w, r, err)
		return
	}
	msg := "New token below. The previous one is revoked."
	if overlap > 0 {
		msg = "New token below. The previous one keeps working until " + until.Format("2006-01-02 15:04 UTC") + "."
	}
	d.renderWebhooks(w, r, s, id, tok, msg)
}

// Events

// PageSize is how many events the browser shows at a time.
const PageSize = 50

type eventsData struct {
	Stages  []store.Stage
	StageOf map[string]store.Stage
	Events  []event.Event
	Filter  url.Values
	Next    template.URL // query of the next (older) page, empty on the last; built by url.Values.Encode
}

// eventFilter reads the browser's filters from a query. Dates are UTC days;
// "to" includes its whole day.
func eventFilter(q url.Values) (store.EventFilter, string) {
	f := store.EventFilter{StageID: q.Get("stage"), Source: event.Source(q.Get("source")), Reference: strings.TrimSpace(q.Get("reference")),
		Before: q.Get("before"), Limit: PageSize + 1}
	if v := q.Get("from"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return f, "from must be a date such as 2026-03-01"
		}
		f.From = t
	}
	if v := q.Get("to"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return f, "to must be a date such as 2026-03-31"
		}
		f.To = t.AddDate(0, 0, 1)
	}
	return f, ""
}

func (d *Dashboard) eventsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	f, msg := eventFilter(q)
	stages, err := d.Store.ListStages(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	data := eventsData{Stages: stages, StageOf: map[string]store.Stage{}, Filter: q}
	for _, st := range stages {
		data.StageOf[st.ID] = st
	}
	status := http.StatusOK
	if msg != "" {
		status = http.StatusBadRequest
	} else {
		evs, err := d.Store.ListEvents(r.Context(), f)
		if err != nil {
			d.failErr(w, r, err)
			return
		}
		if len(evs) > PageSize {
			evs = evs[:PageSize]
			next := url.Values{}
			for k, v := range q {
				next[k] = v
			}
			next.Set("before", evs[len(evs)-1].ID)
			data.Next = template.URL(next.Encode())
		}
		data.Events = evs
	}
	d.render(w, r, status, "events", s, view{Title: "Events", Nav: "events", Error: msg, Data: data})
}

type eventData struct {
	Event  event.Event
	Stage  store.Stage
	Fields []event.Field
}

func (d *Dashboard) eventPage(w http.ResponseWriter, r *http.Request, s *session) {
	e, err := d.Store.GetEvent(r.Context(), r.PathValue("id"))
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	st, err := d.Store.GetStage(r.Context(), e.StageID)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "event", s, view{Title: "Event " + e.ID, Nav: "events", Data: eventData{Event: e, Stage: st, Fields: event.Schema}})
}

// API keys

type apiKeysData struct {
	Keys   []store.APIKey
	NewKey string
}

func (d *Dashboard) apiKeysPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderAPIKeys(w, r, s, http.StatusOK, "", "")
}

func (d *Dashboard) renderAPIKeys(w http.ResponseWriter, r *http.Request, s *session, status int, newKey, msg string) {
	keys, err := d.Store.ListAPIKeys(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	d.render(w, r, status, "apikeys", s, view{Title: "API keys", Nav: "apikeys", Notice: notice(r), Error: msg, Data: apiKeysData{Keys: keys, NewKey: newKey}})
}

func (d *Dashboard) createAPIKey(w http.ResponseWriter, r *http.Request, s *session) {
	plain, _, err := d.Auth.CreateAPIKey(r.Context(), r.PostForm.Get("name"), actor(s))
	if msg, ok := invalidMessage(err); ok {
		d.renderAPIKeys(w, r, s, http.StatusUnprocessableEntity, "", msg)
		return
	} else if err != nil {
		d.failErr(w, r, err)
		return
	}
	d.renderAPIKeys(w, r, s, http.StatusOK, plain, "")
}

func (d *Dashboard) revokeAPIKey(w http.ResponseWriter, r *http.Request, s *session) {
	if err := d.Auth.RevokeAPIKey(r.Context(), r.PathValue("id"), actor(s)); err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/settings/api-keys?done=revoked", http.StatusSeeOther)
}

// placeholder is the page of a section another part of Pruuv provides.
func (d *Dashboard) placeholder(nav, title, with string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		d.render(w, r, http.StatusOK, "placeholder", s, view{Title: title, Nav: nav, Data: with})
	}
}
