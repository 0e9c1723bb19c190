package microsoft

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
)

// ApplyRequest is the JSON body of ApplyOfflineConversions.
type ApplyRequest struct {
	OfflineConversions []OfflineConversion
}

// OfflineConversion is one conversion on the wire. Absent optional fields
// are omitted, which Microsoft reads as "use the goal's default".
type OfflineConversion struct {
	ConversionCurrencyCode string `json:",omitempty"`
	ConversionName         string
	ConversionTime         string
	ConversionValue        json.Number `json:",omitempty"`
	HashedEmailAddress     string      `json:",omitempty"`
	HashedPhoneNumber      string      `json:",omitempty"`
	MicrosoftClickId       string
}

// BatchError is a per-item error: in PartialErrors of a success, or in
// BatchErrors of a fault.
type BatchError struct {
	Code      int
	Details   string
	ErrorCode string
	FieldPath string
	Index     int
	Message   string
	Type      string
}

// OperationError is an error of the whole call: an OperationError of an
// ApiFaultDetail, or an AdApiError (which names its details Detail).
type OperationError struct {
	Code      int
	Details   string
	Detail    string
	ErrorCode string
	Message   string
}

// applyResponse covers the success body and both fault bodies Microsoft's
// REST API sends: ApiFaultDetail (OperationErrors, BatchErrors) and
// AdApiFaultDetail (Errors: authentication and other generic failures).
type applyResponse struct {
	PartialErrors   []BatchError
	BatchErrors     []BatchError
	OperationErrors []OperationError
	Errors          []OperationError
	TrackingId      string
	Type            string
}

// Error codes Pruuv treats specially (Microsoft's operation error codes).
const (
	codeInternalError      = 0
	codeTokenExpired       = 109
	codeCallRateExceeded   = 117
	codeApplyFailed        = 5612
	codeGoalNotAcceptedYet = 5615
)

// Send delivers one batch. Conversions that cannot be put on the wire (no
// goal, no msclkid) are refused here; the rest go in one call per 1,000.
func (c *Client) Send(ctx context.Context, conn conversion.Connection, batch []conversion.Conversion) []conversion.Result {
	if err := settingsError(check(conn.Settings)); err != nil {
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Permanent, Message: err.Error()})
	}
	results := make([]conversion.Result, len(batch))
	var (
		wire []OfflineConversion
		at   []int // at[i] is the batch index of wire[i]
	)
	for i := range batch {
		oc, problem := build(&batch[i], conn.Settings[SettingGoal])
		if problem != "" {
			results[i] = conversion.Result{Outcome: conversion.Permanent, Message: problem}
			continue
		}
		wire = append(wire, oc)
		at = append(at, i)
	}
	for start := 0; start < len(wire); start += MaxBatch {
		end := min(start+MaxBatch, len(wire))
		part := c.apply(ctx, conn, wire[start:end])
		for j, r := range part {
			results[at[start+j]] = r
		}
	}
	return results
}

// build maps a conversion to the wire, or says why it cannot be sent.
func build(cv *conversion.Conversion, defaultGoal string) (OfflineConversion, string) {
	f := &cv.Fields
	goal := cv.EventName
	if goal == "" {
		goal = defaultGoal
	}
	switch {
	case goal == "":
		return OfflineConversion{}, "no conversion goal: the stage mapping gives none and the connection has no conversion_goal"
	case len(goal) > maxGoalName:
		return OfflineConversion{}, fmt.Sprintf("conversion goal name longer than %d characters", maxGoalName)
	case f.MSCLKID == "":
		return OfflineConversion{}, "no msclkid"
	}
	oc := OfflineConversion{
		ConversionName:     goal,
		ConversionTime:     formatTime(cv.Time),
		HashedEmailAddress: f.EmailSHA256,
		HashedPhoneNumber:  f.PhoneSHA256,
		MicrosoftClickId:   f.MSCLKID,
	}
	if f.HasRevenue {
		// Exact decimal text: a float64 would round large amounts.
		oc.ConversionValue = json.Number(event.FormatMicros(f.RevenueMicros))
		oc.ConversionCurrencyCode = f.Currency
	}
	return oc, ""
}

// apply makes one ApplyOfflineConversions call (twice when the access token
// turns out expired) and returns one result per conversion.
func (c *Client) apply(ctx context.Context, conn conversion.Connection, wire []OfflineConversion) []conversion.Result {
	n := len(wire)
	body, err := json.Marshal(ApplyRequest{OfflineConversions: wire})
	if err != nil {
		return conversion.AllResults(n, conversion.Result{Outcome: conversion.Permanent, Message: "microsoft: encoding the request: " + err.Error()})
	}
	stale := ""
	for attempt := 0; ; attempt++ {
		token, err := c.accessToken(ctx, conn, stale)
		if err != nil {
			var ae *authError
			if errors.As(err, &ae) {
				return conversion.AllResults(n, ae.res)
			}
			return conversion.AllResults(n, conversion.Result{Outcome: conversion.Transient, Message: err.Error()})
		}
		status, hdr, ans, raw, res := c.post(ctx, conn, token, body)
		if res != nil {
			return conversion.AllResults(n, *res)
		}
		if attempt == 0 && expired(status, ans) {
			stale = token
			continue
		}
		if ans == nil {
			return conversion.AllResults(n, undecodable(status, hdr, raw, c.now()))
		}
		return c.judge(status, hdr, ans, n)
	}
}

// expired reports an answer that a fresh access token may cure: HTTP 401 or
// AuthenticationTokenExpired.
func expired(status int, ans *applyResponse) bool {
	if status == http.StatusUnauthorized {
		return true
	}
	if ans == nil {
		return false
	}
	for _, e := range slices.Concat(ans.Errors, ans.OperationErrors) {
		if e.Code == codeTokenExpired {
			return true
		}
	}
	return false
}

// post sends the body. ans is nil when the answer is not JSON; a non-nil
// Result judges a call that got no answer at all.
func (c *Client) post(ctx context.Context, conn conversion.Connection, token string, body []byte) (int, http.Header, *applyResponse, []byte, *conversion.Result) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+APIPath, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, nil, &conversion.Result{Outcome: conversion.Permanent, Message: "microsoft: bad API URL: " + err.Error()}
	}
	s := conn.Settings
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("DeveloperToken", s[SettingDeveloperToken])
	req.Header.Set("CustomerId", s[SettingCustomerID])
	req.Header.Set("CustomerAccountId", s[SettingAccountID])
	resp, raw, err := conversion.Exchange(c.hc, req, c.timeout, conversion.MaxAnswer)
	switch {
	case resp == nil:
		return 0, nil, nil, nil, &conversion.Result{Outcome: conversion.Transient, Message: "no answer from Microsoft Advertising: " + conversion.NetError(err)}
	case err != nil:
		wait, _ := conversion.RetryAfter(resp.Header, c.now())
		return 0, nil, nil, nil, &conversion.Result{Outcome: conversion.Transient, HTTPStatus: resp.StatusCode,
			RetryAfter: wait, Message: "reading Microsoft Advertising's answer: " + conversion.NetError(err)}
	}
	var ans applyResponse
	if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &ans) != nil {
		return resp.StatusCode, resp.Header, nil, raw, nil
	}
	if ans.TrackingId == "" {
		ans.TrackingId = resp.Header.Get("TrackingId")
	}
	return resp.StatusCode, resp.Header, &ans, raw, nil
}

// undecodable judges an answer that is not Microsoft's JSON: a proxy's error
// page, a truncated body. It is no definite answer unless the status says
// the request itself was wrong; resending is safe because Microsoft ignores a
// second conversion with the same click id, goal and time.
func undecodable(status int, hdr http.Header, raw []byte, now time.Time) conversion.Result {
	out := conversion.Transient
	if status >= 400 && status < 500 && !conversion.TransientStatus(status) {
		out = conversion.Permanent
	}
	wait, _ := conversion.RetryAfter(hdr, now)
	return conversion.Result{Outcome: out, HTTPStatus: status, RetryAfter: wait,
		Message: fmt.Sprintf("Microsoft Advertising answered %d with %s", status, snippet(raw))}
}

// judge turns a decoded answer into results.
func (c *Client) judge(status int, hdr http.Header, ans *applyResponse, n int) []conversion.Result {
	wait, _ := conversion.RetryAfter(hdr, c.now())
	track := ""
	if ans.TrackingId != "" {
		track = " (TrackingId " + ans.TrackingId + ")"
	}
	if status >= 200 && status < 300 && len(ans.Errors) == 0 && len(ans.OperationErrors) == 0 {
		results := conversion.AllResults(n, conversion.Result{Outcome: conversion.Sent, HTTPStatus: status})
		for _, e := range ans.PartialErrors {
			if e.Index < 0 || e.Index >= len(results) {
				continue
			}
			results[e.Index] = itemResult(status, e, wait, track)
		}
		return results
	}
	ops := slices.Concat(ans.Errors, ans.OperationErrors)
	if len(ops) > 0 {
		out, ra := conversion.Permanent, wait
		if status == http.StatusTooManyRequests || status >= 500 {
			out = conversion.Transient
		}
		for _, e := range ops {
			if o, d := classify(e.Code); o == conversion.Transient {
				out = o
				if ra == 0 {
					ra = d
				}
			}
		}
		return conversion.AllResults(n, conversion.Result{Outcome: out, HTTPStatus: status, RetryAfter: ra, Message: opMessage(ops) + track})
	}
	if len(ans.BatchErrors) > 0 {
		// The call was refused because of some items: they carry the
		// verdict, the others go again without them.
		results := conversion.AllResults(n, conversion.Result{Outcome: conversion.Transient, HTTPStatus: status,
			Message: "not applied: Microsoft refused other conversions of the same call" + track})
		for _, e := range ans.BatchErrors {
			if e.Index < 0 || e.Index >= len(results) {
				continue
			}
			results[e.Index] = itemResult(status, e, wait, track)
		}
		return results
	}
	out := conversion.Permanent
	if conversion.TransientStatus(status) {
		out = conversion.Transient
	}
	return conversion.AllResults(n, conversion.Result{Outcome: out, HTTPStatus: status, RetryAfter: wait,
		Message: fmt.Sprintf("Microsoft Advertising answered %d%s", status, track)})
}

func itemResult(status int, e BatchError, wait time.Duration, track string) conversion.Result {
	out, d := classify(e.Code)
	r := conversion.Result{Outcome: out, HTTPStatus: status, Message: errText(e.Code, e.ErrorCode, e.Message, e.Details) + track}
	if out == conversion.Transient {
		r.RetryAfter = wait
		if r.RetryAfter == 0 {
			r.RetryAfter = d
		}
	}
	return r
}

// classify says whether an error code may pass with time, and how long to
// wait when the answer named no Retry-After.
func classify(code int) (conversion.Outcome, time.Duration) {
	switch code {
	case codeCallRateExceeded:
		return conversion.Transient, CallRateWait
	case codeGoalNotAcceptedYet:
		return conversion.Transient, GoalSettle
	case codeInternalError, codeApplyFailed:
		return conversion.Transient, 0
	}
	return conversion.Permanent, 0
}

func opMessage(ops []OperationError) string {
	parts := make([]string, len(ops))
	for i, e := range ops {
		parts[i] = errText(e.Code, e.ErrorCode, e.Message, e.Details+e.Detail)
	}
	return strings.Join(parts, "; ")
}

func errText(code int, name, msg, details string) string {
	s := strconv.Itoa(code)
	if name != "" {
		s += " " + name
	}
	if msg != "" {
		s += ": " + msg
	}
	if details != "" && details != msg {
		s += " (" + details + ")"
	}
	return s
}

func snippet(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "an empty body"
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}
