package dashboard

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/store"
)

// The conversion log: every send (one event to one platform) with its
// state and the platform's last answer, each send's attempts, and a Retry
// button for the failed and skipped ones.

// SendsPageSize is how many sends the conversion log shows at a time.
const SendsPageSize = 50

// Statuses lists a send's statuses, for the filter.
var Statuses = []conversion.Status{conversion.StatusPending, conversion.StatusRetrying, conversion.StatusSent,
	conversion.StatusFailed, conversion.StatusSkipped}

type conversionsData struct {
	Clients   []store.ClientDetail
	Platforms []conversion.Platform
	Statuses  []conversion.Status
	Sends     []store.SendRow
	Filter    url.Values
	Next      template.URL // query of the next (older) page; built by url.Values.Encode
}

// retryable reports whether an operator may re-queue a send in this status.
func retryable(status string) bool {
	return status == string(conversion.StatusFailed) || status == string(conversion.StatusSkipped)
}

// sendFilter reads the log's filters from a query.
func sendFilter(q url.Values) (store.SendFilter, string) {
	f := store.SendFilter{Platform: q.Get("platform"), Status: q.Get("status"), ClientID: q.Get("client"), Limit: SendsPageSize + 1}
	if f.Platform != "" && !slices.Contains(conversion.Platforms, conversion.Platform(f.Platform)) {
		return f, "platform must be meta, google, tiktok or microsoft"
	}
	if f.Status != "" && !slices.Contains(Statuses, conversion.Status(f.Status)) {
		return f, "status must be pending, retrying, sent, failed or skipped"
	}
	if v := q.Get("after"); v != "" {
		c, err := store.ParseSendCursor(v)
		if err != nil {
			return f, "the page link is broken: start again from the first page"
		}
		f.After = &c
	}
	return f, ""
}

func (d *Dashboard) conversionsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	f, msg := sendFilter(q)
	clients, err := d.Store.ListClients(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	data := conversionsData{Clients: clients, Platforms: conversion.Platforms, Statuses: Statuses, Filter: q}
	status := http.StatusOK
	if msg != "" {
		status = http.StatusBadRequest
	} else {
		rows, err := d.Store.ListSends(r.Context(), f)
		if err != nil {
			d.failErr(w, r, err)
			return
		}
		if len(rows) > SendsPageSize {
			rows = rows[:SendsPageSize]
			next := url.Values{}
			for k, v := range q {
				next[k] = v
			}
			next.Set("after", store.CursorOf(rows[len(rows)-1]).String())
			data.Next = template.URL(next.Encode())
		}
		data.Sends = rows
	}
	d.render(w, r, status, "conversions", s, view{Title: "Conversion log", Nav: "conversions", Error: msg, Data: data})
}

type conversionData struct {
	EventID  string
	Sends    []store.SendRow
	Attempts []store.AttemptRow
}

// conversionPage is one event's sends, on every platform, and their attempts.
func (d *Dashboard) conversionPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderConversion(w, r, s, http.StatusOK, "")
}

func (d *Dashboard) renderConversion(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	id := r.PathValue("event")
	sends, err := d.Store.ListSends(r.Context(), store.SendFilter{EventID: id, Limit: len(conversion.Platforms)})
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	if len(sends) == 0 {
		d.fail(w, r, http.StatusNotFound, "This event has no conversion sends.", nil)
		return
	}
	atts, err := d.Store.ListAttempts(r.Context(), id, "")
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	d.render(w, r, status, "conversion", s, view{Title: "Conversions of event " + id, Nav: "conversions", Notice: notice(r), Error: msg,
		Data: conversionData{EventID: id, Sends: sends, Attempts: atts}})
}

// retrySend re-queues a failed or skipped send, as `pruuv conversions retry`
// does; it goes with the next run.
func (d *Dashboard) retrySend(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("event")
	p := conversion.Platform(r.PostForm.Get("platform"))
	if p != "" {
		var err error
		if p, err = conversion.ParsePlatform(string(p)); err != nil {
			d.fail(w, r, http.StatusUnprocessableEntity, "There is no such ad platform.", nil)
			return
		}
	}
	_, err := d.conns.Retry(r.Context(), id, p, actor(s))
	switch {
	case errors.Is(err, store.ErrNotRetryable):
		d.renderConversion(w, r, s, http.StatusConflict, "Only failed or skipped sends can be retried.")
		return
	case err != nil:
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/conversions/"+url.PathEscape(id)+"?done=retried", http.StatusSeeOther)
}
