package google

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
)

// maxReply bounds how much of an answer is read; Google's answers for a full
// batch of 2,000 conversions are far smaller.
const maxReply = 4 << 20

// reply is an HTTP answer, read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends req and reads the answer, the exchange bounded by c.Timeout. A
// request that got no answer (refused connection, timeout, cancelled context)
// is Transient with no status.
func (c *Client) do(req *http.Request) (*reply, *conversion.Result) {
	resp, body, err := conversion.Exchange(c.hc, req, c.Timeout, maxReply)
	switch {
	case resp == nil:
		return nil, &conversion.Result{Outcome: conversion.Transient, Message: "no answer: " + conversion.NetError(err)}
	case err != nil:
		return nil, &conversion.Result{Outcome: conversion.Transient, HTTPStatus: resp.StatusCode,
			Message: "answer cut short: " + conversion.NetError(err)}
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// call POSTs body as JSON with a fresh or cached access token; when Google
// answers 401 it refreshes the token once and repeats the request once.
// A non-nil Result is the answer for every conversion of the request.
func (c *Client) call(ctx context.Context, connID string, s settings, url string, body []byte, header http.Header) (*reply, *conversion.Result) {
	var stale string
	for attempt := 0; ; attempt++ {
		token, fail := c.accessToken(ctx, connID, s, stale)
		if fail != nil {
			return nil, fail
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, &conversion.Result{Outcome: conversion.Permanent, Message: "building the request: " + err.Error()}
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rep, fail := c.do(req)
		if fail != nil {
			return nil, fail
		}
		if rep.status != http.StatusUnauthorized || attempt == 1 {
			return rep, nil
		}
		stale = token
	}
}

// apiError is Google's error envelope (google.rpc.Status in JSON).
type apiError struct {
	Error struct {
		Code    int           `json:"code"`
		Message string        `json:"message"`
		Status  string        `json:"status"`
		Details []errorDetail `json:"details"`
	} `json:"error"`
}

// errorDetail is the union of the detail messages Pruuv reads: a Google Ads
// GoogleAdsFailure, and google.rpc ErrorInfo, BadRequest and RetryInfo.
type errorDetail struct {
	Type            string           `json:"@type"`
	Errors          []adsError       `json:"errors"`
	Reason          string           `json:"reason"`
	FieldViolations []fieldViolation `json:"fieldViolations"`
	RetryDelay      string           `json:"retryDelay"`
}

// adsError is one GoogleAdsError.
type adsError struct {
	ErrorCode map[string]string `json:"errorCode"`
	Message   string            `json:"message"`
	Location  struct {
		FieldPathElements []struct {
			FieldName string `json:"fieldName"`
			Index     *int   `json:"index"`
		} `json:"fieldPathElements"`
	} `json:"location"`
}

type fieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
	Reason      string `json:"reason"`
}

// code renders the error code as "family: VALUE", e.g.
// "conversionUploadError: EVENT_NOT_FOUND".
func (e adsError) code() (family, value string) {
	for k, v := range e.ErrorCode {
		return k, v
	}
	return "", ""
}

// row returns the conversions[i] index the error is located at, and the rest
// of its field path (e.g. "wbraid").
func (e adsError) row() (int, string, bool) {
	els := e.Location.FieldPathElements
	for i, el := range els {
		if el.FieldName == "conversions" && el.Index != nil {
			var rest []string
			for _, r := range els[i+1:] {
				rest = append(rest, r.FieldName)
			}
			return *el.Index, strings.Join(rest, "."), true
		}
	}
	return 0, "", false
}

// codes lists every error code of a Google Ads failure, for matching.
func (d errorDetail) codes() []string {
	var out []string
	for _, e := range d.Errors {
		_, v := e.code()
		out = append(out, v)
	}
	if d.Reason != "" {
		out = append(out, d.Reason)
	}
	return out
}

// summary is a one-line account of a whole-request error for the audit log:
// the HTTP status, Google's status and message, and the first detailed codes.
func (e *apiError) summary(status int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", status)
	if e.Error.Status != "" {
		b.WriteString(" " + e.Error.Status)
	}
	if e.Error.Message != "" {
		b.WriteString(": " + e.Error.Message)
	}
	var codes []string
	for _, d := range e.Error.Details {
		for _, ae := range d.Errors {
			f, v := ae.code()
			if f != "" {
				codes = append(codes, f+": "+v)
			}
		}
		if d.Reason != "" && len(d.FieldViolations) == 0 {
			codes = append(codes, d.Reason)
		}
	}
	if len(codes) > 3 {
		codes = append(codes[:3], "…")
	}
	if len(codes) > 0 {
		b.WriteString(" (" + strings.Join(codes, "; ") + ")")
	}
	return b.String()
}

func parseAPIError(body []byte) *apiError {
	var e apiError
	_ = json.Unmarshal(body, &e) // a body that is not Google's envelope leaves e empty
	return &e
}

// wholeRequest judges a non-2xx answer that concerns the request as a whole.
func (c *Client) wholeRequest(rep *reply, e *apiError) conversion.Result {
	r := conversion.Result{HTTPStatus: rep.status, Message: e.summary(rep.status)}
	switch {
	case conversion.TransientStatus(rep.status):
		r.Outcome = conversion.Transient
		r.RetryAfter = c.retryAfter(rep.header, e)
	case rep.status == http.StatusUnauthorized:
		r.Outcome = conversion.Permanent
		r.Message += "; refused again after refreshing the access token: check the connection's credentials"
	default:
		r.Outcome = conversion.Permanent
	}
	return r
}

// retryAfter reads Retry-After (seconds or an HTTP date) or, failing that, a
// google.rpc.RetryInfo detail.
func (c *Client) retryAfter(h http.Header, e *apiError) time.Duration {
	if d, ok := conversion.RetryAfter(h, c.now()); ok {
		return d
	}
	if _, err := http.ParseTime(strings.TrimSpace(h.Get("Retry-After"))); err == nil {
		return 0 // a date already past: Google says go now, whatever RetryInfo says
	}
	if e != nil {
		for _, d := range e.Error.Details {
			if d.RetryDelay != "" {
				if v, err := time.ParseDuration(d.RetryDelay); err == nil && v > 0 {
					return v
				}
			}
		}
	}
	return 0
}

// fill sets the results at idx to r.
func fill(res []conversion.Result, idx []int, r conversion.Result) {
	for _, i := range idx {
		res[i] = r
	}
}
