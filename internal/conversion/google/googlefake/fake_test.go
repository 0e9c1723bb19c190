package googlefake_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion/google/googlefake"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

const (
	hashA  = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
	upload = "/v26/customers/1234567890:uploadClickConversions"
	ingest = "/v1/events:ingest"
	action = "customers/1234567890/conversionActions/555000111"
)

type env struct {
	f   *googlefake.Fake
	srv *httptest.Server
}

func start(t *testing.T) *env {
	t.Helper()
	f := googlefake.New()
	f.SetClock(func() time.Time { return now })
	f.AddClick("GoodClick", now.Add(-48*time.Hour))
	f.AddClick("OldClick", now.Add(-100*24*time.Hour))
	f.AddClick("NewClick", now.Add(-time.Hour))
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(f.Close)
	return &env{f: f, srv: srv}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (e *env) token(t *testing.T, form url.Values) answer {
	t.Helper()
	resp, err := http.PostForm(e.srv.URL+"/token", form)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func goodForm() url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "client_id": {googlefake.ClientID},
		"client_secret": {googlefake.ClientSecret}, "refresh_token": {googlefake.RefreshToken}}
}

func (e *env) accessToken(t *testing.T) string {
	t.Helper()
	a := e.token(t, goodForm())
	tok, _ := a.body["access_token"].(string)
	if a.status != 200 || tok == "" {
		t.Fatalf("token: %d %v", a.status, a.body)
	}
	return tok
}

// post sends body as JSON with the given headers; "Authorization: auto"
// is replaced by a fresh token.
func (e *env) post(t *testing.T, path string, headers map[string]string, body any) answer {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		if k == "Authorization" && v == "auto" {
			v = "Bearer " + e.accessToken(t)
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func read(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: m}
}

// adsCode is the first GoogleAdsFailure error code of an error envelope.
func adsCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	details, _ := e["details"].([]any)
	for _, d := range details {
		errs, _ := d.(map[string]any)["errors"].([]any)
		for _, x := range errs {
			for _, v := range x.(map[string]any)["errorCode"].(map[string]any) {
				return v.(string)
			}
		}
	}
	return ""
}

func adsHeaders() map[string]string {
	return map[string]string{"Authorization": "auto", "developer-token": googlefake.DeveloperToken}
}

func row(click string, at time.Time, order string) map[string]any {
	r := map[string]any{"conversionAction": action, "conversionDateTime": at.Format("2006-01-02 15:04:05-07:00")}
	if click != "" {
		r["gclid"] = click
	}
	if order != "" {
		r["orderId"] = order
	}
	return r
}

func TestToken(t *testing.T) {
	e := start(t)
	edit := func(k, v string) url.Values {
		f := goodForm()
		f.Set(k, v)
		return f
	}
	cases := []struct {
		form   url.Values
		status int
		code   string
	}{
		{edit("client_secret", "wrong"), 401, "invalid_client"},
		{edit("client_id", "other"), 401, "invalid_client"},
		{edit("refresh_token", "1//unknown"), 400, "invalid_grant"},
		{edit("grant_type", "authorization_code"), 400, "unsupported_grant_type"},
	}
	for _, tc := range cases {
		a := e.token(t, tc.form)
		if a.status != tc.status || a.body["error"] != tc.code {
			t.Errorf("%v: %d %v", tc.form, a.status, a.body)
		}
	}
	a := e.token(t, goodForm())
	if a.status != 200 || a.body["token_type"] != "Bearer" || a.body["expires_in"] != 3600.0 ||
		!strings.HasPrefix(a.body["access_token"].(string), "ya29.") {
		t.Errorf("good refresh: %d %v", a.status, a.body)
	}

	e.f.FailNext(1, googlefake.InvalidGrant)
	if a := e.token(t, goodForm()); a.status != 400 || a.body["error"] != "invalid_grant" {
		t.Errorf("injected invalid_grant: %d %v", a.status, a.body)
	}
	if a := e.token(t, goodForm()); a.status != 200 {
		t.Errorf("after the injected failure: %d %v", a.status, a.body)
	}
	e.f.RevokeRefreshToken(googlefake.RefreshToken)
	if a := e.token(t, goodForm()); a.status != 400 || a.body["error"] != "invalid_grant" {
		t.Errorf("revoked: %d %v", a.status, a.body)
	}
	if n := e.f.TokenRefreshes(); n != 8 {
		t.Errorf("%d token requests counted, want 8", n)
	}
}

func TestUploadRefusesRequests(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{"conversions": []any{row("GoodClick", now.Add(-time.Hour), "o1")}, "partialFailure": true}
	}
	with := func(k string, v any) map[string]any {
		b := good()
		b[k] = v
		return b
	}
	headers := func(edit func(map[string]string)) map[string]string {
		h := adsHeaders()
		edit(h)
		return h
	}
	many := make([]any, 2001)
	for i := range many {
		many[i] = row("GoodClick", now.Add(-time.Hour), fmt.Sprint(i))
	}
	cases := []struct {
		name    string
		path    string
		headers map[string]string
		body    any
		setup   func(*googlefake.Fake)
		status  int
		code    string
	}{
		{"no token", upload, headers(func(h map[string]string) { delete(h, "Authorization") }), good(), nil, 401, "OAUTH_TOKEN_HEADER_INVALID"},
		{"unknown token", upload, headers(func(h map[string]string) { h["Authorization"] = "Bearer ya29.forged" }), good(), nil, 401, "OAUTH_TOKEN_INVALID"},
		{"no developer token", upload, headers(func(h map[string]string) { delete(h, "developer-token") }), good(), nil, 401, "DEVELOPER_TOKEN_INVALID"},
		{"login customer with dashes", upload, headers(func(h map[string]string) { h["login-customer-id"] = "987-654-3210" }), good(), nil, 401, "LOGIN_CUSTOMER_ID_PARSING_ERROR"},
		{"old version", "/v22/customers/1234567890:uploadClickConversions", adsHeaders(), good(), nil, 404, ""},
		{"customer with dashes", "/v26/customers/123-456-7890:uploadClickConversions", adsHeaders(), good(), nil, 404, ""},
		{"unknown customer", "/v26/customers/1111111111:uploadClickConversions", adsHeaders(), good(), nil, 403, "USER_PERMISSION_DENIED"},
		{"login customer required", upload, adsHeaders(), good(), func(f *googlefake.Fake) { f.RequireLoginCustomer("9876543210") }, 403, "USER_PERMISSION_DENIED"},
		{"partialFailure absent", upload, adsHeaders(), map[string]any{"conversions": good()["conversions"]}, nil, 400, "PARTIAL_FAILURE_MODE_REQUIRED"},
		{"partialFailure false", upload, adsHeaders(), with("partialFailure", false), nil, 400, "PARTIAL_FAILURE_MODE_REQUIRED"},
		{"no conversions", upload, adsHeaders(), with("conversions", []any{}), nil, 400, "REQUIRED_NONEMPTY_LIST"},
		{"2001 conversions", upload, adsHeaders(), with("conversions", many), nil, 400, "TOO_MANY_CONVERSIONS_IN_REQUEST"},
		{"unknown field", upload, adsHeaders(), with("partial_failure_mode", true), nil, 400, ""},
		{"bad consent", upload, adsHeaders(), with("conversions", []any{map[string]any{"conversionAction": action, "consent": map[string]any{"adUserData": "YES"}}}), nil, 400, ""},
		{"not allowlisted", upload, adsHeaders(), good(), func(f *googlefake.Fake) { f.SetNotAllowlisted(true) }, 403, "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"},
		{"injected 503", upload, adsHeaders(), good(), func(f *googlefake.Fake) { f.FailNext(1, googlefake.ServerError) }, 503, ""},
		{"injected 429", upload, adsHeaders(), good(), func(f *googlefake.Fake) { f.FailNext(1, googlefake.RateLimited) }, 429, "RESOURCE_TEMPORARILY_EXHAUSTED"},
		{"injected 401", upload, adsHeaders(), good(), func(f *googlefake.Fake) { f.FailNext(1, googlefake.Unauthorized) }, 401, "OAUTH_TOKEN_REVOKED"},
		{"injected 400", upload, adsHeaders(), good(), func(f *googlefake.Fake) { f.FailNext(1, googlefake.Validation) }, 400, "INVALID_INPUT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			if tc.setup != nil {
				tc.setup(e.f)
			}
			a := e.post(t, tc.path, tc.headers, tc.body)
			errObj, _ := a.body["error"].(map[string]any)
			if a.status != tc.status || errObj == nil || errObj["code"] != float64(tc.status) || adsCode(a.body) != tc.code {
				t.Errorf("%d %v", a.status, a.body)
			}
			if tc.status == 429 && a.header.Get("Retry-After") != "30" {
				t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
			}
			if len(e.f.Accepted()) != 0 {
				t.Errorf("accepted %v", e.f.Accepted())
			}
		})
	}

	t.Run("expired token", func(t *testing.T) {
		e := start(t)
		h := adsHeaders()
		h["Authorization"] = "Bearer " + e.accessToken(t)
		e.f.ExpireTokens()
		if a := e.post(t, upload, h, good()); a.status != 401 || adsCode(a.body) != "OAUTH_TOKEN_EXPIRED" {
			t.Errorf("%d %v", a.status, a.body)
		}
	})
	t.Run("form body", func(t *testing.T) {
		e := start(t)
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+upload, strings.NewReader("conversions=1"))
		req.Header.Set("Authorization", "Bearer "+e.accessToken(t))
		req.Header.Set("developer-token", googlefake.DeveloperToken)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if a := read(t, resp); a.status != 400 {
			t.Errorf("%d %v", a.status, a.body)
		}
	})
}

func TestUploadRowRules(t *testing.T) {
	e := start(t)
	at := now.Add(-time.Hour)
	other := row("GoodClick", at, "o3")
	other["conversionAction"] = "customers/9999999999/conversionActions/555000111"
	unknownAction := row("GoodClick", at, "o4")
	unknownAction["conversionAction"] = "customers/1234567890/conversionActions/1"
	badTime := row("GoodClick", at, "o1")
	badTime["conversionDateTime"] = "2026-11-20T10:00:00Z"
	braids := map[string]any{"conversionAction": action, "conversionDateTime": at.Format("2006-01-02 15:04:05-07:00"), "gbraid": "GoodClick", "wbraid": "GoodClick", "orderId": "o2"}
	tooMany := row("GoodClick", at, "o10")
	ids := []any{}
	for range 6 {
		ids = append(ids, map[string]any{"hashedEmail": hashA})
	}
	tooMany["userIdentifiers"] = ids
	upper := row("GoodClick", at, "o11")
	upper["userIdentifiers"] = []any{map[string]any{"hashedEmail": strings.ToUpper(hashA)}}
	third := row("GoodClick", at, "o12")
	third["userIdentifiers"] = []any{map[string]any{"thirdPartyUserId": "u1"}}
	both := row("GoodClick", at, "o14")
	both["gbraid"] = "GoodClick"
	hashOnly := row("", at, "o15")
	hashOnly["userIdentifiers"] = []any{map[string]any{"hashedEmail": hashA}, map[string]any{"hashedPhoneNumber": hashA}}

	rows := []struct {
		row  map[string]any
		code string // "" when accepted
	}{
		{row("GoodClick", at, "o0"), ""},
		{badTime, "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET"},
		{braids, "GBRAID_WBRAID_BOTH_SET"},
		{other, "NO_CONVERSION_ACTION_FOUND"},
		{unknownAction, "NO_CONVERSION_ACTION_FOUND"},
		{row("UnknownClick", at, "o5"), "EVENT_NOT_FOUND"},
		{row("OldClick", now.Add(-99*24*time.Hour), "o6"), "EXPIRED_EVENT"},
		{row("NewClick", now, "o7"), "TOO_RECENT_EVENT"},
		{row("GoodClick", now.Add(-72*time.Hour), "o8"), "CONVERSION_PRECEDES_EVENT"},
		{row("GoodClick", at, "o0"), "DUPLICATE_ORDER_ID"},
		{tooMany, "TOO_MANY"},
		{upper, "INVALID_USER_IDENTIFIER"},
		{third, "UNSUPPORTED_USER_IDENTIFIER"},
		{row("", at, "o13"), "CLICK_NOT_FOUND"},
		{both, "VALUE_MUST_BE_UNSET"},
		{hashOnly, ""},
		{row("Bad click!", at, "o16"), "UNPARSEABLE_GCLID"},
	}
	var conv []any
	for _, r := range rows {
		conv = append(conv, r.row)
	}
	a := e.post(t, upload, adsHeaders(), map[string]any{"conversions": conv, "partialFailure": true})
	if a.status != 200 {
		t.Fatalf("%d %v", a.status, a.body)
	}
	got := rowCodes(t, a.body)
	results := a.body["results"].([]any)
	for i, r := range rows {
		if got[i] != r.code {
			t.Errorf("row %d: code %q, want %q", i, got[i], r.code)
		}
		if empty := len(results[i].(map[string]any)) == 0; empty != (r.code != "") {
			t.Errorf("row %d: result %v", i, results[i])
		}
	}
	if acc := e.f.Accepted(); len(acc) != 2 || acc[0] != "o0" || acc[1] != "o15" {
		t.Errorf("accepted %v", acc)
	}

	// Uploaded before: by order id, and without one by click, action and time.
	noOrder := row("GoodClick", now.Add(-2*time.Hour), "")
	a = e.post(t, upload, adsHeaders(), map[string]any{"conversions": []any{row("GoodClick", at, "o0"), noOrder}, "partialFailure": true})
	if got := rowCodes(t, a.body); got[0] != "ORDER_ID_ALREADY_IN_USE" || got[1] != "" {
		t.Errorf("second upload: %v", got)
	}
	fresh := row("GoodClick", now.Add(-3*time.Hour), "")
	a = e.post(t, upload, adsHeaders(), map[string]any{"conversions": []any{noOrder, fresh, fresh}, "partialFailure": true})
	if got := rowCodes(t, a.body); got[0] != "CLICK_CONVERSION_ALREADY_EXISTS" || got[1] != "" || got[2] != "DUPLICATE_CLICK_CONVERSION_IN_REQUEST" {
		t.Errorf("third upload: %v", got)
	}

	// An injected row failure.
	e.f.SetPartial("EVENT_NOT_FOUND", "o20")
	a = e.post(t, upload, adsHeaders(), map[string]any{"conversions": []any{row("GoodClick", at, "o21"), row("GoodClick", at, "o20")}, "partialFailure": true})
	if got := rowCodes(t, a.body); got[0] != "" || got[1] != "EVENT_NOT_FOUND" {
		t.Errorf("injected: %v", got)
	}
}

// rowCodes maps conversions[i] to its error code from partialFailureError.
func rowCodes(t *testing.T, body map[string]any) map[int]string {
	t.Helper()
	out := map[int]string{}
	pf, _ := body["partialFailureError"].(map[string]any)
	if pf == nil {
		return out
	}
	if pf["code"] != 3.0 || pf["message"] == "" {
		t.Errorf("partialFailureError %v", pf)
	}
	for _, d := range pf["details"].([]any) {
		dm := d.(map[string]any)
		if !strings.HasSuffix(dm["@type"].(string), ".errors.GoogleAdsFailure") {
			t.Errorf("detail type %v", dm["@type"])
		}
		for _, x := range dm["errors"].([]any) {
			xm := x.(map[string]any)
			path := xm["location"].(map[string]any)["fieldPathElements"].([]any)
			first := path[0].(map[string]any)
			if first["fieldName"] != "conversions" {
				t.Errorf("path %v", path)
			}
			for _, v := range xm["errorCode"].(map[string]any) {
				out[int(first["index"].(float64))] = v.(string)
			}
		}
	}
	return out
}

func dmEvent(id string) map[string]any {
	return map[string]any{
		"destinationReferences": []any{"a"},
		"transactionId":         id,
		"eventTimestamp":        "2026-11-20T10:03:11Z",
		"adIdentifiers":         map[string]any{"gclid": "GoodClick"},
		"userData":              map[string]any{"userIdentifiers": []any{map[string]any{"emailAddress": hashA}}},
		"eventSource":           "WEB",
	}
}

func dmRequest(events ...any) map[string]any {
	return map[string]any{
		"destinations": []any{map[string]any{"reference": "a",
			"operatingAccount":     map[string]any{"accountType": "GOOGLE_ADS", "accountId": googlefake.CustomerID},
			"productDestinationId": googlefake.ActionID}},
		"encoding": "HEX",
		"events":   events,
	}
}

// violations returns the ErrorInfo reason and the BadRequest violations as
// "field reason".
func violations(t *testing.T, body map[string]any) (string, []string) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	var reason string
	var out []string
	types := map[string]bool{}
	for _, d := range e["details"].([]any) {
		dm := d.(map[string]any)
		types[dm["@type"].(string)] = true
		if r, ok := dm["reason"].(string); ok {
			reason = r
		}
		fvs, _ := dm["fieldViolations"].([]any)
		for _, fv := range fvs {
			m := fv.(map[string]any)
			out = append(out, fmt.Sprint(m["field"], " ", m["reason"]))
		}
	}
	if !types["type.googleapis.com/google.rpc.ErrorInfo"] || !types["type.googleapis.com/google.rpc.RequestInfo"] {
		t.Errorf("details %v", e["details"])
	}
	return reason, out
}

func TestIngest(t *testing.T) {
	auth := map[string]string{"Authorization": "auto"}
	t.Run("accepted", func(t *testing.T) {
		e := start(t)
		a := e.post(t, ingest, auth, dmRequest(dmEvent("t1"), dmEvent("t2"), dmEvent("t1")))
		if id, _ := a.body["requestId"].(string); a.status != 200 || id == "" || len(a.body) != 1 {
			t.Fatalf("%d %v", a.status, a.body)
		}
		if acc := e.f.Accepted(); len(acc) != 2 {
			t.Errorf("accepted %v", acc)
		}
		r := e.f.Requests()
		if last := r[len(r)-1]; last.Endpoint != "ingest" || last.Body["encoding"] != "HEX" {
			t.Errorf("recorded %+v", last)
		}
	})

	edit := func(f func(req map[string]any, ev map[string]any)) map[string]any {
		ev := dmEvent("t1")
		req := dmRequest(ev)
		f(req, ev)
		return req
	}
	var dests []any
	for range 11 {
		dests = append(dests, dmRequest()["destinations"].([]any)[0])
	}
	var many []any
	for i := range 2001 {
		many = append(many, dmEvent(fmt.Sprint(i)))
	}
	cases := []struct {
		name   string
		body   map[string]any
		status int
		want   string // a "field reason" violation, or the ErrorInfo reason
	}{
		{"no encoding", edit(func(r, _ map[string]any) { delete(r, "encoding") }), 400, "encoding REQUIRED_FIELD_MISSING"},
		{"11 destinations", edit(func(r, _ map[string]any) { r["destinations"] = dests }), 400, "destinations TOO_MANY_DESTINATIONS"},
		{"2001 events", edit(func(r, _ map[string]any) { r["events"] = many }), 400, "events TOO_MANY_EVENTS"},
		{"short hash", edit(func(_, ev map[string]any) {
			ev["userData"] = map[string]any{"userIdentifiers": []any{map[string]any{"phoneNumber": hashA[:62]}}}
		}), 400, "events.events[0].user_data.user_identifiers[0] INVALID_SHA256_FORMAT"},
		{"not hex", edit(func(_, ev map[string]any) {
			ev["userData"] = map[string]any{"userIdentifiers": []any{map[string]any{"emailAddress": "jane@example.com"}}}
		}), 400, "events.events[0].user_data.user_identifiers[0] INVALID_HEX_ENCODING"},
		{"no identifiers", edit(func(_, ev map[string]any) { delete(ev, "userData"); delete(ev, "adIdentifiers") }), 400, "events.events[0] NO_IDENTIFIERS_PROVIDED"},
		{"two click ids", edit(func(_, ev map[string]any) { ev["adIdentifiers"] = map[string]any{"gclid": "a", "wbraid": "b"} }), 400, "events.events[0].ad_identifiers INVALID_ARGUMENT"},
		{"bad timestamp", edit(func(_, ev map[string]any) { ev["eventTimestamp"] = "2026-11-20 10:03:11" }), 400, "events.events[0].event_timestamp INVALID_FORMAT"},
		{"no timestamp", edit(func(_, ev map[string]any) { delete(ev, "eventTimestamp") }), 400, "events.events[0].event_timestamp REQUIRED_FIELD_MISSING"},
		{"bad currency", edit(func(_, ev map[string]any) { ev["currency"] = "usd" }), 400, "events.events[0].currency INVALID_CURRENCY_CODE"},
		{"bad consent", edit(func(_, ev map[string]any) { ev["consent"] = map[string]any{"adUserData": "GRANTED"} }), 400, "events.events[0].consent.ad_user_data INVALID_ARGUMENT"},
		{"unknown reference", edit(func(_, ev map[string]any) { ev["destinationReferences"] = []any{"b"} }), 400, "events.events[0].destination_references INVALID_DESTINATION"},
		{"unknown action", edit(func(r, _ map[string]any) {
			r["destinations"].([]any)[0].(map[string]any)["productDestinationId"] = "1"
		}), 400, "destinations[0].product_destination_id INVALID_CONVERSION_ACTION_ID"},
		{"unknown customer", edit(func(r, _ map[string]any) {
			r["destinations"].([]any)[0].(map[string]any)["operatingAccount"] = map[string]any{"accountType": "GOOGLE_ADS", "accountId": "1111111111"}
		}), 403, "PERMISSION_DENIED"},
		{"unknown field", edit(func(_, ev map[string]any) { ev["gclid"] = "GoodClick" }), 400, "INVALID_ARGUMENT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			a := e.post(t, ingest, auth, tc.body)
			if a.status != tc.status {
				t.Fatalf("%d %v", a.status, a.body)
			}
			reason, vs := violations(t, a.body)
			found := reason == tc.want
			for _, v := range vs {
				found = found || v == tc.want
			}
			if !found {
				t.Errorf("no %q in %s / %v", tc.want, reason, vs)
			}
			if len(e.f.Accepted()) != 0 {
				t.Errorf("accepted %v", e.f.Accepted())
			}
		})
	}

	t.Run("auth", func(t *testing.T) {
		e := start(t)
		for _, h := range []map[string]string{{}, {"Authorization": "Bearer ya29.forged"}, {"Authorization": "Basic eDp5"}} {
			if a := e.post(t, ingest, h, dmRequest(dmEvent("t1"))); a.status != 401 {
				t.Errorf("%v: %d %v", h, a.status, a.body)
			}
		}
		h := map[string]string{"Authorization": "Bearer " + e.accessToken(t)}
		e.f.ExpireTokens()
		a := e.post(t, ingest, h, dmRequest(dmEvent("t1")))
		if reason, _ := violations(t, a.body); a.status != 401 || reason != "ACCESS_TOKEN_EXPIRED" {
			t.Errorf("expired: %d %v", a.status, a.body)
		}
	})

	t.Run("injected", func(t *testing.T) {
		e := start(t)
		e.f.SetPartial("INVALID_EVENT", "t2")
		a := e.post(t, ingest, auth, dmRequest(dmEvent("t1"), dmEvent("t2")))
		if _, vs := violations(t, a.body); a.status != 400 || len(vs) != 1 || vs[0] != "events.events[1] INVALID_EVENT" {
			t.Errorf("%d %v", a.status, a.body)
		}
		e.f.FailNext(1, googlefake.RateLimited)
		a = e.post(t, ingest, auth, dmRequest(dmEvent("t1")))
		if a.status != 429 || a.header.Get("Retry-After") != "30" {
			t.Errorf("%d %v", a.status, a.body)
		}
		if len(e.f.Accepted()) != 0 {
			t.Errorf("accepted %v", e.f.Accepted())
		}
	})
}

func TestUnknownPath(t *testing.T) {
	e := start(t)
	a := e.post(t, "/v1/audienceMembers:ingest", map[string]string{"Authorization": "auto"}, map[string]any{})
	if a.status != 404 {
		t.Errorf("%d %v", a.status, a.body)
	}
}
