package microsoftfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion/microsoft/microsoftfake"
)

var acct = microsoftfake.Account{
	CustomerID:     "1234567",
	AccountID:      "7654321",
	DeveloperToken: "dev-token",
	ClientID:       "client-1",
	RefreshToken:   "refresh-0",
}

const (
	goal  = "Offline Sale"
	click = "cdd4afcccb1c9a4cad9544dd7e5006d5"
)

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
	f     *microsoftfake.Fake
	srv   *httptest.Server
	clk   *clock
	token string
}

func setup(t *testing.T, a microsoftfake.Account) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)}
	f := microsoftfake.New(a, clk.now)
	f.AddGoal(goal, clk.now().Add(-10*24*time.Hour))
	srv := httptest.NewServer(f)
	t.Cleanup(func() { f.Close(); srv.Close() })
	return &env{f: f, srv: srv, clk: clk}
}

// login gets an access token the normal way.
func (e *env) login(t *testing.T) {
	t.Helper()
	status, body := e.tokenCall(t, "common", url.Values{
		"grant_type": {"refresh_token"}, "client_id": {acct.ClientID},
		"refresh_token": {acct.RefreshToken}, "scope": {"https://ads.microsoft.com/msads.manage offline_access"},
	})
	if status != 200 {
		t.Fatalf("token: %d %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token body %s: %v", body, err)
	}
	e.token = tok.AccessToken
}

func (e *env) tokenCall(t *testing.T, tenant string, form url.Values) (int, []byte) {
	t.Helper()
	resp, err := http.Post(e.srv.URL+"/"+tenant+"/oauth2/v2.0/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) headers() http.Header {
	return http.Header{
		"Authorization":     {"Bearer " + e.token},
		"Developertoken":    {acct.DeveloperToken},
		"Customerid":        {acct.CustomerID},
		"Customeraccountid": {acct.AccountID},
		"Content-Type":      {"application/json"},
	}
}

func (e *env) apply(t *testing.T, h http.Header, body any) (int, http.Header, map[string]any) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+microsoftfake.APIPath, bytes.NewReader(raw))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, resp.Header, out
}

func conv() map[string]any {
	return map[string]any{
		"ConversionName":   goal,
		"ConversionTime":   "2026-11-20T14:03:11Z",
		"MicrosoftClickId": click,
	}
}

func one(c map[string]any) map[string]any { return map[string]any{"OfflineConversions": []any{c}} }

// codes lists the Code of every entry of a list field of a fault or answer.
func codes(t *testing.T, out map[string]any, field string) []int {
	t.Helper()
	list, _ := out[field].([]any)
	var cs []int
	for _, x := range list {
		m := x.(map[string]any)
		cs = append(cs, int(m["Code"].(float64)))
	}
	return cs
}

func TestTokenEndpointRefusals(t *testing.T) {
	confidential := acct
	confidential.ClientSecret = "s3cret"
	good := func() url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "client_id": {acct.ClientID},
			"refresh_token": {acct.RefreshToken}, "scope": {"https://ads.microsoft.com/msads.manage offline_access"}}
	}
	tests := []struct {
		name   string
		acct   microsoftfake.Account
		tenant string
		edit   func(url.Values)
		status int
		error  string
	}{
		{"ok", acct, "common", func(url.Values) {}, 200, ""},
		{"unknown tenant", acct, "contoso", func(url.Values) {}, 400, "invalid_request"},
		{"wrong grant type", acct, "common", func(v url.Values) { v.Set("grant_type", "password") }, 400, "unsupported_grant_type"},
		{"unknown client", acct, "common", func(v url.Values) { v.Set("client_id", "other") }, 400, "unauthorized_client"},
		{"public client sends a secret", acct, "common", func(v url.Values) { v.Set("client_secret", "x") }, 400, "invalid_request"},
		{"confidential client without secret", confidential, "common", func(url.Values) {}, 401, "invalid_client"},
		{"confidential client wrong secret", confidential, "common", func(v url.Values) { v.Set("client_secret", "nope") }, 401, "invalid_client"},
		{"confidential client ok", confidential, "common", func(v url.Values) { v.Set("client_secret", "s3cret") }, 200, ""},
		{"no ads scope", acct, "common", func(v url.Values) { v.Set("scope", "offline_access") }, 400, "invalid_scope"},
		{"unknown refresh token", acct, "common", func(v url.Values) { v.Set("refresh_token", "forged") }, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, tt.acct)
			form := good()
			tt.edit(form)
			status, body := e.tokenCall(t, tt.tenant, form)
			var got struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if status != tt.status || got.Error != tt.error {
				t.Fatalf("got %d %q, want %d %q (%s)", status, got.Error, tt.status, tt.error, body)
			}
			if tt.error != "" && !strings.HasPrefix(got.Description, "AADSTS") {
				t.Errorf("description %q lacks an AADSTS code", got.Description)
			}
			if tt.error == "" && got.AccessToken == "" {
				t.Errorf("no access token in %s", body)
			}
			if n := len(e.f.TokenRequests()); n != 1 {
				t.Errorf("recorded %d token requests, want 1", n)
			}
		})
	}
}

func TestTokenRotationAndRevocation(t *testing.T) {
	e := setup(t, acct)
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {acct.ClientID},
		"refresh_token": {acct.RefreshToken}, "scope": {"https://ads.microsoft.com/msads.manage offline_access"}}
	_, body := e.tokenCall(t, "common", form)
	var tok struct {
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
	}
	_ = json.Unmarshal(body, &tok)
	if tok.RefreshToken == "" || tok.RefreshToken == acct.RefreshToken || tok.ExpiresIn != 3600 {
		t.Fatalf("want a new refresh token and expires_in 3600: %s", body)
	}
	rotated := url.Values{}
	for k, v := range form {
		rotated[k] = v
	}
	rotated.Set("refresh_token", tok.RefreshToken)
	for _, f := range []url.Values{form, rotated} {
		if status, b := e.tokenCall(t, "common", f); status != 200 {
			t.Fatalf("old and new refresh tokens both work: %d %s", status, b)
		}
	}
	noOffline := url.Values{}
	for k, v := range form {
		noOffline[k] = v
	}
	noOffline.Set("scope", microsoftfake.Scope)
	if _, b := e.tokenCall(t, "common", noOffline); strings.Contains(string(b), "refresh_token") {
		t.Errorf("refresh token issued without offline_access: %s", b)
	}
	e.f.FailNext(1, microsoftfake.InvalidGrant)
	if status, b := e.tokenCall(t, "common", form); status != 400 || !strings.Contains(string(b), `"invalid_grant"`) {
		t.Fatalf("injected invalid_grant: %d %s", status, b)
	}
	e.f.FailNext(1, microsoftfake.TokenUnavailable)
	if status, _ := e.tokenCall(t, "common", form); status != 503 {
		t.Fatalf("injected 503: %d", status)
	}
	e.f.RevokeRefreshTokens()
	for _, f := range []url.Values{form, rotated} {
		if status, b := e.tokenCall(t, "common", f); status != 400 || !strings.Contains(string(b), `"invalid_grant"`) {
			t.Fatalf("revoked: %d %s", status, b)
		}
	}
}

func TestApplyAuthentication(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*env, http.Header)
		status int
		field  string
		code   int
	}{
		{"no token", func(_ *env, h http.Header) { h.Del("Authorization") }, 401, "Errors", 105},
		{"not bearer", func(e *env, h http.Header) { h.Set("Authorization", "Basic "+e.token) }, 401, "Errors", 105},
		{"unknown token", func(_ *env, h http.Header) { h.Set("Authorization", "Bearer forged") }, 401, "Errors", 105},
		{"expired token", func(e *env, _ http.Header) { e.clk.add(microsoftfake.DefaultLife) }, 401, "Errors", 109},
		{"expired by ExpireAccessTokens", func(e *env, _ http.Header) { e.f.ExpireAccessTokens() }, 401, "Errors", 109},
		{"wrong developer token", func(_ *env, h http.Header) { h.Set("DeveloperToken", "other") }, 401, "Errors", 105},
		{"no developer token", func(_ *env, h http.Header) { h.Del("DeveloperToken") }, 401, "Errors", 105},
		{"other customer", func(_ *env, h http.Header) { h.Set("CustomerId", "999") }, 403, "Errors", 106},
		{"customer not digits", func(_ *env, h http.Header) { h.Set("CustomerId", "12a") }, 403, "Errors", 106},
		{"other account", func(_ *env, h http.Header) { h.Set("CustomerAccountId", "999") }, 400, "OperationErrors", 1102},
		{"no account", func(_ *env, h http.Header) { h.Del("CustomerAccountId") }, 400, "OperationErrors", 1102},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, acct)
			e.login(t)
			h := e.headers()
			tt.edit(e, h)
			status, hdr, out := e.apply(t, h, one(conv()))
			if status != tt.status {
				t.Fatalf("status %d, want %d: %v", status, tt.status, out)
			}
			if got := codes(t, out, tt.field); len(got) != 1 || got[0] != tt.code {
				t.Fatalf("%s codes %v, want [%d]: %v", tt.field, got, tt.code, out)
			}
			if out["TrackingId"] == nil || hdr.Get("TrackingId") == "" {
				t.Errorf("no TrackingId: %v", out)
			}
			if n := len(e.f.Accepted()); n != 0 {
				t.Errorf("%d conversions applied despite the fault", n)
			}
		})
	}
	t.Run("AuthenticationToken header", func(t *testing.T) {
		e := setup(t, acct)
		e.login(t)
		h := e.headers()
		h.Del("Authorization")
		h.Set("AuthenticationToken", e.token)
		if status, _, out := e.apply(t, h, one(conv())); status != 200 || len(codes(t, out, "PartialErrors")) != 0 {
			t.Fatalf("%d %v", status, out)
		}
	})
}

func TestApplyValidation(t *testing.T) {
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	tests := []struct {
		name string
		edit func(map[string]any)
		code int // 0: accepted
	}{
		{"valid", func(map[string]any) {}, 0},
		{"valid with everything", func(c map[string]any) {
			c["ConversionValue"] = 49.99
			c["ConversionCurrencyCode"] = "USD"
			c["HashedEmailAddress"] = strings.Repeat("ab", 32)
			c["HashedPhoneNumber"] = strings.Repeat("0f", 32)
		}, 0},
		{"click id with UET suffix", set("MicrosoftClickId", click+"-1"), 0},
		{"fractional seconds", set("ConversionTime", "2026-11-20T14:03:11.6853793Z"), 0},
		{"no click id", func(c map[string]any) { delete(c, "MicrosoftClickId") }, 5603},
		{"empty click id", set("MicrosoftClickId", ""), 5603},
		{"malformed click id", set("MicrosoftClickId", "not-a-click"), 5604},
		{"no name", set("ConversionName", ""), 5605},
		{"unknown goal", set("ConversionName", "Nope"), 5606},
		{"young goal", set("ConversionName", "Young"), 5615},
		{"no time", func(c map[string]any) { delete(c, "ConversionTime") }, 5608},
		{"time with offset", set("ConversionTime", "2026-11-20T15:03:11+01:00"), 5607},
		{"time without zone", set("ConversionTime", "2026-11-20T14:03:11"), 5607},
		{"date only", set("ConversionTime", "2026-11-20"), 5607},
		{"impossible date", set("ConversionTime", "2026-02-30T14:03:11Z"), 5607},
		{"older than 90 days", set("ConversionTime", "2026-08-21T14:59:59Z"), 5609},
		{"in the future", set("ConversionTime", "2026-11-20T15:00:01Z"), 5614},
		{"before the click", func(c map[string]any) {
			c["MicrosoftClickId"] = "0123456789abcdef0123456789abcdef"
			c["ConversionTime"] = "2026-11-19T11:59:59Z"
		}, 5616},
		{"beyond the goal window after the click", func(c map[string]any) {
			c["MicrosoftClickId"] = "fedcba9876543210fedcba9876543210"
			c["ConversionTime"] = "2026-11-20T14:00:00Z"
		}, 5617},
		{"negative value", set("ConversionValue", -1), 5610},
		{"bad currency", set("ConversionCurrencyCode", "usd"), 5611},
		{"unhashed email", set("HashedEmailAddress", "jane.doe@example.com"), 99001},
		{"upper-case hash", set("HashedPhoneNumber", strings.Repeat("AB", 32)), 99002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, acct)
			e.f.AddGoal("Young", e.clk.now().Add(-time.Hour))
			e.f.AddClick("0123456789abcdef0123456789abcdef", time.Date(2026, 11, 19, 12, 0, 0, 0, time.UTC))
			e.f.AddClick("fedcba9876543210fedcba9876543210", time.Date(2026, 8, 21, 13, 0, 0, 0, time.UTC))
			e.login(t)
			bad := conv()
			tt.edit(bad)
			good := conv()
			good["MicrosoftClickId"] = "11111111111111111111111111111111"
			status, _, out := e.apply(t, e.headers(), map[string]any{"OfflineConversions": []any{good, bad}})
			if status != 200 {
				t.Fatalf("status %d: %v", status, out)
			}
			got := codes(t, out, "PartialErrors")
			applied := len(e.f.Accepted())
			if tt.code == 0 {
				if len(got) != 0 || applied != 2 {
					t.Fatalf("partial errors %v, %d applied; want none and 2", got, applied)
				}
				return
			}
			if len(got) != 1 || got[0] != tt.code || applied != 1 {
				t.Fatalf("partial errors %v, %d applied; want [%d] and 1: %v", got, applied, tt.code, out)
			}
			pe := out["PartialErrors"].([]any)[0].(map[string]any)
			if pe["Index"].(float64) != 1 || pe["ErrorCode"] != microsoftfake.Name(tt.code) || pe["Type"] != "BatchError" {
				t.Errorf("partial error %v: want Index 1 and ErrorCode %s", pe, microsoftfake.Name(tt.code))
			}
		})
	}
}

func TestApplyWholeRequestRefusals(t *testing.T) {
	many := make([]any, microsoftfake.MaxConversions+1)
	for i := range many {
		c := conv()
		c["MicrosoftClickId"] = fmt.Sprintf("%032x", i)
		many[i] = c
	}
	tests := []struct {
		name   string
		body   any
		status int
		code   int
	}{
		{"empty list", map[string]any{"OfflineConversions": []any{}}, 400, 5600},
		{"null list", `{"OfflineConversions":null}`, 400, 5600},
		{"no list", `{}`, 400, 5600},
		{"1001 conversions", map[string]any{"OfflineConversions": many}, 400, 5601},
		{"unknown field", `{"OfflineConversions":[{"MicrosoftClickId":"` + click + `","EventId":"e1"}]}`, 400, 99000},
		{"value as string", `{"OfflineConversions":[{"ConversionValue":"49.99"}]}`, 400, 99000},
		{"not JSON", `OfflineConversions=1`, 400, 99000},
		{"two documents", `{"OfflineConversions":[]} {}`, 400, 99000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, acct)
			e.login(t)
			status, _, out := e.apply(t, e.headers(), tt.body)
			if got := codes(t, out, "OperationErrors"); status != tt.status || len(got) != 1 || got[0] != tt.code {
				t.Fatalf("got %d %v, want %d [%d]: %v", status, got, tt.status, tt.code, out)
			}
			if out["Type"] != "ApiFaultDetail" {
				t.Errorf("Type %v", out["Type"])
			}
		})
	}
	t.Run("1000 conversions pass", func(t *testing.T) {
		e := setup(t, acct)
		e.login(t)
		status, _, out := e.apply(t, e.headers(), map[string]any{"OfflineConversions": many[:1000]})
		if status != 200 || len(codes(t, out, "PartialErrors")) != 0 || len(e.f.Accepted()) != 1000 {
			t.Fatalf("%d %v, %d applied", status, out["PartialErrors"], len(e.f.Accepted()))
		}
	})
	t.Run("a null conversion", func(t *testing.T) {
		e := setup(t, acct)
		e.login(t)
		status, _, out := e.apply(t, e.headers(), `{"OfflineConversions":[null]}`)
		if got := codes(t, out, "PartialErrors"); status != 200 || len(got) != 1 || got[0] != 5602 {
			t.Fatalf("%d %v", status, out)
		}
	})
	t.Run("wrong content type", func(t *testing.T) {
		e := setup(t, acct)
		e.login(t)
		h := e.headers()
		h.Set("Content-Type", "text/plain")
		if status, _, _ := e.apply(t, h, one(conv())); status != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d", status)
		}
	})
}

func TestDuplicatesSilentlyIgnored(t *testing.T) {
	e := setup(t, acct)
	e.login(t)
	c := conv()
	c["ConversionValue"] = 10
	again := conv()
	again["ConversionValue"] = 99 // the first one wins
	otherTime := conv()
	otherTime["ConversionTime"] = "2026-11-20T14:03:12Z"
	for _, body := range []any{
		map[string]any{"OfflineConversions": []any{c, again}},
		one(c),
		one(otherTime),
	} {
		if status, _, out := e.apply(t, e.headers(), body); status != 200 || len(codes(t, out, "PartialErrors")) != 0 {
			t.Fatalf("%d %v", status, out)
		}
	}
	got := e.f.Accepted()
	if len(got) != 2 || *got[0].ConversionValue != 10 || got[1].ConversionTime != "2026-11-20T14:03:12Z" {
		t.Fatalf("accepted %+v", got)
	}
	if n := len(e.f.Requests()); n != 3 {
		t.Errorf("recorded %d requests, want 3", n)
	}
}

func TestInjectedFailures(t *testing.T) {
	tests := []struct {
		kind       microsoftfake.Kind
		status     int
		field      string
		code       int
		retryAfter string
	}{
		{microsoftfake.ServerError, 500, "OperationErrors", 0, ""},
		{microsoftfake.Unavailable, 503, "", 0, ""},
		{microsoftfake.TooManyRequests, 429, "OperationErrors", 117, "30"},
		{microsoftfake.CallRateExceeded, 400, "OperationErrors", 117, ""},
		{microsoftfake.InvalidCredentials, 401, "Errors", 105, ""},
		{microsoftfake.TokenExpired, 401, "Errors", 109, ""},
		{microsoftfake.Garbage, 200, "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.kind), func(t *testing.T) {
			e := setup(t, acct)
			e.login(t)
			e.f.FailNext(1, tt.kind)
			status, hdr, out := e.apply(t, e.headers(), one(conv()))
			if status != tt.status || hdr.Get("Retry-After") != tt.retryAfter {
				t.Fatalf("got %d Retry-After %q, want %d %q", status, hdr.Get("Retry-After"), tt.status, tt.retryAfter)
			}
			if tt.field != "" {
				if got := codes(t, out, tt.field); len(got) != 1 || got[0] != tt.code {
					t.Fatalf("%s %v, want [%d]", tt.field, got, tt.code)
				}
			} else if out != nil && tt.kind == microsoftfake.Garbage {
				t.Fatalf("garbage decoded: %v", out)
			}
			if len(e.f.Accepted()) != 0 {
				t.Fatal("applied despite the failure")
			}
			// One failure only: the next call goes through, except that an
			// expired token stays expired.
			if tt.kind == microsoftfake.TokenExpired {
				if status, _, _ := e.apply(t, e.headers(), one(conv())); status != 401 {
					t.Fatalf("expired token worked again: %d", status)
				}
				e.login(t)
			}
			if status, _, out := e.apply(t, e.headers(), one(conv())); status != 200 || len(e.f.Accepted()) != 1 {
				t.Fatalf("second call: %d %v", status, out)
			}
		})
	}
}

func TestHangUntilClientGivesUp(t *testing.T) {
	e := setup(t, acct)
	e.login(t)
	e.f.FailNext(1, microsoftfake.Hang)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+microsoftfake.APIPath, strings.NewReader(`{}`))
	req.Header = e.headers()
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer %d, want none", resp.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a deadline", err)
	}
}

func TestSetPartial(t *testing.T) {
	e := setup(t, acct)
	e.login(t)
	other := conv()
	other["MicrosoftClickId"] = strings.ToUpper(click[:16]) + "00000000000000ff"
	e.f.SetPartial(click, 5617)
	status, _, out := e.apply(t, e.headers(), map[string]any{"OfflineConversions": []any{other, conv()}})
	got := codes(t, out, "PartialErrors")
	if status != 200 || len(got) != 1 || got[0] != 5617 || len(e.f.Accepted()) != 1 {
		t.Fatalf("%d %v, %d applied", status, out, len(e.f.Accepted()))
	}
	if idx := out["PartialErrors"].([]any)[0].(map[string]any)["Index"]; idx != 1.0 {
		t.Errorf("Index %v, want 1", idx)
	}
	e.f.ClearPartial(click)
	if status, _, out := e.apply(t, e.headers(), one(conv())); status != 200 || len(codes(t, out, "PartialErrors")) != 0 {
		t.Fatalf("after ClearPartial: %d %v", status, out)
	}
}

func TestRequestsRecordDecodedBodies(t *testing.T) {
	e := setup(t, acct)
	e.login(t)
	c := conv()
	c["ConversionValue"] = 49.99
	e.apply(t, e.headers(), one(c))
	reqs := e.f.Requests()
	if len(reqs) != 1 || reqs[0].Body == nil || len(reqs[0].Body.OfflineConversions) != 1 {
		t.Fatalf("%+v", reqs)
	}
	got := reqs[0].Body.OfflineConversions[0]
	if got.MicrosoftClickId != click || got.ConversionName != goal || *got.ConversionValue != 49.99 ||
		reqs[0].Header.Get("DeveloperToken") != acct.DeveloperToken {
		t.Fatalf("%+v %v", got, reqs[0].Header)
	}
}
