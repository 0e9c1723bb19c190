package tiktok

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
)

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

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
		return all(batch, conversion.Result{Outcome: conversion.Permanent, Message: "connection settings: " + err.Error()})
	}
	token := conn.Settings[SettingAccessToken]
	body := request{EventSource: "web", EventSourceID: conn.Settings[SettingPixelCode],
		TestEventCode: conn.Settings[SettingTestEventCode], Data: make([]eventData, len(batch))}
	for i := range batch {
		body.Data[i] = build(&batch[i])
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return all(batch, conversion.Result{Outcome: conversion.Permanent, Message: "encoding the events: " + err.Error()})
	}

	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+Path, bytes.NewReader(payload))
	if err != nil {
		return all(batch, conversion.Result{Outcome: conversion.Permanent, Message: "building the request: " + err.Error()})
	}
	req.Header.Set("Access-Token", token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return all(batch, conversion.Result{Outcome: conversion.Transient, Message: redact("no answer: "+err.Error(), token)})
	}
	defer resp.Body.Close()
	answerBody, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return all(batch, conversion.Result{Outcome: conversion.Transient, HTTPStatus: resp.StatusCode,
			Message: redact("reading the answer: "+err.Error(), token)})
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
	r := conversion.Result{HTTPStatus: status, RetryAfter: retryAfter(resp.Header, now)}
	var rep reply
	if status/100 != 2 || json.Unmarshal(body, &rep) != nil || rep.Code == nil {
		r.Outcome = conversion.Permanent
		if status/100 == 2 || status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout {
			r.Outcome = conversion.Transient // no verdict from TikTok itself
		}
		r.Message = redact(fmt.Sprintf("HTTP %d: %s", status, snippet(body)), token)
		return all(batch, r)
	}
	code := *rep.Code
	r.Message = fmt.Sprintf("code %d: %s", code, rep.Message)
	if rep.RequestID != "" {
		r.Message += "; request_id " + rep.RequestID
	}
	r.Message = redact(r.Message, token)
	switch {
	case code == codeOK, code == codePartialSuccess:
		r.Outcome = conversion.Sent
		return all(batch, r)
	case code == codeRateLimited, code >= 50000 && code < 60000:
		r.Outcome = conversion.Transient
		return all(batch, r)
	case code == codeInvalid:
		// A bad event fails the whole request; TikTok names it Batch.<i>.
		// Only it is refused; the others go again without it.
		r.Outcome = conversion.Permanent
		i, ok := batchIndex(rep.Message)
		if !ok || i >= len(batch) || len(batch) == 1 {
			return all(batch, r)
		}
		out := all(batch, conversion.Result{Outcome: conversion.Transient, HTTPStatus: status,
			Message: fmt.Sprintf("not accepted: TikTok refused the request because of event %s; %s", batch[i].EventID, r.Message)})
		out[i] = r
		return out
	default: // 40001 no permission, 40105 bad token, any other refusal
		r.Outcome = conversion.Permanent
		return all(batch, r)
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

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func all(batch []conversion.Conversion, r conversion.Result) []conversion.Result {
	out := make([]conversion.Result, len(batch))
	for i := range out {
		out[i] = r
	}
	return out
}

// snippet is the start of a body that is not TikTok's JSON (a gateway's HTML
// page, say), on one line.
func snippet(b []byte) string {
	s := cut(strings.Join(strings.Fields(string(bytes.ToValidUTF8(b, nil))), " "), 200)
	if s == "" {
		return "empty answer"
	}
	return s
}

// redact removes the access token from text bound for the audit log, in case
// an answer or an error ever quotes it.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[redacted]")
}
