package tiktokfake_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion/tiktok/tiktokfake"
)

const (
	pixel = "C4ABCDEF1234567890AB"
	token = "tt-token"
	hash  = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func start(t *testing.T) (*tiktokfake.Fake, *httptest.Server) {
	t.Helper()
	fake := tiktokfake.New(tiktokfake.Options{Pixels: map[string]string{pixel: token, "C4OTHER": "other-token"},
		Now: func() time.Time { return now }})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

type reply struct {
	Code      int             `json:"code"`
	Message   string          `json:"message"`
	RequestID string          `json:"request_id"`
	Data      json.RawMessage `json:"data"`
}

func post(t *testing.T, srv *httptest.Server, path, tok, contentType, body string) (int, reply) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Access-Token", tok)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r reply
	json.Unmarshal(b, &r)
	return resp.StatusCode, r
}

// obj is a JSON object with changes applied: key=value (raw JSON), or key
// deleted when value is "".
func obj(base map[string]any, changes ...string) string {
	m := map[string]any{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(changes); i += 2 {
		if changes[i+1] == "" {
			delete(m, changes[i])
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(changes[i+1]), &v); err != nil {
			panic(changes[i+1])
		}
		m[changes[i]] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func ev(changes ...string) string {
	return obj(map[string]any{"event": "Lead", "event_time": now.Add(-time.Hour).Unix(), "event_id": "evt_1",
		"user": map[string]any{"ttclid": "E.C.P.x", "email": hash}}, changes...)
}

func body(events string, changes ...string) string {
	return obj(map[string]any{"event_source": "web", "event_source_id": pixel, "data": json.RawMessage(events)}, changes...)
}

func TestFakeAcceptsAValidRequest(t *testing.T) {
	fake, srv := start(t)
	status, r := post(t, srv, tiktokfake.Path, token, "application/json", body("["+ev()+","+ev("event_id", `"evt_2"`,
		"event", `"Purchase"`, "user", `{"phone":["`+hash+`"],"ip":"2001:db8::1","user_agent":"UA"}`,
		"properties", `{"value":49.99,"currency":"USD"}`, "page", `{"url":"https://x.example/"}`)+"]", "test_event_code", `"TEST1"`))
	if status != 200 || r.Code != 0 || r.Message != "OK" || r.RequestID == "" || string(r.Data) != "{}" {
		t.Fatalf("%d %+v", status, r)
	}
	e := fake.Events()
	if len(e) != 2 || e[1].Name != "Purchase" || e[1].ID != "evt_2" || e[1].PixelCode != pixel || e[1].TestEventCode != "TEST1" {
		t.Errorf("events %+v", e)
	}
	if rq := fake.Requests(); len(rq) != 1 || rq[0].Token != token || rq[0].Code != 0 || rq[0].Status != 200 {
		t.Errorf("requests %+v", rq)
	}
}

func TestFakeRefuses(t *testing.T) {
	_, srv := start(t)
	thousand := make([]string, 1001)
	for i := range thousand {
		thousand[i] = ev("event_id", fmt.Sprintf(`"e%d"`, i))
	}
	one := "[" + ev() + "]"
	cases := []struct {
		name, tok, ct, body string
		code                int
		message             string
	}{
		{"no token", "", "application/json", body(one), 40105, "Access token is null"},
		{"unknown token", "tt-wrong", "application/json", body(one), 40105, "incorrect"},
		{"another pixel's token", "other-token", "application/json", body(one), 40001, "No permission to operate pixel code: " + pixel},
		{"unknown pixel", token, "application/json", body(one, "event_source_id", `"C4NOPE"`), 40001, "C4NOPE"},
		{"form body", token, "application/x-www-form-urlencoded", body(one), 40002, "Content-Type"},
		{"not JSON", token, "application/json", "data=[]", 40002, "not a JSON object"},
		{"no event_source", token, "application/json", body(one, "event_source", ""), 40002, "event_source: Missing"},
		{"bad event_source", token, "application/json", body(one, "event_source", `"website"`), 40002, "event_source: Must be one of"},
		{"no pixel", token, "application/json", body(one, "event_source_id", ""), 40002, "event_source_id: Missing"},
		{"unknown top field", token, "application/json", body(one, "pixel_code", `"x"`), 40002, "pixel_code: Unknown field."},
		{"no data", token, "application/json", body(one, "data", ""), 40002, "data: Missing"},
		{"empty data", token, "application/json", body("[]"), 40002, "data: Length must be between 1 and 1000."},
		{"1001 events", token, "application/json", body("[" + strings.Join(thousand, ",") + "]"), 40002, "data: Length"},
		{"unhashed email", token, "application/json", body("[" + ev() + "," + ev("user", `{"email":"jane.doe@example.com"}`) + "]"), 40002, "Batch.1.user.email: Must be a SHA-256"},
		{"unhashed phone", token, "application/json", body("[" + ev("user", `{"phone":"+14155550123"}`) + "]"), 40002, "Batch.0.user.phone"},
		{"upper-case hash", token, "application/json", body("[" + ev("user", `{"email":"`+strings.ToUpper(hash)+`"}`) + "]"), 40002, "Batch.0.user.email"},
		{"bad ip", token, "application/json", body("[" + ev("user", `{"ttclid":"x","ip":"1.2.3"}`) + "]"), 40002, "Batch.0.user.ip"},
		{"unknown user field", token, "application/json", body("[" + ev("user", `{"click_id":"x"}`) + "]"), 40002, "Batch.0.user.click_id: Unknown field."},
		{"time as text", token, "application/json", body("[" + ev("event_time", `"2026-11-26T11:00:00Z"`) + "]"), 40002, "Batch.0.event_time: Not a valid integer."},
		{"time in milliseconds", token, "application/json", body("[" + ev("event_time", fmt.Sprint(now.UnixMilli())) + "]"), 40002, "Batch.0.event_time: Event time must not be in the future."},
		{"time 29 days old", token, "application/json", body("[" + ev() + "," + ev() + "," + ev("event_time", fmt.Sprint(now.Add(-29*24*time.Hour).Unix())) + "]"), 40002, "Batch.2.event_time: Event time must be within the last 28 days."},
		{"no event", token, "application/json", body("[" + ev("event", "") + "]"), 40002, "Batch.0.event: Missing"},
		{"event_id a number", token, "application/json", body("[" + ev("event_id", "7") + "]"), 40002, "Batch.0.event_id"},
		{"value as text", token, "application/json", body("[" + ev("properties", `{"value":"1","currency":"USD"}`) + "]"), 40002, "Batch.0.properties.value"},
		{"lower-case currency", token, "application/json", body("[" + ev("properties", `{"value":1,"currency":"usd"}`) + "]"), 40002, "Batch.0.properties.currency"},
		{"unknown event field", token, "application/json", body("[" + ev("timestamp", `"x"`) + "]"), 40002, "Batch.0.timestamp: Unknown field."},
	}
	for _, c := range cases {
		status, r := post(t, srv, tiktokfake.Path, c.tok, c.ct, c.body)
		if status != 200 || r.Code != c.code || !strings.Contains(r.Message, c.message) || r.RequestID == "" {
			t.Errorf("%s: %d %+v, want code %d with %q", c.name, status, r, c.code, c.message)
		}
	}
}

func TestFakeRoutes(t *testing.T) {
	_, srv := start(t)
	if status, _ := post(t, srv, "/open_api/v1.3/pixel/track/", token, "application/json", body("["+ev()+"]")); status != 404 {
		t.Errorf("Events 1.0 path: %d", status)
	}
	if status, _ := post(t, srv, "/open_api/v1.3/event/track", token, "application/json", body("["+ev()+"]")); status != 404 {
		t.Errorf("no trailing slash: %d", status)
	}
	resp, err := http.Get(srv.URL + tiktokfake.Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}

func TestFakeDeduplicates(t *testing.T) {
	clock := now
	fake := tiktokfake.New(tiktokfake.Options{Pixels: map[string]string{pixel: token}, Now: func() time.Time { return clock }})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	send := func() {
		t.Helper()
		if _, r := post(t, srv, tiktokfake.Path, token, "application/json",
			body("["+ev("event_time", fmt.Sprint(clock.Add(-time.Minute).Unix()))+"]")); r.Code != 0 {
			t.Fatalf("%+v", r)
		}
	}
	send()
	send()
	clock = now.Add(49 * time.Hour)
	send()
	if e := fake.Events(); len(e) != 3 || fake.Duplicates() != 1 || !e[1].Duplicate || e[2].Duplicate {
		t.Errorf("%d duplicates in %+v", fake.Duplicates(), e)
	}
}

func TestFakeInjectedFailures(t *testing.T) {
	fake, srv := start(t)
	fake.FailNext(1, tiktokfake.TooManyRequests)
	fake.FailNext(1, tiktokfake.RateLimit)
	req, _ := http.NewRequest("POST", srv.URL+tiktokfake.Path, strings.NewReader(body("["+ev()+"]")))
	req.Header.Set("Access-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" {
		t.Errorf("429: %d %v", resp.StatusCode, resp.Header)
	}
	if _, r := post(t, srv, tiktokfake.Path, token, "application/json", body("["+ev()+"]")); r.Code != 40100 {
		t.Errorf("rate limit: %+v", r)
	}
	fake.SetPartial("evt_9")
	if _, r := post(t, srv, tiktokfake.Path, token, "application/json", body("["+ev()+","+ev("event_id", `"evt_9"`)+"]")); r.Code != 40002 ||
		!strings.HasPrefix(r.Message, "Batch.1.") {
		t.Errorf("partial: %+v", r)
	}
	if len(fake.Events()) != 0 {
		t.Errorf("refused requests stored events: %+v", fake.Events())
	}
	fake.SetPartial()
	if _, r := post(t, srv, tiktokfake.Path, token, "application/json", body("["+ev()+","+ev("event_id", `"evt_9"`)+"]")); r.Code != 0 {
		t.Errorf("after clearing: %+v", r)
	}
}
