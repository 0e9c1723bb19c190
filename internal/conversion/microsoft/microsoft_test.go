package microsoft

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/conversion/microsoft/microsoftfake"
	"github.com/pruuv/pruuv/internal/event"
)

const (
	goal      = "Offline Sale"
	click     = "cdd4afcccb1c9a4cad9544dd7e5006d5"
	emailHash = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d" // jane.doe@example.com
	phoneHash = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4" // +14155550123
)

var start = time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)

var account = microsoftfake.Account{
	CustomerID:     "1234567",
	AccountID:      "7654321",
	DeveloperToken: "dev-token-SECRET",
	ClientID:       "client-1",
	RefreshToken:   "refresh-SECRET",
}

// secrets are what no Message or Summary may contain.
var secrets = []string{account.DeveloperToken, account.RefreshToken, "client-SECRET", "fake-access-", "fake-refresh-"}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	fake *microsoftfake.Fake
	srv  *httptest.Server
	clk  *clock
	c    *Client
	conn conversion.Connection
}

func setup(t *testing.T, acct microsoftfake.Account) *env {
	t.Helper()
	clk := &clock{t: start}
	f := microsoftfake.New(acct, clk.now)
	f.AddGoal(goal, start.Add(-10*24*time.Hour))
	srv := httptest.NewServer(f)
	t.Cleanup(func() { f.Close(); srv.Close() })
	c := New(conversion.Endpoints{Microsoft: srv.URL, MicrosoftOAuth: srv.URL + "/"}, srv.Client())
	c.now = clk.now
	settings := map[string]string{
		SettingCustomerID:     acct.CustomerID,
		SettingAccountID:      acct.AccountID,
		SettingDeveloperToken: acct.DeveloperToken,
		SettingClientID:       acct.ClientID,
		SettingRefreshToken:   acct.RefreshToken,
	}
	if acct.ClientSecret != "" {
		settings[SettingClientSecret] = acct.ClientSecret
	}
	if acct.Tenant != "" {
		settings[SettingTenant] = acct.Tenant
	}
	return &env{fake: f, srv: srv, clk: clk, c: c,
		conn: conversion.Connection{ID: "conn-1", ClientID: "client-a", Platform: conversion.Microsoft, Settings: settings}}
}

// fields decodes a payload through the real decoder, so hashes come from the
// real path.
func fields(t *testing.T, body string) event.Fields {
	t.Helper()
	f, err := event.Decode([]byte(body), start)
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return f
}

const sampleBody = `{"reference":"r1","msclkid":"` + click + `","click_timestamp":"2026-11-20T10:00:00Z",
	"revenue_value":49.99,"currency":"usd","email":"  Jane.Doe@Example.com ","phone":"+1 (415) 555-0123",
	"data_timestamp":"2026-11-20T14:03:11.250+00:00"}`

func sample(t *testing.T) conversion.Conversion {
	f := fields(t, sampleBody)
	return conversion.Conversion{EventID: "ev_1", StageID: "st_won", EventName: goal,
		Time: f.DataTimestamp, ReceivedAt: start, Fields: f}
}

// withClick is a minimal conversion on another click id.
func withClick(t *testing.T, n int) conversion.Conversion {
	f := fields(t, fmt.Sprintf(`{"reference":"r%d","msclkid":"%032x"}`, n, n))
	return conversion.Conversion{EventID: fmt.Sprintf("ev_%d", n), EventName: goal, Time: start.Add(-time.Hour), ReceivedAt: start, Fields: f}
}

func noSecrets(t *testing.T, s string) {
	t.Helper()
	for _, x := range secrets {
		if strings.Contains(s, x) {
			t.Errorf("%q contains a credential (%q)", s, x)
		}
	}
}

func one(t *testing.T, rs []conversion.Result) conversion.Result {
	t.Helper()
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	noSecrets(t, rs[0].Message)
	return rs[0]
}

func TestExactRequest(t *testing.T) {
	e := setup(t, account)
	r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{sample(t)}))
	if r != (conversion.Result{Outcome: conversion.Sent, HTTPStatus: 200}) {
		t.Fatalf("result %+v", r)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	wantRaw := `{"OfflineConversions":[{"ConversionCurrencyCode":"USD","ConversionName":"Offline Sale",` +
		`"ConversionTime":"2026-11-20T14:03:11Z","ConversionValue":49.99,` +
		`"HashedEmailAddress":"` + emailHash + `","HashedPhoneNumber":"` + phoneHash + `",` +
		`"MicrosoftClickId":"` + click + `"}]}`
	if got := string(reqs[0].Raw); got != wantRaw {
		t.Errorf("body\n got %s\nwant %s", got, wantRaw)
	}
	value := 49.99
	want := microsoftfake.OfflineConversion{ConversionCurrencyCode: "USD", ConversionName: goal,
		ConversionTime: "2026-11-20T14:03:11Z", ConversionValue: &value, HashedEmailAddress: emailHash,
		HashedPhoneNumber: phoneHash, MicrosoftClickId: click}
	got := reqs[0].Body.OfflineConversions[0]
	if *got.ConversionValue != *want.ConversionValue {
		t.Errorf("value %v", *got.ConversionValue)
	}
	got.ConversionValue, want.ConversionValue = nil, nil
	if *got != want {
		t.Errorf("decoded\n got %+v\nwant %+v", *got, want)
	}
	h := reqs[0].Header
	for k, v := range map[string]string{
		"Authorization":     "Bearer fake-access-",
		"DeveloperToken":    account.DeveloperToken,
		"CustomerId":        account.CustomerID,
		"CustomerAccountId": account.AccountID,
		"Content-Type":      "application/json",
	} {
		if !strings.HasPrefix(h.Get(k), v) {
			t.Errorf("header %s = %q, want %q…", k, h.Get(k), v)
		}
	}
	toks := e.fake.TokenRequests()
	if len(toks) != 1 {
		t.Fatalf("%d token requests", len(toks))
	}
	wantForm := map[string]string{"grant_type": "refresh_token", "client_id": account.ClientID,
		"refresh_token": account.RefreshToken, "scope": "https://ads.microsoft.com/msads.manage offline_access"}
	for k, v := range wantForm {
		if got := toks[0][k]; len(got) != 1 || got[0] != v {
			t.Errorf("token form %s = %v, want %q", k, got, v)
		}
	}
	if _, ok := toks[0]["client_secret"]; ok || len(toks[0]) != len(wantForm) {
		t.Errorf("token form %v has extra fields", toks[0])
	}
	if n := len(e.fake.Accepted()); n != 1 {
		t.Errorf("%d accepted", n)
	}
}

func TestOptionalFieldsOmitted(t *testing.T) {
	e := setup(t, account)
	cv := withClick(t, 1)
	cv.Fields.Currency = "EUR" // a currency without a value is not sent
	one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{cv}))
	want := fmt.Sprintf(`{"OfflineConversions":[{"ConversionName":"Offline Sale","ConversionTime":"2026-11-20T14:00:00Z","MicrosoftClickId":"%032x"}]}`, 1)
	if got := string(e.fake.Requests()[0].Raw); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestGoalName(t *testing.T) {
	e := setup(t, account)
	e.fake.AddGoal("Default Goal", start.Add(-24*time.Hour))
	e.conn.Settings[SettingGoal] = "Default Goal"
	mapped, unmapped := withClick(t, 1), withClick(t, 2)
	unmapped.EventName = ""
	rs := e.c.Send(context.Background(), e.conn, []conversion.Conversion{mapped, unmapped})
	if rs[0].Outcome != conversion.Sent || rs[1].Outcome != conversion.Sent {
		t.Fatalf("%+v", rs)
	}
	got := e.fake.Requests()[0].Body.OfflineConversions
	if got[0].ConversionName != goal || got[1].ConversionName != "Default Goal" {
		t.Errorf("names %q %q: the stage mapping wins, the setting fills in", got[0].ConversionName, got[1].ConversionName)
	}

	delete(e.conn.Settings, SettingGoal)
	rs = e.c.Send(context.Background(), e.conn, []conversion.Conversion{unmapped})
	if r := one(t, rs); r.Outcome != conversion.Permanent || !strings.Contains(r.Message, "no conversion goal") {
		t.Fatalf("%+v", r)
	}
	if n := len(e.fake.Requests()); n != 1 {
		t.Errorf("%d requests: a conversion without a goal must not be sent", n)
	}
}

func TestTokenCachedUntilNearExpiry(t *testing.T) {
	e := setup(t, account)
	send := func() {
		t.Helper()
		if r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, len(e.fake.Requests())+1)})); r.Outcome != conversion.Sent {
			t.Fatalf("%+v", r)
		}
	}
	send()
	send()
	if n := len(e.fake.TokenRequests()); n != 1 {
		t.Fatalf("%d token requests for two sends, want 1", n)
	}
	e.clk.add(54 * time.Minute) // 6 minutes left of the hour: still used
	send()
	if n := len(e.fake.TokenRequests()); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	e.clk.add(2 * time.Minute) // under 5 minutes left: refreshed first
	send()
	toks := e.fake.TokenRequests()
	if len(toks) != 2 {
		t.Fatalf("%d token requests, want 2", len(toks))
	}
	if rt := toks[1]["refresh_token"][0]; !strings.HasPrefix(rt, "fake-refresh-") {
		t.Errorf("second refresh used %q, want the rotated refresh token", rt)
	}
	for _, r := range e.fake.Requests() {
		if r.Header.Get("Authorization") == "" {
			t.Fatal("request without a token")
		}
	}

	// Another connection, or new credentials on this one, get a token of
	// their own.
	other := e.conn
	other.ID = "conn-2"
	one(t, e.c.Send(context.Background(), other, []conversion.Conversion{withClick(t, 99)}))
	if n := len(e.fake.TokenRequests()); n != 3 {
		t.Fatalf("%d token requests, want 3", n)
	}
}

func TestConfidentialClientAndTenant(t *testing.T) {
	acct := account
	acct.ClientSecret = "client-SECRET"
	acct.Tenant = "contoso.onmicrosoft.com"
	e := setup(t, acct)
	if r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{sample(t)})); r.Outcome != conversion.Sent {
		t.Fatalf("%+v", r)
	}
	if got := e.fake.TokenRequests()[0]["client_secret"]; len(got) != 1 || got[0] != acct.ClientSecret {
		t.Errorf("client_secret %v", got)
	}
}

func TestExpiredTokenRefreshedOnce(t *testing.T) {
	for _, how := range []string{"ExpireAccessTokens", "TokenExpired"} {
		t.Run(how, func(t *testing.T) {
			e := setup(t, account)
			one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 1)}))
			if how == "ExpireAccessTokens" {
				e.fake.ExpireAccessTokens()
			} else {
				e.fake.FailNext(1, microsoftfake.TokenExpired)
			}
			r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 2)}))
			if r.Outcome != conversion.Sent {
				t.Fatalf("%+v", r)
			}
			if a, tk := len(e.fake.Requests()), len(e.fake.TokenRequests()); a != 3 || tk != 2 {
				t.Fatalf("%d API and %d token requests, want 3 and 2", a, tk)
			}
			reqs := e.fake.Requests()
			if reqs[1].Header.Get("Authorization") == reqs[2].Header.Get("Authorization") {
				t.Error("retried with the refused token")
			}
		})
	}
}

func TestAuthFailureRetriedOnlyOnce(t *testing.T) {
	e := setup(t, account)
	e.fake.FailNext(5, microsoftfake.InvalidCredentials)
	r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 1)}))
	if r.Outcome != conversion.Permanent || r.HTTPStatus != 401 || !strings.Contains(r.Message, "105 InvalidCredentials") ||
		!strings.Contains(r.Message, "TrackingId fake-") {
		t.Fatalf("%+v", r)
	}
	if a, tk := len(e.fake.Requests()), len(e.fake.TokenRequests()); a != 2 || tk != 2 {
		t.Fatalf("%d API and %d token requests, want 2 and 2", a, tk)
	}
}

func TestInvalidGrant(t *testing.T) {
	e := setup(t, account)
	e.fake.RevokeRefreshTokens()
	batch := []conversion.Conversion{withClick(t, 1), withClick(t, 2)}
	rs := e.c.Send(context.Background(), e.conn, batch)
	for _, r := range rs {
		noSecrets(t, r.Message)
		if r.Outcome != conversion.Permanent || r.HTTPStatus != 400 || !strings.Contains(r.Message, "invalid_grant") ||
			!strings.Contains(r.Message, "reconnect") || strings.Contains(r.Message, "Trace ID") {
			t.Fatalf("%+v", r)
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("%d API requests without a token", n)
	}
}

func TestInvalidGrantAfterRotationFallsBack(t *testing.T) {
	e := setup(t, account)
	one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 1)}))
	e.clk.add(time.Hour)
	e.fake.FailNext(1, microsoftfake.InvalidGrant)
	if r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 2)})); r.Outcome != conversion.Permanent {
		t.Fatalf("%+v", r)
	}
	// The next run starts again from the settings' refresh token.
	if r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 3)})); r.Outcome != conversion.Sent {
		t.Fatalf("%+v", r)
	}
	toks := e.fake.TokenRequests()
	if got := toks[len(toks)-1]["refresh_token"][0]; got != account.RefreshToken {
		t.Errorf("after invalid_grant refreshed with %q, want the settings' token", got)
	}
}

func TestTokenEndpointUnavailable(t *testing.T) {
	e := setup(t, account)
	e.fake.FailNext(1, microsoftfake.TokenUnavailable)
	r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 1)}))
	if r.Outcome != conversion.Transient || r.HTTPStatus != 503 {
		t.Fatalf("%+v", r)
	}
}

func TestBatching(t *testing.T) {
	e := setup(t, account)
	if e.c.MaxBatch() != 1000 {
		t.Fatalf("MaxBatch %d", e.c.MaxBatch())
	}
	batch := make([]conversion.Conversion, 1001)
	for i := range batch {
		batch[i] = withClick(t, i+1)
	}
	rs := e.c.Send(context.Background(), e.conn, batch[:1000])
	reqs := e.fake.Requests()
	if len(reqs) != 1 || len(reqs[0].Body.OfflineConversions) != 1000 {
		t.Fatalf("1000 conversions took %d requests", len(reqs))
	}
	for i, r := range rs {
		if r.Outcome != conversion.Sent {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	// More than the contract allows is still split, never refused (5601).
	rs = e.c.Send(context.Background(), e.conn, batch)
	reqs = e.fake.Requests()[1:]
	if len(rs) != 1001 || len(reqs) != 2 || len(reqs[0].Body.OfflineConversions) != 1000 || len(reqs[1].Body.OfflineConversions) != 1 {
		t.Fatalf("%d results, %d requests", len(rs), len(reqs))
	}
	for i, r := range rs {
		if r.Outcome != conversion.Sent {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if n := len(e.fake.Accepted()); n != 1001 {
		t.Errorf("%d accepted: resent ones are deduplicated", n)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*env)
		want   conversion.Result
		inMsg  string
		tokens int // token requests
		calls  int // API requests
	}{
		{"500", func(e *env) { e.fake.FailNext(1, microsoftfake.ServerError) },
			conversion.Result{Outcome: conversion.Transient, HTTPStatus: 500}, "0 InternalError", 1, 1},
		{"503 html", func(e *env) { e.fake.FailNext(1, microsoftfake.Unavailable) },
			conversion.Result{Outcome: conversion.Transient, HTTPStatus: 503}, "Service Unavailable", 1, 1},
		{"429 Retry-After", func(e *env) { e.fake.FailNext(1, microsoftfake.TooManyRequests) },
			conversion.Result{Outcome: conversion.Transient, HTTPStatus: 429, RetryAfter: 30 * time.Second}, "117 CallRateExceeded", 1, 1},
		{"117 without Retry-After", func(e *env) { e.fake.FailNext(1, microsoftfake.CallRateExceeded) },
			conversion.Result{Outcome: conversion.Transient, HTTPStatus: 400, RetryAfter: time.Minute}, "117 CallRateExceeded", 1, 1},
		{"hang", func(e *env) { e.fake.FailNext(1, microsoftfake.Hang); e.c.timeout = 100 * time.Millisecond },
			conversion.Result{Outcome: conversion.Transient}, "timed out", 1, 1},
		{"not JSON", func(e *env) { e.fake.FailNext(1, microsoftfake.Garbage) },
			conversion.Result{Outcome: conversion.Transient, HTTPStatus: 200}, "answered 200", 1, 1},
		{"wrong developer token", func(e *env) { e.conn.Settings[SettingDeveloperToken] = "dev-token-SECRET-old" },
			conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 401}, "105 InvalidCredentials", 2, 2},
		{"other customer", func(e *env) { e.conn.Settings[SettingCustomerID] = "999" },
			conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 403}, "106 UserIsNotAuthorized", 1, 1},
		{"other account", func(e *env) { e.conn.Settings[SettingAccountID] = "999" },
			conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 400}, "1102 CampaignServiceInvalidAccountId", 1, 1},
		{"bad settings", func(e *env) { e.conn.Settings[SettingAccountID] = "A-1" },
			conversion.Result{Outcome: conversion.Permanent}, "account_id must be digits", 0, 0},
		{"wrong client id", func(e *env) { e.conn.Settings[SettingClientID] = "other" },
			conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 400}, "unauthorized_client", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, account)
			tt.setup(e)
			rs := e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 1), withClick(t, 2)})
			for _, r := range rs {
				noSecrets(t, r.Message)
				msg := r.Message
				r.Message = ""
				if r != tt.want || !strings.Contains(msg, tt.inMsg) {
					t.Fatalf("got %+v %q, want %+v with %q", r, msg, tt.want, tt.inMsg)
				}
			}
			if a, tk := len(e.fake.Requests()), len(e.fake.TokenRequests()); a != tt.calls || tk != tt.tokens {
				t.Errorf("%d API and %d token requests, want %d and %d", a, tk, tt.calls, tt.tokens)
			}
			if n := len(e.fake.Accepted()); n != 0 {
				t.Errorf("%d accepted", n)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	e := setup(t, account)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := one(t, e.c.Send(ctx, e.conn, []conversion.Conversion{withClick(t, 1)}))
	if r.Outcome != conversion.Transient || r.HTTPStatus != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestPartialErrorsByIndex(t *testing.T) {
	e := setup(t, account)
	e.fake.AddGoal("Young", start.Add(-time.Hour))
	noGoal := withClick(t, 1)
	noGoal.EventName = ""
	refused := withClick(t, 3)
	young := withClick(t, 4)
	young.EventName = "Young"
	flaky := withClick(t, 5)
	e.fake.SetPartial(refused.Fields.MSCLKID, 5616)
	e.fake.SetPartial(flaky.Fields.MSCLKID, 5612)
	batch := []conversion.Conversion{noGoal, withClick(t, 2), refused, young, flaky, withClick(t, 6)}
	rs := e.c.Send(context.Background(), e.conn, batch)
	want := []struct {
		out   conversion.Outcome
		wait  time.Duration
		inMsg string
	}{
		{conversion.Permanent, 0, "no conversion goal"},
		{conversion.Sent, 0, ""},
		{conversion.Permanent, 0, "5616 ConversionTimeEarlierThanClickTime"},
		{conversion.Transient, 2 * time.Hour, "5615 OfflineConversionNotAcceptedForGoal"},
		{conversion.Transient, 0, "5612 OfflineConversionsApplyFailed"},
		{conversion.Sent, 0, ""},
	}
	if len(rs) != len(want) {
		t.Fatalf("%d results", len(rs))
	}
	for i, w := range want {
		r := rs[i]
		noSecrets(t, r.Message)
		if r.Outcome != w.out || r.RetryAfter != w.wait || !strings.Contains(r.Message, w.inMsg) {
			t.Errorf("result %d: %+v, want %v %v %q", i, r, w.out, w.wait, w.inMsg)
		}
		if i > 0 && r.HTTPStatus != 200 {
			t.Errorf("result %d: HTTPStatus %d", i, r.HTTPStatus)
		}
	}
	if n := len(e.fake.Requests()[0].Body.OfflineConversions); n != 5 {
		t.Errorf("%d conversions on the wire, want 5", n)
	}
	if n := len(e.fake.Accepted()); n != 2 {
		t.Errorf("%d accepted", n)
	}
}

// A fault naming items (BatchErrors) refuses the call because of them: they
// get the verdict, the others go again.
func TestBatchErrorsFault(t *testing.T) {
	c := New(conversion.Endpoints{}, nil)
	ans := &applyResponse{TrackingId: "t-1", Type: "ApiFaultDetail",
		BatchErrors: []BatchError{{Code: 5604, ErrorCode: "OfflineConversionMicrosoftClickIdInvalid", Index: 1}, {Code: 117, Index: 7}}}
	rs := c.judge(400, http.Header{}, ans, 3)
	if rs[0].Outcome != conversion.Transient || rs[2].Outcome != conversion.Transient ||
		rs[1].Outcome != conversion.Permanent || !strings.Contains(rs[1].Message, "5604") || !strings.Contains(rs[1].Message, "t-1") {
		t.Fatalf("%+v", rs)
	}
}

func TestCheck(t *testing.T) {
	c := New(conversion.Endpoints{}, nil)
	now := start
	tests := []struct {
		name      string
		body      string
		at        time.Time
		skip      string
		notBefore time.Time
	}{
		{"ok", `{"reference":"r","msclkid":"` + click + `","click_timestamp":"2026-11-20T10:00:00Z"}`, start.Add(-time.Hour), "", time.Time{}},
		{"no click time is sent", `{"reference":"r","msclkid":"` + click + `"}`, start.Add(-time.Hour), "", time.Time{}},
		{"no msclkid", `{"reference":"r","gclid":"abc","email":"jane.doe@example.com"}`, start.Add(-time.Hour), conversion.SkipNoClickID, time.Time{}},
		{"90 days old", `{"reference":"r","msclkid":"` + click + `"}`, start.Add(-ConversionWindow), "", time.Time{}},
		{"older than 90 days", `{"reference":"r","msclkid":"` + click + `"}`, start.Add(-ConversionWindow - time.Second), conversion.SkipOutsideWindow, time.Time{}},
		{"before the click", `{"reference":"r","msclkid":"` + click + `","click_timestamp":"2026-11-20T10:00:00Z"}`,
			time.Date(2026, 11, 19, 9, 59, 59, 0, time.UTC), SkipBeforeClick, time.Time{}},
		{"a visitor's clock ahead of ours", `{"reference":"r","msclkid":"` + click + `","click_timestamp":"2026-11-20T10:00:00Z"}`,
			time.Date(2026, 11, 20, 7, 0, 0, 0, time.UTC), "", time.Time{}},
		{"more than 90 days after the click", `{"reference":"r","msclkid":"` + click + `","click_timestamp":"2026-08-21T10:00:00Z"}`,
			time.Date(2026, 11, 19, 10, 0, 1, 0, time.UTC), conversion.SkipOutsideWindow, time.Time{}},
		{"in the future waits", `{"reference":"r","msclkid":"` + click + `"}`, start.Add(10 * time.Minute), "", start.Add(10*time.Minute + time.Second)},
		{"fresh click waits an hour", `{"reference":"r","msclkid":"` + click + `","click_timestamp":"2026-11-20T14:30:00Z"}`,
			start.Add(-10 * time.Minute), "", time.Date(2026, 11, 20, 15, 30, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fields(t, tt.body)
			cv := conversion.Conversion{EventName: goal, Time: tt.at, Fields: f}
			v := c.Check(&cv, now)
			if v.Skip != tt.skip || !v.NotBefore.Equal(tt.notBefore) {
				t.Fatalf("%+v, want skip %q notBefore %v", v, tt.skip, tt.notBefore)
			}
			if (v.Skip != "") != (v.Detail != "") {
				t.Errorf("detail %q for skip %q", v.Detail, v.Skip)
			}
			if got, want := c.HasSignal(&f), f.MSCLKID != ""; got != want {
				t.Errorf("HasSignal %v", got)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	c := New(conversion.Endpoints{}, nil)
	cv := sample(t)
	s := c.Summary(&cv)
	want := `ConversionName="Offline Sale" MicrosoftClickId=cdd4afcc… ConversionTime=2026-11-20T14:03:11Z ` +
		`ConversionValue=49.99 ConversionCurrencyCode=USD HashedEmailAddress=86e0b9e5 HashedPhoneNumber=36a2cef4`
	if s != want {
		t.Errorf("summary\n got %s\nwant %s", s, want)
	}
	for _, x := range []string{click, emailHash, phoneHash, "jane"} {
		if strings.Contains(s, x) {
			t.Errorf("summary leaks %q", x)
		}
	}
	bare := withClick(t, 1)
	bare.EventName = ""
	if s := c.Summary(&bare); s != `ConversionName="(connection default)" MicrosoftClickId=00000000… ConversionTime=2026-11-20T14:00:00Z` {
		t.Errorf("summary %s", s)
	}
}

func TestValidate(t *testing.T) {
	c := New(conversion.Endpoints{}, nil)
	good := func() map[string]string {
		return map[string]string{SettingCustomerID: "123", SettingAccountID: "456", SettingDeveloperToken: "d",
			SettingClientID: "c", SettingRefreshToken: "r"}
	}
	tests := []struct {
		name string
		edit func(map[string]string)
		err  string
	}{
		{"minimal", func(map[string]string) {}, ""},
		{"everything", func(s map[string]string) {
			s[SettingClientSecret] = "x"
			s[SettingTenant] = "72f988bf-86f1-41af-91ab-2d7cd011db47"
			s[SettingGoal] = "Offline Sale"
		}, ""},
		{"no customer", func(s map[string]string) { delete(s, SettingCustomerID) }, "customer_id is required"},
		{"no account", func(s map[string]string) { s[SettingAccountID] = " " }, "account_id is required"},
		{"no developer token", func(s map[string]string) { delete(s, SettingDeveloperToken) }, "developer_token is required"},
		{"no client id", func(s map[string]string) { delete(s, SettingClientID) }, "client_id is required"},
		{"no refresh token", func(s map[string]string) { delete(s, SettingRefreshToken) }, "refresh_token is required"},
		{"customer not digits", func(s map[string]string) { s[SettingCustomerID] = "C123" }, "customer_id must be digits"},
		{"account with dashes", func(s map[string]string) { s[SettingAccountID] = "1-2" }, "account_id must be digits"},
		{"tenant with a slash", func(s map[string]string) { s[SettingTenant] = "common/../x" }, "tenant must be"},
		{"long goal", func(s map[string]string) { s[SettingGoal] = strings.Repeat("g", 101) }, "conversion_goal must be at most 100"},
		{"unknown key", func(s map[string]string) { s["acount_id"] = "1" }, "acount_id is not a Microsoft setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.edit(s)
			err := c.Validate(s)
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if err != nil {
				for _, v := range s {
					if len(v) > 3 && strings.Contains(err.Error(), v) {
						t.Errorf("error quotes a setting value: %v", err)
					}
				}
			}
		})
	}
}

func TestKeys(t *testing.T) {
	c := New(conversion.Endpoints{}, nil)
	if c.Platform() != conversion.Microsoft {
		t.Fatal(c.Platform())
	}
	secret := map[string]bool{}
	for _, k := range c.Keys() {
		secret[k.Name] = k.Secret
		if k.Doc == "" {
			t.Errorf("%s has no doc", k.Name)
		}
	}
	for _, name := range []string{SettingDeveloperToken, SettingClientSecret, SettingRefreshToken} {
		if !secret[name] {
			t.Errorf("%s is not marked secret", name)
		}
	}
	if secret[SettingCustomerID] || secret[SettingGoal] {
		t.Error("ids marked secret")
	}
	if c.MinInterval() <= 0 {
		t.Error("MinInterval")
	}
}

func TestSendIgnoresUnknownSettings(t *testing.T) {
	e := setup(t, account)
	e.conn.Settings["note"] = "added by a later version"
	if r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 1)})); r.Outcome != conversion.Sent {
		t.Fatalf("%+v", r)
	}
}

func TestConcurrentSendsRefreshOnce(t *testing.T) {
	e := setup(t, account)
	var wg sync.WaitGroup
	results := make([]conversion.Result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, i+1)})[0]
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Outcome != conversion.Sent {
			t.Errorf("send %d: %+v", i, r)
		}
	}
	if n := len(e.fake.TokenRequests()); n != 1 {
		t.Errorf("%d token requests for concurrent sends on one connection, want 1", n)
	}
}

func TestNewCredentialsDropTheOldToken(t *testing.T) {
	e := setup(t, account)
	one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 1)}))
	e.conn.Settings[SettingClientID] = "client-2"
	one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 2)}))
	if n := len(e.fake.TokenRequests()); n != 2 {
		t.Errorf("%d token requests, want 2: new credentials need a token of their own", n)
	}
	if n := len(e.c.tokens); n != 1 {
		t.Errorf("%d cached slots, want 1", n)
	}
}

// saver records what a client saves through Connection.SaveSecret and
// answers err.
type saver struct {
	mu    sync.Mutex
	saved [][2]string
	err   error
}

func (s *saver) save(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saved = append(s.saved, [2]string{key, value})
	return s.err
}

func (s *saver) all() [][2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][2]string(nil), s.saved...)
}

func TestRotatedRefreshTokenSaved(t *testing.T) {
	e := setup(t, account)
	sv := &saver{}
	e.conn.SaveSecret = sv.save
	if r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 1)})); r.Outcome != conversion.Sent {
		t.Fatalf("%+v", r)
	}
	saved := sv.all()
	if len(saved) != 1 || saved[0][0] != SettingRefreshToken || !strings.HasPrefix(saved[0][1], "fake-refresh-") {
		t.Fatalf("saved %q, want the rotated refresh token once", saved)
	}
	rotated := saved[0][1]

	// The next run loads the connection with the saved token: the cached
	// access token still serves it.
	loaded := e.conn
	loaded.Settings = maps.Clone(e.conn.Settings)
	loaded.Settings[SettingRefreshToken] = rotated
	if r := one(t, e.c.Send(context.Background(), loaded, []conversion.Conversion{withClick(t, 2)})); r.Outcome != conversion.Sent {
		t.Fatalf("%+v", r)
	}
	if n := len(e.fake.TokenRequests()); n != 1 {
		t.Errorf("%d token requests, want 1: the saved token's connection reuses the access token", n)
	}
	if len(sv.all()) != 1 {
		t.Errorf("saved %q without a refresh", sv.all())
	}

	// A new process, after the grant's first refresh token has expired,
	// starts from the saved one.
	e.fake.RevokeRefreshToken(account.RefreshToken)
	fresh := New(conversion.Endpoints{Microsoft: e.srv.URL, MicrosoftOAuth: e.srv.URL + "/"}, e.srv.Client())
	fresh.now = e.clk.now
	sv2 := &saver{}
	loaded.SaveSecret = sv2.save
	if r := one(t, fresh.Send(context.Background(), loaded, []conversion.Conversion{withClick(t, 3)})); r.Outcome != conversion.Sent {
		t.Fatalf("%+v", r)
	}
	toks := e.fake.TokenRequests()
	if got := toks[len(toks)-1]["refresh_token"][0]; got != rotated {
		t.Errorf("new process refreshed with %q, want the saved %q", got, rotated)
	}
	if s := sv2.all(); len(s) != 1 || s[0][1] == rotated || !strings.HasPrefix(s[0][1], "fake-refresh-") {
		t.Errorf("new process saved %q, want the next rotation", s)
	}
	if n := len(fresh.tokens); n != 2 {
		t.Errorf("%d cached slots, want 2 (as loaded, as saved)", n)
	}
}

func TestRotatedRefreshTokenUnsaved(t *testing.T) {
	e := setup(t, account)
	sv := &saver{err: errors.New("database is gone")}
	e.conn.SaveSecret = sv.save
	if r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 1)})); r.Outcome != conversion.Sent {
		t.Fatalf("a failed save failed the send: %+v", r)
	}
	e.clk.add(time.Hour)
	if r := one(t, e.c.Send(context.Background(), e.conn, []conversion.Conversion{withClick(t, 2)})); r.Outcome != conversion.Sent {
		t.Fatalf("%+v", r)
	}
	saved, toks := sv.all(), e.fake.TokenRequests()
	if len(saved) != 2 || len(toks) != 2 {
		t.Fatalf("%d saves and %d token requests, want 2 and 2", len(saved), len(toks))
	}
	if got := toks[1]["refresh_token"][0]; got != saved[0][1] {
		t.Errorf("second refresh used %q, want the unsaved rotated %q kept in memory", got, saved[0][1])
	}
}
