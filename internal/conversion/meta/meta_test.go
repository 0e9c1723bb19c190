package meta_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/conversion/meta"
	"github.com/pruuv/pruuv/internal/conversion/meta/metafake"
	"github.com/pruuv/pruuv/internal/event"
)

const (
	pixel = "1234567890123456"
	token = "EAAB-secret-token-0123456789"
	// The reference notes' vectors: jane.doe@example.com, and 14155550123
	// (Meta's form of +14155550123, without the "+").
	emailHash = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
	phoneHash = "413ba75461ab5f99d36820e561ea97e2bd80f9cb586f7ecea6cf4c496518950a"
	fbc       = "fb.1.1763640000123.IwAR2xYzExampleFbclid"
	fbp       = "fb.1.1763000000456.1098765432"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func start(t *testing.T) (*meta.Client, *metafake.Fake, conversion.Connection) {
	t.Helper()
	fake := metafake.New(metafake.Options{Pixels: map[string]string{pixel: token}, Now: func() time.Time { return now }})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	conn := conversion.Connection{ID: "conn1", ClientID: "cl1", Platform: conversion.Meta,
		Settings: map[string]string{meta.SettingPixelID: pixel, meta.SettingAccessToken: token}}
	return meta.New(srv.URL, srv.Client()), fake, conn
}

// purchase is a conversion carrying every signal Meta takes.
func purchase(id string) conversion.Conversion {
	return conversion.Conversion{
		EventID: id, StageID: "stg1", EventName: "Purchase",
		Time: now.Add(-time.Hour), ReceivedAt: now.Add(-time.Hour),
		Fields: event.Fields{
			Reference: "CRM-1", FBC: fbc, FBP: fbp,
			EmailSHA256: emailHash, EmailGoogleSHA256: emailHash,
			PhoneSHA256: "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4", PhoneMetaSHA256: phoneHash,
			ClientIPAddress: "203.0.113.7", ClientUserAgent: "Mozilla/5.0 (iPhone)",
			EventSourceURL: "https://shop.example.com/thanks",
			HasRevenue:     true, RevenueMicros: 49_990_000, Currency: "USD",
		},
	}
}

func lead(id string) conversion.Conversion {
	return conversion.Conversion{EventID: id, StageID: "stg1", EventName: "Lead", Time: now.Add(-2 * time.Hour),
		Fields: event.Fields{Reference: id, EmailSHA256: emailHash}}
}

// decoded parses JSON for comparison regardless of key order and spacing.
func decoded(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

func TestSendBuildsTheDocumentedRequest(t *testing.T) {
	client, fake, conn := start(t)
	conn.Settings[meta.SettingTestEventCode] = "TEST12345"
	l := lead("evt_2")
	l.Fields.FBC = "not-a-cookie" // dropped, not sent: Meta would refuse the batch
	l.Fields.ClientUserAgent = "curl/8"
	res := client.Send(context.Background(), conn, []conversion.Conversion{purchase("evt_1"), l})
	for i, r := range res {
		if r.Outcome != conversion.Sent || r.HTTPStatus != 200 || !strings.Contains(r.Message, "events_received 2") {
			t.Errorf("result %d = %+v, want Sent with events_received", i, r)
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/"+meta.DefaultAPIVersion+"/"+pixel+"/events" || len(r.Query) != 0 {
		t.Errorf("request %s %s?%s", r.Method, r.Path, r.Query.Encode())
	}
	if r.TokenIn != "form" || r.ContentType != "application/x-www-form-urlencoded" || r.TestEventCode != "TEST12345" {
		t.Errorf("token in %q, content type %q, test_event_code %q", r.TokenIn, r.ContentType, r.TestEventCode)
	}
	want := fmt.Sprintf(`[
	 {"event_name":"Purchase","event_time":%d,"event_id":"evt_1","action_source":"website",
	  "event_source_url":"https://shop.example.com/thanks",
	  "user_data":{"em":["%s"],"ph":["%s"],"fbc":"%s","fbp":"%s",
	               "client_ip_address":"203.0.113.7","client_user_agent":"Mozilla/5.0 (iPhone)"},
	  "custom_data":{"value":49.99,"currency":"USD"}},
	 {"event_name":"Lead","event_time":%d,"event_id":"evt_2","action_source":"system_generated",
	  "user_data":{"em":["%s"],"client_user_agent":"curl/8"}}
	]`, now.Add(-time.Hour).Unix(), emailHash, phoneHash, fbc, fbp, now.Add(-2*time.Hour).Unix(), emailHash)
	if got, want := decoded(t, r.Data), decoded(t, []byte(want)); !reflect.DeepEqual(got, want) {
		t.Errorf("data =\n%s\nwant\n%v", r.Data, want)
	}
}

func TestSendHonoursSettings(t *testing.T) {
	client, fake, conn := start(t)
	conn.Settings[meta.SettingAPIVersion] = "v25.0"
	conn.Settings[meta.SettingActionSource] = "phone_call"
	if r := client.Send(context.Background(), conn, []conversion.Conversion{purchase("e")}); r[0].Outcome != conversion.Sent {
		t.Fatalf("%+v", r[0])
	}
	r := fake.Requests()[0]
	var data []struct {
		ActionSource string `json:"action_source"`
	}
	json.Unmarshal(r.Data, &data)
	if r.Path != "/v25.0/"+pixel+"/events" || len(data) != 1 || data[0].ActionSource != "phone_call" || r.TestEventCode != "" {
		t.Errorf("path %s, data %s, test code %q", r.Path, r.Data, r.TestEventCode)
	}
}

func TestSendBatchAtTheLimit(t *testing.T) {
	client, fake, conn := start(t)
	if client.MaxBatch() != 1000 {
		t.Fatalf("MaxBatch = %d", client.MaxBatch())
	}
	batch := make([]conversion.Conversion, 1001)
	for i := range batch {
		batch[i] = lead(fmt.Sprintf("evt_%d", i))
	}
	res := client.Send(context.Background(), conn, batch[:1000])
	for i, r := range res {
		if r.Outcome != conversion.Sent {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if n := len(fake.Events()); len(res) != 1000 || n != 1000 || len(fake.Requests()) != 1 {
		t.Fatalf("%d results, %d events in %d requests", len(res), n, len(fake.Requests()))
	}
	// Over the limit (a queue bug), the batch is split rather than refused.
	res = client.Send(context.Background(), conn, batch)
	if len(res) != 1001 || res[1000].Outcome != conversion.Sent || len(fake.Requests()) != 3 {
		t.Fatalf("%d results, last %+v, %d requests", len(res), res[len(res)-1], len(fake.Requests()))
	}
}

func TestSendFailures(t *testing.T) {
	cases := []struct {
		kind       metafake.Kind
		outcome    conversion.Outcome
		status     int
		message    string
		retryAfter time.Duration
	}{
		{metafake.ServerError, conversion.Transient, 500, "(#2) An unexpected error", 0},
		{metafake.TooManyRequests, conversion.Transient, 429, "(#4)", time.Minute},
		{metafake.RateLimit, conversion.Transient, 400, "(#80004/2446079)", time.Minute},
		{metafake.AuthError, conversion.Permanent, 400, "(#190/463) Error validating access token", 0},
		{metafake.ValidationError, conversion.Permanent, 400, "(#100)", 0},
		{metafake.Hang, conversion.Transient, 0, "no answer", 0},
	}
	for _, c := range cases {
		client, fake, conn := start(t)
		client.Timeout = 50 * time.Millisecond
		fake.FailNext(1, c.kind)
		res := client.Send(context.Background(), conn, []conversion.Conversion{purchase("a"), lead("b")})
		for i, r := range res {
			if r.Outcome != c.outcome || r.HTTPStatus != c.status || !strings.Contains(r.Message, c.message) || r.RetryAfter != c.retryAfter {
				t.Errorf("kind %d, result %d = %+v; want outcome %d, status %d, message with %q, retry after %s",
					c.kind, i, r, c.outcome, c.status, c.message, c.retryAfter)
			}
			if strings.Contains(r.Message, token) {
				t.Errorf("kind %d: the message carries the token: %s", c.kind, r.Message)
			}
		}
		// The failure was one-off: the same batch goes through next time.
		if r := client.Send(context.Background(), conn, []conversion.Conversion{purchase("a")}); r[0].Outcome != conversion.Sent {
			t.Errorf("kind %d: retry = %+v", c.kind, r[0])
		}
	}
}

func TestSendWrongCredentials(t *testing.T) {
	client, _, conn := start(t)
	conn.Settings[meta.SettingAccessToken] = "EAAB-unknown"
	r := client.Send(context.Background(), conn, []conversion.Conversion{lead("a")})[0]
	if r.Outcome != conversion.Permanent || !strings.Contains(r.Message, "(#190)") || strings.Contains(r.Message, "EAAB-unknown") {
		t.Errorf("unknown token: %+v", r)
	}
	conn.Settings[meta.SettingAccessToken] = token
	conn.Settings[meta.SettingPixelID] = "999"
	r = client.Send(context.Background(), conn, []conversion.Conversion{lead("a")})[0]
	if r.Outcome != conversion.Permanent || !strings.Contains(r.Message, "(#100/33)") {
		t.Errorf("another pixel: %+v", r)
	}
	delete(conn.Settings, meta.SettingAccessToken)
	r = client.Send(context.Background(), conn, []conversion.Conversion{lead("a")})[0]
	if r.Outcome != conversion.Permanent || r.HTTPStatus != 0 || !strings.Contains(r.Message, "access_token: is required") {
		t.Errorf("no token: %+v", r)
	}
}

func TestSendAttributesARefusedEvent(t *testing.T) {
	client, fake, conn := start(t)
	fake.SetPartial("b")
	batch := []conversion.Conversion{lead("a"), lead("b"), lead("c")}
	res := client.Send(context.Background(), conn, batch)
	want := []conversion.Outcome{conversion.Transient, conversion.Permanent, conversion.Transient}
	for i, r := range res {
		if r.Outcome != want[i] || r.HTTPStatus != 400 {
			t.Errorf("result %d = %+v, want outcome %d", i, r, want[i])
		}
	}
	if !strings.Contains(res[0].Message, "because of event b") || !strings.Contains(res[1].Message, "(#100/2804001)") {
		t.Errorf("messages: %q, %q", res[0].Message, res[1].Message)
	}
	// The others go again without it and are accepted.
	res = client.Send(context.Background(), conn, []conversion.Conversion{batch[0], batch[2]})
	if res[0].Outcome != conversion.Sent || res[1].Outcome != conversion.Sent {
		t.Errorf("resend: %+v", res)
	}
	// A stale event that slipped past Check is attributed the same way.
	old := lead("d")
	old.Time = now.Add(-8 * 24 * time.Hour)
	res = client.Send(context.Background(), conn, []conversion.Conversion{lead("e"), old})
	if res[0].Outcome != conversion.Transient || res[1].Outcome != conversion.Permanent || !strings.Contains(res[1].Message, "2804003") {
		t.Errorf("stale event: %+v", res)
	}
}

func TestSendUnattributedRefusal(t *testing.T) {
	// An answer that names no event refuses all of them.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		w.Write([]byte(`{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":2804007,"fbtrace_id":"X"}}`))
	}))
	defer srv.Close()
	_, _, conn := start(t)
	res := meta.New(srv.URL, srv.Client()).Send(context.Background(), conn, []conversion.Conversion{lead("a"), lead("b")})
	for i, r := range res {
		if r.Outcome != conversion.Permanent || r.Message != "HTTP 400: (#100/2804007) Invalid parameter; fbtrace_id X" {
			t.Errorf("result %d = %+v", i, r)
		}
	}
}

func TestSendNonGraphAnswers(t *testing.T) {
	cases := []struct {
		status  int
		header  http.Header
		outcome conversion.Outcome
		retry   time.Duration
	}{
		{502, nil, conversion.Transient, 0},
		{503, http.Header{"Retry-After": {"7"}}, conversion.Transient, 7 * time.Second},
		{404, nil, conversion.Permanent, 0},
	}
	for _, c := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range c.header {
				w.Header()[k] = v
			}
			w.WriteHeader(c.status)
			w.Write([]byte("<html><body>Bad gateway</body></html>"))
		}))
		_, _, conn := start(t)
		r := meta.New(srv.URL, srv.Client()).Send(context.Background(), conn, []conversion.Conversion{lead("a")})[0]
		srv.Close()
		if r.Outcome != c.outcome || r.HTTPStatus != c.status || !strings.Contains(r.Message, "Bad gateway") {
			t.Errorf("HTTP %d: %+v", c.status, r)
		}
		if r.RetryAfter != c.retry {
			t.Errorf("HTTP %d: retry after %s", c.status, r.RetryAfter)
		}
	}
}

func TestSendDuplicateIsStillReceived(t *testing.T) {
	client, fake, conn := start(t)
	for range 2 {
		if r := client.Send(context.Background(), conn, []conversion.Conversion{lead("same")}); r[0].Outcome != conversion.Sent {
			t.Fatalf("%+v", r[0])
		}
	}
	if len(fake.Events()) != 2 || fake.Duplicates() != 1 {
		t.Errorf("%d events, %d duplicates", len(fake.Events()), fake.Duplicates())
	}
}

func TestCheck(t *testing.T) {
	c := meta.New("", nil)
	noValue := purchase("a")
	noValue.Fields.HasRevenue = false
	noCurrency := purchase("a")
	noCurrency.Fields.Currency = ""
	leadNoValue := lead("a")
	unmapped := lead("a")
	unmapped.EventName = ""
	at := func(c conversion.Conversion, d time.Duration) *conversion.Conversion {
		c.Time = now.Add(d)
		return &c
	}
	cases := []struct {
		name      string
		c         *conversion.Conversion
		skip      string
		notBefore time.Time
	}{
		{"fresh", at(purchase("a"), -time.Hour), "", time.Time{}},
		{"six days", at(lead("a"), -6*24*time.Hour), "", time.Time{}},
		{"inside the margin", at(lead("a"), -(7*24*time.Hour - 30*time.Minute)), conversion.SkipOutsideWindow, time.Time{}},
		{"eight days", at(lead("a"), -8*24*time.Hour), conversion.SkipOutsideWindow, time.Time{}},
		{"purchase without value", &noValue, conversion.SkipMissingValue, time.Time{}},
		{"purchase without currency", &noCurrency, conversion.SkipMissingValue, time.Time{}},
		{"lead without value", &leadNoValue, "", time.Time{}},
		{"no event name", &unmapped, conversion.SkipNoMapping, time.Time{}},
		{"a minute ahead", at(lead("a"), time.Minute), "", time.Time{}},
		{"an hour ahead", at(lead("a"), time.Hour), "", now.Add(time.Hour)},
	}
	for _, k := range cases {
		v := c.Check(k.c, now)
		if v.Skip != k.skip || !v.NotBefore.Equal(k.notBefore) || (v.Skip != "" && v.Detail == "") {
			t.Errorf("%s: %+v, want skip %q, not before %v", k.name, v, k.skip, k.notBefore)
		}
	}
}

func TestHasSignal(t *testing.T) {
	c := meta.New("", nil)
	cases := []struct {
		f    event.Fields
		want bool
	}{
		{event.Fields{FBC: fbc}, true},
		{event.Fields{FBP: fbp}, true},
		{event.Fields{EmailSHA256: emailHash}, true},
		{event.Fields{PhoneMetaSHA256: phoneHash}, true},
		{event.Fields{FBC: "IwAR2xYz"}, false}, // a bare fbclid is not an fbc cookie
		{event.Fields{ClientIPAddress: "203.0.113.7", ClientUserAgent: "Mozilla/5.0", EventSourceURL: "https://x.example/"}, false},
		{event.Fields{PhoneSHA256: "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4", GCLID: "x", TTCLID: "y"}, false},
	}
	for i, k := range cases {
		if got := c.HasSignal(&k.f); got != k.want {
			t.Errorf("case %d: %v, want %v", i, got, k.want)
		}
	}
}

func TestSummary(t *testing.T) {
	c := meta.New("", nil)
	p := purchase("evt_1")
	p.Fields.FBP = "garbage"
	s := c.Summary(&p)
	want := fmt.Sprintf("event_name=Purchase event_id=evt_1 event_time=%d user_data{em=86e0b9e5… ph=413ba754… fbc=fb.1.1… fbp=malformed,not-sent client_ip_address client_user_agent} event_source_url custom_data{value=49.99 currency=USD}",
		now.Add(-time.Hour).Unix())
	if s != want {
		t.Errorf("summary\n%s\nwant\n%s", s, want)
	}
	for _, secret := range []string{emailHash, phoneHash, fbc, "203.0.113.7", "Mozilla", token} {
		if strings.Contains(s, secret) {
			t.Errorf("summary carries %q", secret)
		}
	}
}

func TestValidate(t *testing.T) {
	c := meta.New("", nil)
	good := map[string]string{meta.SettingPixelID: pixel, meta.SettingAccessToken: token}
	if err := c.Validate(good); err != nil {
		t.Errorf("good settings: %v", err)
	}
	full := map[string]string{meta.SettingPixelID: pixel, meta.SettingAccessToken: token, meta.SettingAPIVersion: "v25.0",
		meta.SettingTestEventCode: "TEST1", meta.SettingActionSource: "system_generated"}
	if err := c.Validate(full); err != nil {
		t.Errorf("full settings: %v", err)
	}
	cases := []struct {
		settings map[string]string
		want     []string
	}{
		{map[string]string{}, []string{"pixel_id: is required", "access_token: is required"}},
		{map[string]string{meta.SettingPixelID: "px-12", meta.SettingAccessToken: "a b"},
			[]string{"pixel_id: must be", "access_token: must not contain spaces"}},
		{map[string]string{meta.SettingPixelID: pixel, meta.SettingAccessToken: token, meta.SettingAPIVersion: "25"},
			[]string{"api_version: must look like"}},
		{map[string]string{meta.SettingPixelID: pixel, meta.SettingAccessToken: token, meta.SettingActionSource: "web"},
			[]string{"action_source: must be one of"}},
		{map[string]string{meta.SettingPixelID: pixel, meta.SettingAccessToken: token, "pixelid": "1"},
			[]string{"pixelid: unknown setting"}},
	}
	for _, k := range cases {
		err := c.Validate(k.settings)
		for _, w := range k.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v, want %q", k.settings, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	for _, k := range c.Keys() {
		if k.Name == meta.SettingAccessToken && !k.Secret {
			t.Error("access_token is not marked secret")
		}
	}
}

// The form the client sends is what Meta's own examples send: no token in the URL.
func TestTokenNeverInTheURL(t *testing.T) {
	var got *url.URL
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL
		w.Write([]byte(`{"events_received":1,"messages":[],"fbtrace_id":"T"}`))
	}))
	defer srv.Close()
	_, _, conn := start(t)
	r := meta.New(srv.URL, srv.Client()).Send(context.Background(), conn, []conversion.Conversion{lead("a")})[0]
	if r.Outcome != conversion.Sent || got == nil || strings.Contains(got.String(), token) {
		t.Errorf("result %+v, url %v", r, got)
	}
}
