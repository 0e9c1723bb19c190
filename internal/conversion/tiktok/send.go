package tiktok

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
)

type request struct {
	EventSource   string      `json:"event_source"`
	EventSourceID string      `json:"event_source_id"`
	TestEventCode string      `json:"test_event_code,omitempty"`
	Data          []eventData `json:"data"`
}

type eventData struct {
	Event      string      `json:"event"`
	EventTime  int64       `json:"event_time"`
	EventID    string      `json:"event_id"`
	User       user        `json:"user"`
	Properties *properties `json:"properties,omitempty"`
	Page       *page       `json:"page,omitempty"`
}

type user struct {
	TTCLID    string `json:"ttclid,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

type properties struct {
	Value    json.Number `json:"value"`
	Currency string      `json:"currency"`
}

type page struct {
	URL string `json:"url"`
}

// build turns a conversion into one element of TikTok's data array.
func build(c *conversion.Conversion) eventData {
	f := &c.Fields
	e := eventData{
		Event:     c.EventName,
		EventTime: c.Time.Unix(),
		EventID:   c.EventID,
		User: user{
			TTCLID:    f.TTCLID,
			Email:     f.EmailSHA256,
			Phone:     f.PhoneSHA256,
			IP:        f.ClientIPAddress,
			UserAgent: f.ClientUserAgent,
		},
	}
	if f.HasRevenue && f.Currency != "" {
		e.Properties = &properties{Value: json.Number(event.FormatMicros(f.RevenueMicros)), Currency: f.Currency}
	}
	if f.EventSourceURL != "" {
		e.Page = &page{URL: f.EventSourceURL}
	}
	return e
}

// Send implements conversion.Client.
func (c *Client) Send(ctx context.Context, conn conversion.Connection, batch []conversion.Conversion) []conversion.Result {
	if len(batch) > MaxEvents { // the queue keeps to MaxBatch; never refuse work over it
		return append(c.Send(ctx, conn, batch[:MaxEvents]), c.Send(ctx, conn, batch[MaxEvents:])...)
	}
	if err := c.Validate(conn.Settings); err != nil {
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Permanent, Message: "connection settings: " + err.Error()})
	}
	token := conn.Settings[SettingAccessToken]
	body := request{EventSource: "web", EventSourceID: conn.Settings[SettingPixelCode],
		TestEventCode: conn.Settings[SettingTestEventCode], Data: make([]eventData, len(batch))}
	for i := range batch {
		body.Data[i] = build(&batch[i])
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Permanent, Message: "encoding the events: " + err.Error()})
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+Path, bytes.NewReader(payload))
	if err != nil {
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Permanent, Message: "building the request: " + err.Error()})
	}
	req.Header.Set("Access-Token", token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, answerBody, err := conversion.Exchange(c.hc, req, c.Timeout, conversion.MaxAnswer)
	switch {
	case resp == nil:
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Transient, Message: conversion.Redact("no answer: "+err.Error(), token)})
	case err != nil:
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Transient, HTTPStatus: resp.StatusCode,
			Message: conversion.Redact("reading the answer: "+err.Error(), token)})
	}
	return answer(batch, resp, answerBody, token, time.Now())
}

// reply is TikTok's answer, the same shape for success and failure.
type reply struct {
	Code      *int   `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// TikTok's answer codes (reference notes §3.3).
const (
	codeOK             = 0
	codePartialSuccess = 20001
	codeNoPermission   = 40001
	codeInvalid        = 40002
	codeRateLimited    = 40100
)

// answer maps TikTok's answer to one Result per conversion. TikTok answers
// HTTP 200 and puts the verdict in code; another status comes from a
// gateway in front of it.
func answer(batch []conversion.Conversion, resp *http.Response, body []byte, token string, now time.Time) []conversion.Result {
	status := resp.StatusCode
	wait, _ := conversion.RetryAfter(resp.Header, now)
	r := conversion.Result{HTTPStatus: status, RetryAfter: wait}
	var rep reply
	if status/100 != 2 || json.Unmarshal(body, &rep) != nil || rep.Code == nil {
		r.Outcome = conversion.Permanent
		if status/100 == 2 || conversion.TransientStatus(status) {
			r.Outcome = conversion.Transient // no verdict from TikTok itself
		}
		r.Message = conversion.Redact(fmt.Sprintf("HTTP %d: %s", status, conversion.Snippet(body)), token)
		return conversion.AllResults(len(batch), r)
	}
	code := *rep.Code
	r.Message = fmt.Sprintf("code %d: %s", code, rep.Message)
	if rep.RequestID != "" {
		r.Message += "; request_id " + rep.RequestID
	}
	r.Message = conversion.Redact(r.Message, token)
	switch {
	case code == codeOK, code == codePartialSuccess:
		r.Outcome = conversion.Sent
		return conversion.AllResults(len(batch), r)
	case code == codeRateLimited, code >= 50000 && code < 60000:
		r.Outcome = conversion.Transient
		return conversion.AllResults(len(batch), r)
	case code == codeInvalid:
		// A bad event fails the whole request; TikTok names it Batch.<i>.
		// Only it is refused; the others go again without it.
		r.Outcome = conversion.Permanent
		i, ok := batchIndex(rep.Message)
		if !ok || i >= len(batch) || len(batch) == 1 {
			return conversion.AllResults(len(batch), r)
		}
		out := conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Transient, HTTPStatus: status,
			Message: fmt.Sprintf("not accepted: TikTok refused the request because of event %s; %s", batch[i].EventID, r.Message)})
		out[i] = r
		return out
	default: // 40001 no permission, 40105 bad token, any other refusal
		r.Outcome = conversion.Permanent
		return conversion.AllResults(len(batch), r)
	}
}

var batchIndexRE = regexp.MustCompile(`\bBatch\.([0-9]{1,4})\.`)

func batchIndex(msg string) (int, bool) {
	m := batchIndexRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}
