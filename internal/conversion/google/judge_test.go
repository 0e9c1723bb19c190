package google

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
)

// Answers the fake never gives, judged directly.

func TestAdsRequestLevelRowErrors(t *testing.T) {
	c := New(conversion.DefaultEndpoints, nil)
	body := `{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"Request contains an invalid argument.",
		"details":[{"@type":"type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
		"errors":[{"errorCode":{"fieldError":"REQUIRED"},"message":"The required field was not present.",
		"location":{"fieldPathElements":[{"fieldName":"conversions","index":1},{"fieldName":"conversion_action"}]}}]}]}}`
	res := make([]conversion.Result, 3)
	c.adsJudge(&reply{status: 400, header: http.Header{}, body: []byte(body)}, res)
	wantOutcomes(t, res, conversion.Transient, conversion.Permanent, conversion.Transient)
	if !strings.Contains(res[1].Message, "fieldError: REQUIRED at conversion_action") {
		t.Errorf("result 1: %+v", res[1])
	}

	// An error that names no row refuses the whole request.
	body = strings.Replace(body, `"location":{"fieldPathElements":[{"fieldName":"conversions","index":1},{"fieldName":"conversion_action"}]}`, `"location":{}`, 1)
	c.adsJudge(&reply{status: 400, header: http.Header{}, body: []byte(body)}, res)
	wantOutcomes(t, res, conversion.Permanent, conversion.Permanent, conversion.Permanent)
}

func TestAdsUnlocatedRowFailure(t *testing.T) {
	c := New(conversion.DefaultEndpoints, nil)
	body := `{"results":[{"gclid":"a"},{}],"partialFailureError":{"code":3,"message":"Something failed.","details":[]},"jobId":"7"}`
	res := make([]conversion.Result, 2)
	c.adsJudge(&reply{status: 200, header: http.Header{}, body: []byte(body)}, res)
	wantOutcomes(t, res, conversion.Sent, conversion.Permanent)
	if res[1].Message != "refused: Something failed." || res[0].Message != "accepted, job_id 7" {
		t.Errorf("results %+v", res)
	}

	// Two errors on one row: the graver wins and both are told.
	body = `{"results":[{}],"partialFailureError":{"code":3,"message":"x","details":[{"errors":[
		{"errorCode":{"conversionUploadError":"TOO_RECENT_EVENT"},"location":{"fieldPathElements":[{"fieldName":"conversions","index":0}]}},
		{"errorCode":{"conversionUploadError":"INVALID_USER_IDENTIFIER"},"location":{"fieldPathElements":[{"fieldName":"conversions","index":0}]}}]}]}}`
	res = make([]conversion.Result, 1)
	c.adsJudge(&reply{status: 200, header: http.Header{}, body: []byte(body)}, res)
	wantOutcomes(t, res, conversion.Permanent)
	if !strings.Contains(res[0].Message, "TOO_RECENT_EVENT") || !strings.Contains(res[0].Message, "INVALID_USER_IDENTIFIER") {
		t.Errorf("result %+v", res[0])
	}
}

func TestDataManagerViolationOutsideEvents(t *testing.T) {
	c := New(conversion.DefaultEndpoints, nil)
	body := `{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"There was a problem with the request.","details":[
		{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[
		{"field":"events[0].currency","reason":"INVALID_CURRENCY_CODE"},{"field":"destinations[0]","reason":"INVALID_DESTINATION"}]}]}}`
	res := make([]conversion.Result, 2)
	c.dmJudge(&reply{status: 400, header: http.Header{}, body: []byte(body)}, []int{0, 1}, res)
	wantOutcomes(t, res, conversion.Permanent, conversion.Permanent)

	// The short path form names an event too.
	body = strings.Replace(body, `,{"field":"destinations[0]","reason":"INVALID_DESTINATION"}`, "", 1)
	c.dmJudge(&reply{status: 400, header: http.Header{}, body: []byte(body)}, []int{0, 1}, res)
	wantOutcomes(t, res, conversion.Permanent, conversion.Transient)
	if !strings.Contains(res[0].Message, "INVALID_CURRENCY_CODE at events[0].currency") {
		t.Errorf("result %+v", res[0])
	}
}

func TestRetryAfter(t *testing.T) {
	c := New(conversion.DefaultEndpoints, nil)
	c.now = func() time.Time { return now }
	h := http.Header{}
	h.Set("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
	if d := c.retryAfter(h, nil); d != 90*time.Second {
		t.Errorf("HTTP date: %v", d)
	}
	e := parseAPIError([]byte(`{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"}]}}`))
	if d := c.retryAfter(http.Header{}, e); d != 12*time.Second {
		t.Errorf("RetryInfo: %v", d)
	}
	r := c.wholeRequest(&reply{status: 429, header: http.Header{}}, e)
	if r.Outcome != conversion.Transient || r.RetryAfter != 12*time.Second {
		t.Errorf("429: %+v", r)
	}
}
