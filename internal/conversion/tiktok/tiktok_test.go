package tiktok_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/conversion/tiktok"
	"github.com/pruuv/pruuv/internal/conversion/tiktok/tiktokfake"
	"github.com/pruuv/pruuv/internal/event"
)

const (
	pixel = "C4ABCDEF1234567890AB"
	token = "tt-secret-token-0123456789"
	// The reference notes' vectors: jane.doe@example.com and +14155550123
	// (E.164 with its "+", TikTok's form).
	emailHash = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
	phoneHash = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4"
	ttclid    = "E.C.P.exampleTtclidValue"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func start(t *testing.T) (*tiktok.Client, *tiktokfake.Fake, conversion.Connection) {
	t.Helper()
	fake := tiktokfake.New(tiktokfake.Options{Pixels: map[string]string{pixel: token}, Now: func() time.Time { return now }})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	conn := conversion.Connection{ID: "conn1", ClientID: "cl1", Platform: conversion.TikTok,
		Settings: map[string]string{tiktok.SettingPixelCode: pixel, tiktok.SettingAccessToken: token}}
	return tiktok.New(srv.URL, srv.Client()), fake, conn
}

// purchase is a conversion carrying every signal TikTok takes.
func purchase(id string) conversion.Conversion {
	return conversion.Conversion{
		EventID: id, StageID: "stg1", EventName: "Purchase",
		Time: now.Add(-time.Hour), ReceivedAt: now.Add(-time.Hour),
		Fields: event.Fields{
			Reference: "CRM-1", TTCLID: ttclid, FBC: "fb.1.1763640000123.IwAR2x",
			EmailSHA256: emailHash, EmailGoogleSHA256: emailHash,
			PhoneSHA256: phoneHash, PhoneMetaSHA256: "413ba75461ab5f99d36820e561ea97e2bd80f9cb586f7ecea6cf4c496518950a",
			ClientIPAddress: "203.0.113.7", ClientUserAgent: "Mozilla/5.0 (iPhone)",
			EventSourceURL: "https://shop.example.com/thanks",
			HasRevenue:     true, RevenueMicros: 49_990_000, Currency: "USD",
		},
	}
}

func lead(id string) conversion.Conversion {
	return conversion.Conversion{EventID: id, StageID: "stg1", EventName: "Lead", Time: now.Add(-2 * time.Hour),
		Fields: event.Fields{Reference: id, TTCLID: ttclid}}
}

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
	conn.Settings[tiktok.SettingTestEventCode] = "TEST12345"
	l := lead("evt_2")
	l.Fields.HasRevenue, l.Fields.RevenueMicros = true, 5_000_000 // no currency: no properties
	res := client.Send(context.Background(), conn, []conversion.Conversion{purchase("evt_1"), l})
	for i, r := range res {
		if r.Outcome != conversion.Sent || r.HTTPStatus != 200 || !strings.HasPrefix(r.Message, "code 0: OK; request_id ") {
			t.Errorf("result %d = %+v, want Sent", i, r)
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != "/open_api/v1.3/event/track/" || r.Token != token || r.ContentType != "application/json" {
		t.Errorf("request %s %s, token %q, content type %q", r.Method, r.Path, r.Token, r.ContentType)
	}
	want := fmt.Sprintf(`{"event_source":"web","event_source_id":"%s","test_event_code":"TEST12345","data":[
	 {"event":"Purchase","event_time":%d,"event_id":"evt_1",
	  "user":{"ttclid":"%s","email":"%s","phone":"%s","ip":"203.0.113.7","user_agent":"Mozilla/5.0 (iPhone)"},
	  "properties":{"value":49.99,"currency":"USD"},
	  "page":{"url":"https://shop.example.com/thanks"}},
	 {"event":"Lead","event_time":%d,"event_id":"evt_2","user":{"ttclid":"%s"}}
	]}`, pixel, now.Add(-time.Hour).Unix(), ttclid, emailHash, phoneHash, now.Add(-2*time.Hour).Unix(), ttclid)
	if got, want := decoded(t, r.Body), decoded(t, []byte(want)); !reflect.DeepEqual(got, want) {
		t.Errorf("body =\n%s\nwant\n%v", r.Body, want)
	}
	if e := fake.Events(); len(e) != 2 || e[0].TestEventCode != "TEST12345" || e[1].PixelCode != pixel {
		t.Errorf("events %+v", e)
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
	res = client.Send(context.Background(), conn, batch)
	if len(res) != 1001 || res[1000].Outcome != conversion.Sent || len(fake.Requests()) != 3 {
		t.Fatalf("%d results, last %+v, %d requests", len(res), res[len(res)-1], len(fake.Requests()))
	}
}

func TestSendFailures(t *testing.T) {
	cases := []struct {
		kind       tiktokfake.Kind
		outcome    conversion.Outcome
		status     int
		message    string
		retryAfter time.Duration
	}{
		{tiktokfake.ServerError, conversion.Transient, 502, "HTTP 502: <html><body><h1>502 Bad Gateway", 0},
		{tiktokfake.TooManyRequests, conversion.Transient, 429, "HTTP 429", time.Minute},
		{tiktokfake.RateLimit, conversion.Transient, 200, "code 40100: Too many requests", 0},
		{tiktokfake.SystemError, conversion.Transient, 200, "code 50000", 0},
		{tiktokfake.AuthError, conversion.Permanent, 200, "code 40105: Access token is incorrect", 0},
		{tiktokfake.ValidationError, conversion.Permanent, 200, "code 40002: data: Invalid value.", 0},
		{tiktokfake.Hang, conversion.Transient, 0, "no answer", 0},
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
		if r := client.Send(context.Background(), conn, []conversion.Conversion{purchase("a")}); r[0].Outcome != conversion.Sent {
			t.Errorf("kind %d: retry = %+v", c.kind, r[0])
		}
	}
}

func TestSendWrongCredentials(t *testing.T) {
	client, _, conn := start(t)
	conn.Settings[tiktok.SettingAccessToken] = "tt-unknown"
	r := client.Send(context.Background(), conn, []conversion.Conversion{lead("a")})[0]
	if r.Outcome != conversion.Permanent || !strings.Contains(r.Message, "code 40105") {
		t.Errorf("unknown token: %+v", r)
	}
	conn.Settings[tiktok.SettingAccessToken] = token
	conn.Settings[tiktok.SettingPixelCode] = "C4OTHER"
	r = client.Send(context.Background(), conn, []conversion.Conversion{lead("a")})[0]
	if r.Outcome != conversion.Permanent || !strings.Contains(r.Message, "code 40001: No permission to operate pixel code: C4OTHER") {
		t.Errorf("another pixel: %+v", r)
	}
	delete(conn.Settings, tiktok.SettingPixelCode)
	r = client.Send(context.Background(), conn, []conversion.Conversion{lead("a")})[0]
	if r.Outcome != conversion.Permanent || r.HTTPStatus != 0 || !strings.Contains(r.Message, "pixel_code: is required") {
		t.Errorf("no pixel: %+v", r)
	}
}

func TestSendAttributesARefusedEvent(t *testing.T) {
	client, fake, conn := start(t)
	fake.SetPartial("b")
	batch := []conversion.Conversion{lead("a"), lead("b"), lead("c")}
	res := client.Send(context.Background(), conn, batch)
	want := []conversion.Outcome{conversion.Transient, conversion.Permanent, conversion.Transient}
	for i, r := range res {
		if r.Outcome != want[i] || r.HTTPStatus != 200 {
			t.Errorf("result %d = %+v, want outcome %d", i, r, want[i])
		}
	}
	if !strings.Contains(res[2].Message, "because of event b") || !strings.Contains(res[1].Message, "code 40002: Batch.1.event_id") {
		t.Errorf("messages: %q, %q", res[2].Message, res[1].Message)
	}
	res = client.Send(context.Background(), conn, []conversion.Conversion{batch[0], batch[2]})
	if res[0].Outcome != conversion.Sent || res[1].Outcome != conversion.Sent {
		t.Errorf("resend: %+v", res)
	}
	// An event older than TikTok takes (were the 28 days wrong) is attributed too.
	old := lead("d")
	old.Time = now.Add(-29 * 24 * time.Hour)
	res = client.Send(context.Background(), conn, []conversion.Conversion{lead("e"), old})
	if res[0].Outcome != conversion.Transient || res[1].Outcome != conversion.Permanent || !strings.Contains(res[1].Message, "Batch.1.event_time") {
		t.Errorf("stale event: %+v", res)
	}
}

func TestSendNonJSONAnswers(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		outcome conversion.Outcome
	}{
		{200, "<html>maintenance</html>", conversion.Transient},
		{200, `{"message":"no code"}`, conversion.Transient},
		{404, `{"code":40400,"message":"Not Found"}`, conversion.Permanent},
		{503, "", conversion.Transient},
	}
	for _, c := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			w.Write([]byte(c.body))
		}))
		_, _, conn := start(t)
		r := tiktok.New(srv.URL, srv.Client()).Send(context.Background(), conn, []conversion.Conversion{lead("a")})[0]
		srv.Close()
		if r.Outcome != c.outcome || r.HTTPStatus != c.status || !strings.HasPrefix(r.Message, fmt.Sprintf("HTTP %d: ", c.status)) {
			t.Errorf("HTTP %d %q: %+v", c.status, c.body, r)
		}
	}
}

func TestSendDuplicateIsStillAccepted(t *testing.T) {
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
	c := tiktok.New("", nil)
	unmapped := lead("a")
	unmapped.EventName = ""
	noValue := purchase("a")
	noValue.Fields.HasRevenue = false
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
		{"eight days", at(lead("a"), -8*24*time.Hour), "", time.Time{}},
		{"27 days", at(lead("a"), -27*24*time.Hour), "", time.Time{}},
		{"inside the margin", at(lead("a"), -(28*24*time.Hour - 30*time.Minute)), conversion.SkipOutsideWindow, time.Time{}},
		{"29 days", at(lead("a"), -29*24*time.Hour), conversion.SkipOutsideWindow, time.Time{}},
		{"purchase without value", &noValue, "", time.Time{}},
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
	c := tiktok.New("", nil)
	cases := []struct {
		f    event.Fields
		want bool
	}{
		{event.Fields{TTCLID: ttclid}, true},
		{event.Fields{EmailSHA256: emailHash}, true},
		{event.Fields{PhoneSHA256: phoneHash}, true},
		{event.Fields{ClientIPAddress: "203.0.113.7", ClientUserAgent: "Mozilla/5.0"}, false},
		{event.Fields{PhoneMetaSHA256: "413ba75461ab5f99d36820e561ea97e2bd80f9cb586f7ecea6cf4c496518950a", FBC: "fb.1.1763640000123.x", GCLID: "g"}, false},
	}
	for i, k := range cases {
		if got := c.HasSignal(&k.f); got != k.want {
			t.Errorf("case %d: %v, want %v", i, got, k.want)
		}
	}
}

func TestSummary(t *testing.T) {
	c := tiktok.New("", nil)
	p := purchase("evt_1")
	s := c.Summary(&p)
	want := fmt.Sprintf("event=Purchase event_id=evt_1 event_time=%d user{ttclid=E.C.P.… email=86e0b9e5… phone=36a2cef4… ip user_agent} properties{value=49.99 currency=USD} page{url}",
		now.Add(-time.Hour).Unix())
	if s != want {
		t.Errorf("summary\n%s\nwant\n%s", s, want)
	}
	for _, secret := range []string{emailHash, phoneHash, ttclid, "203.0.113.7", "Mozilla", token, "shop.example.com"} {
		if strings.Contains(s, secret) {
			t.Errorf("summary carries %q", secret)
		}
	}
}

func TestValidate(t *testing.T) {
	c := tiktok.New("", nil)
	if err := c.Validate(map[string]string{tiktok.SettingPixelCode: pixel, tiktok.SettingAccessToken: token,
		tiktok.SettingTestEventCode: "TEST1"}); err != nil {
		t.Errorf("good settings: %v", err)
	}
	cases := []struct {
		settings map[string]string
		want     []string
	}{
		{map[string]string{}, []string{"pixel_code: is required", "access_token: is required"}},
		{map[string]string{tiktok.SettingPixelCode: "C4-AB", tiktok.SettingAccessToken: "a b"},
			[]string{"pixel_code: must be", "access_token: must not contain spaces"}},
		{map[string]string{tiktok.SettingPixelCode: pixel, tiktok.SettingAccessToken: token, "pixel_id": "1"},
			[]string{"pixel_id: unknown setting"}},
	}
	for _, k := range cases {
		err := c.Validate(k.settings)
		for _, w := range k.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v, want %q", k.settings, err, w)
			}
		}
	}
	for _, k := range c.Keys() {
		if k.Name == tiktok.SettingAccessToken && !k.Secret {
			t.Error("access_token is not marked secret")
		}
	}
}
