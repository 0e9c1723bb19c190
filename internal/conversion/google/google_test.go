package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/conversion/google/googlefake"
	"github.com/pruuv/pruuv/internal/event"
)

// now is the clock of every test: the client's and the fake's.
var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

const (
	gclid     = "Cj0KCQiA_exampleGclidValue_BwE"
	clickTime = "2026-11-18T09:00:00Z"
	// The hashing vectors of the reference: Google's form of
	// Jane.Doe+promo@gmail.com is janedoe@gmail.com; the phone is hashed in
	// E.164 with its "+".
	emailHash = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
	phoneHash = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4"
)

type harness struct {
	fake   *googlefake.Fake
	client *Client
	conn   conversion.Connection
}

// newHarness starts the fake and a client pointed at it, with a connection
// on the given API.
func newHarness(t *testing.T, api string) *harness {
	t.Helper()
	f := googlefake.New()
	f.SetClock(func() time.Time { return now })
	click, _ := time.Parse(time.RFC3339, clickTime)
	f.AddClick(gclid, click)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(f.Close) // runs first: releases hung requests before the server closes
	c := New(conversion.Endpoints{GoogleOAuth: srv.URL, GoogleDataManager: srv.URL, GoogleAds: srv.URL}, srv.Client())
	c.now = func() time.Time { return now }
	settings := map[string]string{
		"api":           api,
		"customer_id":   "123-456-7890",
		"client_id":     googlefake.ClientID,
		"client_secret": googlefake.ClientSecret,
		"refresh_token": googlefake.RefreshToken,
	}
	if api == apiAds {
		settings["developer_token"] = googlefake.DeveloperToken
	}
	return &harness{fake: f, client: c, conn: conversion.Connection{ID: "conn_1", ClientID: "cli_1", Platform: conversion.Google, Settings: settings}}
}

func (h *harness) send(t *testing.T, batch ...conversion.Conversion) []conversion.Result {
	t.Helper()
	res := h.client.Send(context.Background(), h.conn, batch)
	if len(res) != len(batch) {
		t.Fatalf("Send returned %d results for %d conversions", len(res), len(batch))
	}
	return res
}

// sample is a conversion decoded the way the webhook stores one, so the
// hashes are the ones event.Decode computes.
func sample(t *testing.T, id string) conversion.Conversion {
	t.Helper()
	body := `{"reference":"CRM-1","gclid":"` + gclid + `","click_timestamp":"` + clickTime + `",
		"email":"Jane.Doe+promo@gmail.com","phone":"+1 415 555 0123",
		"revenue_value":49.99,"currency":"USD","data_timestamp":"2026-11-20T11:03:11+01:00"}`
	f, err := event.Decode([]byte(body), now)
	if err != nil {
		t.Fatal(err)
	}
	return conversion.Conversion{EventID: id, StageID: "stg_1", EventName: googlefake.ActionID,
		Time: f.DataTimestamp, ReceivedAt: now, Fields: f}
}

func wantJSON(t *testing.T, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation: %v", err)
	}
	gb, _ := json.Marshal(got)
	var g any
	_ = json.Unmarshal(gb, &g)
	if !reflect.DeepEqual(g, w) {
		wb, _ := json.Marshal(w)
		t.Errorf("body:\n got %s\nwant %s", gb, wb)
	}
}

func requestsTo(f *googlefake.Fake, endpoint string) []googlefake.Request {
	var out []googlefake.Request
	for _, r := range f.Requests() {
		if r.Endpoint == endpoint {
			out = append(out, r)
		}
	}
	return out
}

func wantOutcomes(t *testing.T, res []conversion.Result, want ...conversion.Outcome) {
	t.Helper()
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Errorf("result %d: outcome %v, want %v (%+v)", i, r.Outcome, want[i], r)
		}
	}
}

func TestSampleHashes(t *testing.T) {
	cv := sample(t, "evt_1")
	if cv.Fields.EmailGoogleSHA256 != emailHash || cv.Fields.PhoneSHA256 != phoneHash {
		t.Fatalf("hashes %s %s", cv.Fields.EmailGoogleSHA256, cv.Fields.PhoneSHA256)
	}
}

func TestDataManagerRequest(t *testing.T) {
	h := newHarness(t, apiDataManager)
	h.conn.Settings["login_customer_id"] = "9876543210"
	h.conn.Settings["consent_ad_user_data"] = "granted"
	res := h.send(t, sample(t, "evt_1"))
	wantOutcomes(t, res, conversion.Sent)
	if res[0].HTTPStatus != 200 || !strings.HasPrefix(res[0].Message, "accepted, request_id fake-") {
		t.Errorf("result %+v", res[0])
	}

	reqs := requestsTo(h.fake, "ingest")
	if len(reqs) != 1 {
		t.Fatalf("%d ingest requests", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/v1/events:ingest" || r.Header.Get("developer-token") != "" || r.Header.Get("login-customer-id") != "" {
		t.Errorf("path %s headers %v", r.Path, r.Header)
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ya29.fake-") {
		t.Errorf("authorization %q", r.Header.Get("Authorization"))
	}
	wantJSON(t, r.Body, `{
		"destinations": [{
			"reference": "555000111",
			"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
			"loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "9876543210"},
			"productDestinationId": "555000111"
		}],
		"encoding": "HEX",
		"events": [{
			"destinationReferences": ["555000111"],
			"transactionId": "evt_1",
			"eventTimestamp": "2026-11-20T10:03:11Z",
			"adIdentifiers": {"gclid": "`+gclid+`"},
			"userData": {"userIdentifiers": [
				{"emailAddress": "`+emailHash+`"},
				{"phoneNumber": "`+phoneHash+`"}
			]},
			"conversionValue": 49.99,
			"currency": "USD",
			"eventSource": "WEB",
			"consent": {"adUserData": "CONSENT_GRANTED"}
		}]
	}`)
	if got := h.fake.Accepted(); !reflect.DeepEqual(got, []string{"evt_1"}) {
		t.Errorf("accepted %v", got)
	}
}

func TestAdsRequest(t *testing.T) {
	h := newHarness(t, apiAds)
	h.fake.RequireLoginCustomer("9876543210")
	h.conn.Settings["login_customer_id"] = "987-654-3210"
	res := h.send(t, sample(t, "evt_1"))
	wantOutcomes(t, res, conversion.Sent)
	if res[0].HTTPStatus != 200 || !strings.HasPrefix(res[0].Message, "accepted, job_id ") {
		t.Errorf("result %+v", res[0])
	}

	reqs := requestsTo(h.fake, "upload")
	if len(reqs) != 1 {
		t.Fatalf("%d upload requests", len(reqs))
	}
	r := reqs[0]
	if r.Path != "/v26/customers/1234567890:uploadClickConversions" {
		t.Errorf("path %s", r.Path)
	}
	if r.Header.Get("developer-token") != googlefake.DeveloperToken || r.Header.Get("login-customer-id") != "9876543210" {
		t.Errorf("headers %v", r.Header)
	}
	wantJSON(t, r.Body, `{
		"conversions": [{
			"gclid": "`+gclid+`",
			"conversionAction": "customers/1234567890/conversionActions/555000111",
			"conversionDateTime": "2026-11-20 10:03:11+00:00",
			"conversionValue": 49.99,
			"currencyCode": "USD",
			"orderId": "evt_1",
			"userIdentifiers": [
				{"hashedEmail": "`+emailHash+`"},
				{"hashedPhoneNumber": "`+phoneHash+`"}
			]
		}],
		"partialFailure": true
	}`)
}

func TestAdsVersionAndConsent(t *testing.T) {
	h := newHarness(t, apiAds)
	h.conn.Settings["api_version"] = "v24"
	h.conn.Settings["consent_ad_user_data"] = "denied"
	wantOutcomes(t, h.send(t, sample(t, "evt_1")), conversion.Sent)
	r := requestsTo(h.fake, "upload")[0]
	if r.Path != "/v24/customers/1234567890:uploadClickConversions" {
		t.Errorf("path %s", r.Path)
	}
	row := r.Body["conversions"].([]any)[0].(map[string]any)
	wantJSON(t, row["consent"], `{"adUserData":"DENIED"}`)
}

func TestTokenRefreshedThenCached(t *testing.T) {
	h := newHarness(t, apiDataManager)
	h.send(t, sample(t, "evt_1"))
	h.send(t, sample(t, "evt_2"))
	if n := h.fake.TokenRefreshes(); n != 1 {
		t.Fatalf("%d token refreshes, want 1", n)
	}
	tok := requestsTo(h.fake, "token")[0]
	want := map[string]string{"grant_type": "refresh_token", "client_id": googlefake.ClientID,
		"client_secret": googlefake.ClientSecret, "refresh_token": googlefake.RefreshToken}
	for k, v := range want {
		if tok.Form.Get(k) != v {
			t.Errorf("token form %s=%q, want %q", k, tok.Form.Get(k), v)
		}
	}
	if len(tok.Form) != len(want) {
		t.Errorf("token form %v", tok.Form)
	}

	// Near the end of the token's hour, a new one is fetched first.
	h.client.now = func() time.Time { return now.Add(time.Hour - 30*time.Second) }
	wantOutcomes(t, h.send(t, sample(t, "evt_3")), conversion.Sent)
	if n := h.fake.TokenRefreshes(); n != 2 {
		t.Fatalf("%d token refreshes after expiry, want 2", n)
	}

	// Another refresh token on the same connection is another cache entry.
	other := *h
	other.conn.Settings = map[string]string{}
	for k, v := range h.conn.Settings {
		other.conn.Settings[k] = v
	}
	other.conn.Settings["refresh_token"] = "1//another"
	res := other.send(t, sample(t, "evt_4"))
	wantOutcomes(t, res, conversion.Permanent) // the fake does not know that refresh token
	if n := h.fake.TokenRefreshes(); n != 3 {
		t.Fatalf("%d token refreshes, want 3", n)
	}
}

func TestExpiredTokenRefreshedAndRetried(t *testing.T) {
	for _, api := range []string{apiDataManager, apiAds} {
		t.Run(api, func(t *testing.T) {
			h := newHarness(t, api)
			wantOutcomes(t, h.send(t, sample(t, "evt_1")), conversion.Sent)
			h.fake.ExpireTokens()
			wantOutcomes(t, h.send(t, sample(t, "evt_2")), conversion.Sent)
			var seq []string
			for _, r := range h.fake.Requests() {
				seq = append(seq, r.Endpoint)
			}
			api := map[string]string{apiDataManager: "ingest", apiAds: "upload"}[api]
			want := []string{"token", api, api, "token", api}
			if !reflect.DeepEqual(seq, want) {
				t.Errorf("requests %v, want %v", seq, want)
			}
		})
	}
}

func TestUnauthorizedTwiceIsPermanent(t *testing.T) {
	h := newHarness(t, apiAds)
	h.fake.FailNext(2, googlefake.Unauthorized)
	res := h.send(t, sample(t, "evt_1"), sample(t, "evt_2"))
	wantOutcomes(t, res, conversion.Permanent, conversion.Permanent)
	if res[0].HTTPStatus != 401 || !strings.Contains(res[0].Message, "OAUTH_TOKEN_REVOKED") ||
		!strings.Contains(res[0].Message, "after refreshing") {
		t.Errorf("result %+v", res[0])
	}
	if n := h.fake.TokenRefreshes(); n != 2 {
		t.Errorf("%d token refreshes, want 2", n)
	}
	if n := len(requestsTo(h.fake, "upload")); n != 2 {
		t.Errorf("%d uploads, want 2 (one retry)", n)
	}
}

func TestInvalidGrantIsPermanent(t *testing.T) {
	for _, api := range []string{apiDataManager, apiAds} {
		t.Run(api, func(t *testing.T) {
			h := newHarness(t, api)
			h.fake.RevokeRefreshToken(googlefake.RefreshToken)
			res := h.send(t, sample(t, "evt_1"), sample(t, "evt_2"))
			wantOutcomes(t, res, conversion.Permanent, conversion.Permanent)
			if res[0].HTTPStatus != 400 || !strings.Contains(res[0].Message, "invalid_grant") ||
				!strings.Contains(res[0].Message, "reconnect") {
				t.Errorf("result %+v", res[0])
			}
			if n := len(h.fake.Requests()); n != 1 {
				t.Errorf("%d requests, want only the token request", n)
			}
			if strings.Contains(res[0].Message, googlefake.RefreshToken) || strings.Contains(res[0].Message, googlefake.ClientSecret) {
				t.Errorf("message leaks a secret: %s", res[0].Message)
			}
		})
	}
}

func TestInvalidClientIsPermanent(t *testing.T) {
	h := newHarness(t, apiDataManager)
	h.conn.Settings["client_secret"] = "wrong"
	res := h.send(t, sample(t, "evt_1"))
	wantOutcomes(t, res, conversion.Permanent)
	if res[0].HTTPStatus != 401 || !strings.Contains(res[0].Message, "invalid_client") || !strings.Contains(res[0].Message, "client_secret") {
		t.Errorf("result %+v", res[0])
	}
}

func TestFailures(t *testing.T) {
	cases := []struct {
		kind       googlefake.Kind
		outcome    conversion.Outcome
		status     int
		retryAfter time.Duration
		message    string
	}{
		{googlefake.ServerError, conversion.Transient, 503, 0, "UNAVAILABLE"},
		{googlefake.RateLimited, conversion.Transient, 429, googlefake.RetryAfter, "RESOURCE_EXHAUSTED"},
		{googlefake.Hang, conversion.Transient, 0, 0, "timed out"},
		{googlefake.Validation, conversion.Permanent, 400, 0, "INVALID_ARGUMENT"},
	}
	for _, api := range []string{apiDataManager, apiAds} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", api, tc.kind), func(t *testing.T) {
				h := newHarness(t, api)
				ctx := context.Background()
				if tc.kind == googlefake.Hang {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
					defer cancel()
					// Fetch the token first, so the deadline hits the API call.
					h.send(t, sample(t, "evt_0"))
				}
				h.fake.FailNext(1, tc.kind)
				res := h.client.Send(ctx, h.conn, []conversion.Conversion{sample(t, "evt_1"), sample(t, "evt_2")})
				for i, r := range res {
					if r.Outcome != tc.outcome || r.HTTPStatus != tc.status || r.RetryAfter != tc.retryAfter ||
						!strings.Contains(r.Message, tc.message) {
						t.Errorf("result %d: %+v", i, r)
					}
				}
			})
		}
	}
}

func TestRefusedConnection(t *testing.T) {
	h := newHarness(t, apiDataManager)
	srv := httptest.NewServer(h.fake)
	url := srv.URL
	srv.Close()
	h.client.endpoints = conversion.Endpoints{GoogleOAuth: url, GoogleDataManager: url, GoogleAds: url}
	res := h.send(t, sample(t, "evt_1"))
	if res[0].Outcome != conversion.Transient || res[0].HTTPStatus != 0 || !strings.HasPrefix(res[0].Message, "OAuth token refresh: no answer") {
		t.Errorf("result %+v", res[0])
	}
}

func TestAdsPartialFailure(t *testing.T) {
	h := newHarness(t, apiAds)
	unknown := sample(t, "evt_3")
	unknown.Fields.GCLID = "UnknownClick_BwE"
	h.fake.SetPartial("EVENT_NOT_FOUND", "evt_2")
	h.fake.SetPartial("TOO_RECENT_CONVERSION_ACTION", "evt_4")
	h.fake.SetPartial("internalError:INTERNAL_ERROR", "evt_5")
	res := h.send(t, sample(t, "evt_1"), sample(t, "evt_2"), unknown, sample(t, "evt_4"), sample(t, "evt_5"), sample(t, "evt_6"))
	wantOutcomes(t, res, conversion.Sent, conversion.Permanent, conversion.Permanent, conversion.Transient, conversion.Transient, conversion.Sent)
	if !strings.Contains(res[1].Message, "conversionUploadError: EVENT_NOT_FOUND") {
		t.Errorf("result 1: %+v", res[1])
	}
	if !strings.Contains(res[2].Message, "EVENT_NOT_FOUND at gclid: The click") {
		t.Errorf("result 2: %+v", res[2])
	}
	if !strings.Contains(res[4].Message, "internalError: INTERNAL_ERROR") {
		t.Errorf("result 4: %+v", res[4])
	}
	if got, want := h.fake.Accepted(), []string{"evt_1", "evt_6"}; !reflect.DeepEqual(got, want) {
		t.Errorf("accepted %v, want %v", got, want)
	}

	// Sent again after a lost answer, a conversion Google already holds is
	// Sent: the order id is the event id.
	res = h.send(t, sample(t, "evt_1"))
	wantOutcomes(t, res, conversion.Sent)
	if !strings.Contains(res[0].Message, "already recorded by Google: conversionUploadError: ORDER_ID_ALREADY_IN_USE") {
		t.Errorf("resend: %+v", res[0])
	}
}

func TestAdsNotAllowlisted(t *testing.T) {
	h := newHarness(t, apiAds)
	h.fake.SetNotAllowlisted(true)
	res := h.send(t, sample(t, "evt_1"))
	wantOutcomes(t, res, conversion.Permanent)
	if res[0].HTTPStatus != 403 || !strings.Contains(res[0].Message, "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE") ||
		!strings.Contains(res[0].Message, "api=datamanager") {
		t.Errorf("result %+v", res[0])
	}
}

func TestAdsMissingLoginCustomer(t *testing.T) {
	h := newHarness(t, apiAds)
	h.fake.RequireLoginCustomer("9876543210")
	res := h.send(t, sample(t, "evt_1"))
	wantOutcomes(t, res, conversion.Permanent)
	if res[0].HTTPStatus != 403 || !strings.Contains(res[0].Message, "USER_PERMISSION_DENIED") {
		t.Errorf("result %+v", res[0])
	}
}

func TestDataManagerEventRefused(t *testing.T) {
	h := newHarness(t, apiDataManager)
	h.fake.SetPartial("INVALID_EVENT", "evt_2")
	batch := []conversion.Conversion{sample(t, "evt_1"), sample(t, "evt_2"), sample(t, "evt_3")}
	res := h.send(t, batch...)
	wantOutcomes(t, res, conversion.Transient, conversion.Permanent, conversion.Transient)
	if res[1].HTTPStatus != 400 || !strings.Contains(res[1].Message, "INVALID_EVENT at events.events[1]") {
		t.Errorf("result 1: %+v", res[1])
	}
	if len(h.fake.Accepted()) != 0 {
		t.Errorf("accepted %v", h.fake.Accepted())
	}
	// The others go again without it, and pass.
	res = h.send(t, batch[0], batch[2])
	wantOutcomes(t, res, conversion.Sent, conversion.Sent)
}

func TestDataManagerRequestRefused(t *testing.T) {
	h := newHarness(t, apiDataManager)
	bad := sample(t, "evt_1")
	bad.EventName = "999" // an action the account does not have
	res := h.send(t, bad, sample(t, "evt_2"))
	wantOutcomes(t, res, conversion.Permanent, conversion.Permanent)
	if !strings.Contains(res[0].Message, "INVALID_CONVERSION_ACTION_ID") {
		t.Errorf("result %+v", res[0])
	}
}

func TestBatching(t *testing.T) {
	t.Run("ads", func(t *testing.T) {
		h := newHarness(t, apiAds)
		var batch []conversion.Conversion
		for i := range maxBatch + 1 {
			batch = append(batch, sample(t, fmt.Sprintf("evt_%d", i)))
		}
		res := h.send(t, batch...)
		for i, r := range res {
			if r.Outcome != conversion.Sent {
				t.Fatalf("result %d: %+v", i, r)
			}
		}
		reqs := requestsTo(h.fake, "upload")
		if len(reqs) != 2 || len(reqs[0].Body["conversions"].([]any)) != maxBatch || len(reqs[1].Body["conversions"].([]any)) != 1 {
			t.Fatalf("%d requests", len(reqs))
		}
	})
	t.Run("datamanager destinations", func(t *testing.T) {
		h := newHarness(t, apiDataManager)
		var batch []conversion.Conversion
		for i := range 12 {
			action := fmt.Sprint(1000 + i)
			h.fake.AddCustomer(googlefake.CustomerID, action)
			cv := sample(t, fmt.Sprintf("evt_%d", i))
			cv.EventName = action
			batch = append(batch, cv)
		}
		batch = append(batch, sample(t, "evt_a"), sample(t, "evt_b")) // action 555000111
		batch[len(batch)-1].EventName = "1000"
		res := h.send(t, batch...)
		for i, r := range res {
			if r.Outcome != conversion.Sent {
				t.Fatalf("result %d: %+v", i, r)
			}
		}
		reqs := requestsTo(h.fake, "ingest")
		if len(reqs) != 2 {
			t.Fatalf("%d requests, want 2", len(reqs))
		}
		d0, e0 := len(reqs[0].Body["destinations"].([]any)), len(reqs[0].Body["events"].([]any))
		d1, e1 := len(reqs[1].Body["destinations"].([]any)), len(reqs[1].Body["events"].([]any))
		if d0 != 10 || e0 != 11 || d1 != 3 || e1 != 3 {
			t.Errorf("destinations/events %d/%d and %d/%d", d0, e0, d1, e1)
		}
		if len(h.fake.Accepted()) != len(batch) {
			t.Errorf("accepted %d", len(h.fake.Accepted()))
		}
	})
}

func TestInvalidSettingsAtSend(t *testing.T) {
	h := newHarness(t, apiAds)
	delete(h.conn.Settings, "developer_token")
	res := h.send(t, sample(t, "evt_1"))
	wantOutcomes(t, res, conversion.Permanent)
	if !strings.Contains(res[0].Message, "developer_token: is required with api=ads") {
		t.Errorf("result %+v", res[0])
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

func TestCheck(t *testing.T) {
	c := New(conversion.DefaultEndpoints, nil)
	click := now.Add(-48 * time.Hour)
	base := func() *conversion.Conversion {
		return &conversion.Conversion{EventID: "evt_1", EventName: "555000111", Time: now.Add(-time.Hour),
			Fields: event.Fields{GCLID: gclid, ClickTimestamp: click}}
	}
	cases := []struct {
		name      string
		edit      func(*conversion.Conversion)
		skip      string
		notBefore time.Time
	}{
		{"sendable", func(*conversion.Conversion) {}, "", time.Time{}},
		{"wbraid", func(c *conversion.Conversion) { c.Fields.GCLID, c.Fields.WBRAID = "", "CjgKEAiA" }, "", time.Time{}},
		{"no click timestamp", func(c *conversion.Conversion) { c.Fields.ClickTimestamp = time.Time{} }, conversion.SkipNoClickTimestamp, time.Time{}},
		{"gbraid without click timestamp", func(c *conversion.Conversion) {
			c.Fields.GCLID, c.Fields.GBRAID, c.Fields.ClickTimestamp = "", "x", time.Time{}
		}, conversion.SkipNoClickTimestamp, time.Time{}},
		{"before the click", func(c *conversion.Conversion) { c.Time = click.Add(-conversion.ClickClockSkew - time.Second) }, SkipConversionBeforeClick, time.Time{}},
		{"a visitor's clock ahead of ours", func(c *conversion.Conversion) { c.Time = click.Add(-3 * time.Hour) }, "", time.Time{}},
		{"at the click", func(c *conversion.Conversion) { c.Time = click }, "", time.Time{}},
		{"91 days after the click", func(c *conversion.Conversion) {
			c.Fields.ClickTimestamp = now.Add(-100 * 24 * time.Hour)
			c.Time = c.Fields.ClickTimestamp.Add(91 * 24 * time.Hour)
		}, conversion.SkipOutsideWindow, time.Time{}},
		{"click 91 days old", func(c *conversion.Conversion) {
			c.Fields.ClickTimestamp = now.Add(-91 * 24 * time.Hour)
			c.Time = c.Fields.ClickTimestamp.Add(time.Hour)
		}, conversion.SkipOutsideWindow, time.Time{}},
		{"click 2 hours old", func(c *conversion.Conversion) {
			c.Fields.ClickTimestamp = now.Add(-2 * time.Hour)
			c.Time = now.Add(-time.Hour)
		}, "", now.Add(4 * time.Hour)},
		{"conversion in the future", func(c *conversion.Conversion) { c.Time = now.Add(3 * time.Hour) }, "", now.Add(3 * time.Hour)},
		{"email only", func(c *conversion.Conversion) {
			c.Fields = event.Fields{EmailGoogleSHA256: emailHash}
		}, "", time.Time{}},
		{"phone only, 91 days old", func(c *conversion.Conversion) {
			c.Fields = event.Fields{PhoneSHA256: phoneHash}
			c.Time = now.Add(-91 * 24 * time.Hour)
		}, conversion.SkipOutsideWindow, time.Time{}},
		{"no signal", func(c *conversion.Conversion) { c.Fields = event.Fields{FBC: "fb.1.1.x"} }, conversion.SkipNoClickID, time.Time{}},
		{"mapping not an action id", func(c *conversion.Conversion) { c.EventName = "Lead" }, SkipInvalidAction, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cv := base()
			tc.edit(cv)
			v := c.Check(cv, now)
			if v.Skip != tc.skip || !v.NotBefore.Equal(tc.notBefore) {
				t.Errorf("verdict %+v, want skip %q not before %v", v, tc.skip, tc.notBefore)
			}
			if v.Skip != "" && v.Detail == "" {
				t.Error("a skip without detail")
			}
		})
	}
}

func TestHasSignal(t *testing.T) {
	c := New(conversion.DefaultEndpoints, nil)
	for _, f := range []event.Fields{{GCLID: "a"}, {GBRAID: "a"}, {WBRAID: "a"}, {EmailGoogleSHA256: emailHash}, {PhoneSHA256: phoneHash}} {
		if !c.HasSignal(&f) {
			t.Errorf("no signal in %+v", f)
		}
	}
	for _, f := range []event.Fields{{}, {FBC: "x", TTCLID: "y", MSCLKID: "z", EmailSHA256: emailHash, PhoneMetaSHA256: phoneHash}} {
		if c.HasSignal(&f) {
			t.Errorf("a Google signal in %+v", f)
		}
	}
}

func TestSummary(t *testing.T) {
	c := New(conversion.DefaultEndpoints, nil)
	cv := sample(t, "evt_1")
	got := c.Summary(&cv)
	want := "action=555000111 id=evt_1 time=2026-11-20T10:03:11Z gclid=Cj0KCQiA… click_time=2026-11-18T09:00:00Z value=49.99 currency=USD email_sha256=d6117306… phone_sha256=36a2cef4…"
	if got != want {
		t.Errorf("summary\n got %s\nwant %s", got, want)
	}
	for _, secret := range []string{emailHash, phoneHash, gclid, googlefake.RefreshToken} {
		if strings.Contains(got, secret) {
			t.Errorf("summary holds %s", secret)
		}
	}
}

func TestValidate(t *testing.T) {
	c := New(conversion.DefaultEndpoints, nil)
	good := func() map[string]string {
		return map[string]string{"customer_id": "123-456-7890", "client_id": "x", "client_secret": "y", "refresh_token": "z"}
	}
	if err := c.Validate(good()); err != nil {
		t.Fatalf("good settings refused: %v", err)
	}
	ads := good()
	ads["api"], ads["developer_token"], ads["login_customer_id"], ads["api_version"] = "ads", "d", "9876543210", "v25"
	if err := c.Validate(ads); err != nil {
		t.Fatalf("good ads settings refused: %v", err)
	}
	cases := []struct {
		edit func(map[string]string)
		want string
	}{
		{func(m map[string]string) { delete(m, "refresh_token") }, "refresh_token: is required"},
		{func(m map[string]string) { delete(m, "customer_id") }, "customer_id: is required"},
		{func(m map[string]string) { m["customer_id"] = "12345" }, "customer_id: must be a 10-digit"},
		{func(m map[string]string) { m["login_customer_id"] = "abc" }, "login_customer_id: must be a 10-digit"},
		{func(m map[string]string) { m["api"] = "adwords" }, "api: must be datamanager or ads"},
		{func(m map[string]string) { m["api"] = "ads" }, "developer_token: is required with api=ads"},
		{func(m map[string]string) { m["api_version"] = "26" }, "api_version: must look like v26"},
		{func(m map[string]string) { m["consent_ad_user_data"] = "yes" }, "consent_ad_user_data: must be granted"},
		{func(m map[string]string) { m["refresh-token"] = "z" }, "refresh-token: is not a Google setting"},
	}
	for _, tc := range cases {
		m := good()
		tc.edit(m)
		err := c.Validate(m)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate: %v, want %q", err, tc.want)
		}
	}
	for _, k := range c.Keys() {
		if k.Doc == "" {
			t.Errorf("key %s undocumented", k.Name)
		}
		if (k.Name == "client_secret" || k.Name == "refresh_token" || k.Name == "developer_token") != k.Secret {
			t.Errorf("key %s secret=%v", k.Name, k.Secret)
		}
	}
}

func TestConcurrentSendsShareOneToken(t *testing.T) {
	h := newHarness(t, apiDataManager)
	var wg sync.WaitGroup
	for i := range 8 {
		cv := sample(t, fmt.Sprintf("evt_%d", i))
		wg.Go(func() {
			res := h.client.Send(context.Background(), h.conn, []conversion.Conversion{cv})
			if res[0].Outcome != conversion.Sent {
				t.Errorf("send %d: %+v", i, res[0])
			}
		})
	}
	wg.Wait()
	if n := h.fake.TokenRefreshes(); n != 1 {
		t.Errorf("%d token refreshes, want 1", n)
	}
}

// Each exchange is bounded by the client's own timeout, not only by the
// caller's context: the queue starts a request only with enough lease left
// for a bounded one, so a Send must never run for as long as Google keeps a
// connection open.
func TestHungCallTimesOut(t *testing.T) {
	if c := New(conversion.Endpoints{}, nil); c.Timeout != Timeout || c.hc == nil {
		t.Fatalf("New: Timeout %v, http client %v; want %v and a client", c.Timeout, c.hc, Timeout)
	}
	for _, api := range []string{apiDataManager, apiAds} {
		t.Run(api, func(t *testing.T) {
			h := newHarness(t, api)
			h.send(t, sample(t, "evt_0")) // the token first, so the hang hits the API call
			h.client.Timeout = 100 * time.Millisecond
			// The context only ends a hang should the client not; it is
			// cancelled, not timed out, so its end reads differently.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop := time.AfterFunc(20*time.Second, cancel)
			defer stop.Stop()
			h.fake.FailNext(1, googlefake.Hang)
			for i, r := range h.client.Send(ctx, h.conn, []conversion.Conversion{sample(t, "evt_1")}) {
				if r.Outcome != conversion.Transient || r.HTTPStatus != 0 || !strings.Contains(r.Message, "timed out") {
					t.Errorf("result %d: %+v", i, r)
				}
			}
		})
	}
}

func TestRotatedRefreshTokenSaved(t *testing.T) {
	h := newHarness(t, apiDataManager)
	h.fake.RotateRefreshTokens()
	var saved [][2]string
	h.conn.SaveSecret = func(_ context.Context, key, value string) error {
		saved = append(saved, [2]string{key, value})
		return nil
	}
	wantOutcomes(t, h.send(t, sample(t, "evt_1")), conversion.Sent)
	if len(saved) != 1 || saved[0][0] != "refresh_token" || !strings.HasPrefix(saved[0][1], "1//fake-rotated-") {
		t.Fatalf("saved %q, want the rotated refresh token once", saved)
	}

	// The next load has the saved token: the access token is reused.
	loaded := *h
	loaded.conn.Settings = maps.Clone(h.conn.Settings)
	loaded.conn.Settings["refresh_token"] = saved[0][1]
	wantOutcomes(t, loaded.send(t, sample(t, "evt_2")), conversion.Sent)
	if n := h.fake.TokenRefreshes(); n != 1 {
		t.Fatalf("%d token refreshes, want 1", n)
	}

	// A new process, once the first token is revoked, refreshes with the
	// saved one.
	h.fake.RevokeRefreshToken(googlefake.RefreshToken)
	loaded.client = New(h.client.endpoints, h.client.hc)
	loaded.client.now = h.client.now
	wantOutcomes(t, loaded.send(t, sample(t, "evt_3")), conversion.Sent)
	toks := requestsTo(h.fake, "token")
	if got := toks[len(toks)-1].Form.Get("refresh_token"); got != saved[0][1] {
		t.Errorf("new process refreshed with %q, want the saved %q", got, saved[0][1])
	}
}

func TestRotatedRefreshTokenUnsaved(t *testing.T) {
	h := newHarness(t, apiDataManager)
	h.fake.RotateRefreshTokens()
	var saved []string
	h.conn.SaveSecret = func(_ context.Context, _, value string) error {
		saved = append(saved, value)
		return errors.New("database is gone")
	}
	wantOutcomes(t, h.send(t, sample(t, "evt_1")), conversion.Sent)
	h.client.now = func() time.Time { return now.Add(time.Hour) }
	wantOutcomes(t, h.send(t, sample(t, "evt_2")), conversion.Sent)
	toks := requestsTo(h.fake, "token")
	if len(saved) != 2 || len(toks) != 2 {
		t.Fatalf("%d saves and %d token requests, want 2 and 2", len(saved), len(toks))
	}
	if got := toks[1].Form.Get("refresh_token"); got != saved[0] {
		t.Errorf("second refresh used %q, want the unsaved rotated %q kept in memory", got, saved[0])
	}
}
