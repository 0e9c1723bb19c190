package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
)

// serverEvent is one element of the request's data array.
type serverEvent struct {
	EventName      string      `json:"event_name"`
	EventTime      int64       `json:"event_time"`
	EventID        string      `json:"event_id"`
	ActionSource   string      `json:"action_source"`
	EventSourceURL string      `json:"event_source_url,omitempty"`
	UserData       userData    `json:"user_data"`
	CustomData     *customData `json:"custom_data,omitempty"`
}

type userData struct {
	Em              []string `json:"em,omitempty"`
	Ph              []string `json:"ph,omitempty"`
	Fbc             string   `json:"fbc,omitempty"`
	Fbp             string   `json:"fbp,omitempty"`
	ClientIPAddress string   `json:"client_ip_address,omitempty"`
	ClientUserAgent string   `json:"client_user_agent,omitempty"`
}

type customData struct {
	Value    json.Number `json:"value"`
	Currency string      `json:"currency"`
}

// build turns a conversion into Meta's server event. actionSource is the
// connection's; a website event lacking the source URL or the user agent Meta
// requires of one is sent as system_generated, which needs neither.
func build(c *conversion.Conversion, actionSource string) serverEvent {
	f := &c.Fields
	if actionSource == "website" && (f.EventSourceURL == "" || f.ClientUserAgent == "") {
		actionSource = "system_generated"
	}
	e := serverEvent{
		EventName:      c.EventName,
		EventTime:      c.Time.Unix(),
		EventID:        c.EventID,
		ActionSource:   actionSource,
		EventSourceURL: f.EventSourceURL,
		UserData: userData{
			ClientIPAddress: f.ClientIPAddress,
			ClientUserAgent: f.ClientUserAgent,
		},
	}
	if f.EmailSHA256 != "" {
		e.UserData.Em = []string{f.EmailSHA256}
	}
	if f.PhoneMetaSHA256 != "" {
		e.UserData.Ph = []string{f.PhoneMetaSHA256}
	}
	if fbcRE.MatchString(f.FBC) {
		e.UserData.Fbc = f.FBC
	}
	if fbpRE.MatchString(f.FBP) {
		e.UserData.Fbp = f.FBP
	}
	if f.HasRevenue && f.Currency != "" {
		e.CustomData = &customData{Value: json.Number(event.FormatMicros(f.RevenueMicros)), Currency: f.Currency}
	}
	return e
}

// setting returns a connection setting or its default.
func setting(s map[string]string, name string) string {
	if v := s[name]; v != "" {
		return v
	}
	for _, k := range keys {
		if k.Name == name {
			return k.Default
		}
	}
	return ""
}

// Send implements conversion.Client. The body is a form, as in Meta's own
// examples: data (the events as a JSON array), access_token and
// test_event_code. The token travels in the body, never in the URL, so it
// cannot leak through an error that quotes the URL.
func (c *Client) Send(ctx context.Context, conn conversion.Connection, batch []conversion.Conversion) []conversion.Result {
	if len(batch) > MaxEvents { // the queue keeps to MaxBatch; never refuse work over it
		return append(c.Send(ctx, conn, batch[:MaxEvents]), c.Send(ctx, conn, batch[MaxEvents:])...)
	}
	if err := c.Validate(conn.Settings); err != nil {
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Permanent, Message: "connection settings: " + err.Error()})
	}
	token := conn.Settings[SettingAccessToken]
	actionSource := setting(conn.Settings, SettingActionSource)
	events := make([]serverEvent, len(batch))
	for i := range batch {
		events[i] = build(&batch[i], actionSource)
	}
	data, err := json.Marshal(events)
	if err != nil {
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Permanent, Message: "encoding the events: " + err.Error()})
	}
	form := url.Values{"data": {string(data)}, "access_token": {token}}
	if code := conn.Settings[SettingTestEventCode]; code != "" {
		form.Set("test_event_code", code)
	}
	endpoint := c.base + "/" + setting(conn.Settings, SettingAPIVersion) + "/" + conn.Settings[SettingPixelID] + "/events"

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Permanent, Message: "building the request: " + err.Error()})
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := conversion.Exchange(c.hc, req, c.Timeout, conversion.MaxAnswer)
	switch {
	case resp == nil:
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Transient, Message: conversion.Redact("no answer: "+err.Error(), token)})
	case err != nil && resp.StatusCode/100 != 2:
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Transient, HTTPStatus: resp.StatusCode,
			Message: conversion.Redact("reading the answer: "+err.Error(), token)})
	}
	return answer(batch, resp, body, token, time.Now())
}

// success is Meta's answer to an accepted request.
type success struct {
	EventsReceived *int     `json:"events_received"`
	Messages       []string `json:"messages"`
	FBTraceID      string   `json:"fbtrace_id"`
}

// graphError is the Graph API's error envelope.
type graphError struct {
	Error *struct {
		Message     string          `json:"message"`
		Type        string          `json:"type"`
		Code        int             `json:"code"`
		Subcode     int             `json:"error_subcode"`
		IsTransient bool            `json:"is_transient"`
		UserTitle   string          `json:"error_user_title"`
		UserMsg     string          `json:"error_user_msg"`
		ErrorData   json.RawMessage `json:"error_data"`
		FBTraceID   string          `json:"fbtrace_id"`
	} `json:"error"`
}

// answer maps Meta's answer to one Result per conversion.
func answer(batch []conversion.Conversion, resp *http.Response, body []byte, token string, now time.Time) []conversion.Result {
	status := resp.StatusCode
	if status/100 == 2 {
		// Meta documents any 2xx as accepted; the counts are for the log.
		r := conversion.Result{Outcome: conversion.Sent, HTTPStatus: status}
		var ok success
		if json.Unmarshal(body, &ok) == nil && ok.EventsReceived != nil {
			r.Message = fmt.Sprintf("events_received %d", *ok.EventsReceived)
			if len(ok.Messages) > 0 {
				r.Message += "; " + strings.Join(ok.Messages, "; ")
			}
			if ok.FBTraceID != "" {
				r.Message += "; fbtrace_id " + ok.FBTraceID
			}
		}
		r.Message = conversion.Redact(r.Message, token)
		return conversion.AllResults(len(batch), r)
	}

	r := conversion.Result{HTTPStatus: status, RetryAfter: retryAfter(resp.Header, now)}
	var ge graphError
	if json.Unmarshal(body, &ge) != nil || ge.Error == nil {
		r.Message = fmt.Sprintf("HTTP %d: %s", status, conversion.Snippet(body))
		r.Outcome = conversion.Permanent
		if conversion.TransientStatus(status) {
			r.Outcome = conversion.Transient
		}
		r.Message = conversion.Redact(r.Message, token)
		return conversion.AllResults(len(batch), r)
	}
	e := ge.Error
	r.Message = fmt.Sprintf("HTTP %d: (#%d", status, e.Code)
	if e.Subcode != 0 {
		r.Message += "/" + strconv.Itoa(e.Subcode)
	}
	r.Message += ") " + e.Message
	if e.UserTitle != "" || e.UserMsg != "" {
		r.Message += " — " + strings.TrimSpace(e.UserTitle+": "+e.UserMsg)
	}
	if e.FBTraceID != "" {
		r.Message += "; fbtrace_id " + e.FBTraceID
	}
	r.Message = conversion.Redact(r.Message, token)

	switch {
	case conversion.TransientStatus(status), throttled(e.Code), e.Code == 1, e.Code == 2, e.Code == 21009, e.IsTransient:
		r.Outcome = conversion.Transient
		return conversion.AllResults(len(batch), r)
	case e.Code == 100:
		// One invalid event refuses the whole request. When Meta names the
		// event, only it is refused; the others go again without it.
		r.Outcome = conversion.Permanent
		i, ok := eventIndex(string(e.ErrorData) + " " + e.Message + " " + e.UserMsg)
		if !ok || i >= len(batch) || len(batch) == 1 {
			return conversion.AllResults(len(batch), r)
		}
		out := conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Transient, HTTPStatus: status,
			Message: fmt.Sprintf("not accepted: Meta refused the request because of event %s; %s", batch[i].EventID, r.Message)})
		out[i] = r
		return out
	default: // 190 and other auth or permission errors, and anything unknown
		r.Outcome = conversion.Permanent
		return conversion.AllResults(len(batch), r)
	}
}

// throttled reports the Graph API's rate-limit codes: application (4), user
// (17), page (32), account (613) and business-use-case (80000–80099) limits.
func throttled(code int) bool {
	return code == 4 || code == 17 || code == 32 || code == 341 || code == 613 || (code >= 80000 && code < 80100)
}

// eventIndexRE finds the index of the offending event: an event_index field
// (as in the error_data of Meta's batch errors) or a data[i] path.
var eventIndexRE = regexp.MustCompile(`event_index"?\s*[:=]\s*"?([0-9]{1,4})|\bdata\[([0-9]{1,4})\]`)

func eventIndex(s string) (int, bool) {
	m := eventIndexRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1] + m[2])
	return n, err == nil
}

// retryAfter reads how long Meta asks us to wait: a Retry-After header
// (seconds or an HTTP date), else the largest estimated_time_to_regain_access
// (minutes) in X-Business-Use-Case-Usage.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d, ok := conversion.RetryAfter(h, now); ok {
		return d
	}
	var usage map[string][]struct {
		Minutes int `json:"estimated_time_to_regain_access"`
	}
	if json.Unmarshal([]byte(h.Get("X-Business-Use-Case-Usage")), &usage) != nil {
		return 0
	}
	var longest int
	for _, list := range usage {
		for _, u := range list {
			longest = max(longest, u.Minutes)
		}
	}
	return time.Duration(longest) * time.Minute
}
