package metafake_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion/meta/metafake"
)

const (
	pixel = "1234567890123456"
	token = "EAAB-token"
	hash  = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func start(t *testing.T) (*metafake.Fake, *httptest.Server) {
	t.Helper()
	fake := metafake.New(metafake.Options{Pixels: map[string]string{pixel: token, "42": "other-token"},
		Now: func() time.Time { return now }})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

type graphError struct {
	Error struct {
		Code      int            `json:"code"`
		Subcode   int            `json:"error_subcode"`
		Message   string         `json:"message"`
		UserMsg   string         `json:"error_user_msg"`
		ErrorData map[string]int `json:"error_data"`
		FBTraceID string         `json:"fbtrace_id"`
	} `json:"error"`
}

// post sends data (a JSON array) as Meta's documented form and decodes the answer.
func post(t *testing.T, srv *httptest.Server, path, tok, data string) (int, graphError, map[string]any) {
	t.Helper()
	form := url.Values{"data": {data}}
	if tok != "" {
		form.Set("access_token", tok)
	}
	resp, err := http.PostForm(srv.URL+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ge graphError
	var ok map[string]any
	json.Unmarshal(body, &ge)
	json.Unmarshal(body, &ok)
	return resp.StatusCode, ge, ok
}

// ev is a valid Lead with one change: key=value (raw JSON), or key deleted when value is "".
func ev(changes ...string) string {
	e := map[string]any{
		"event_name": "Lead", "event_time": now.Add(-time.Hour).Unix(), "event_id": "evt_1",
		"action_source": "system_generated", "user_data": map[string]any{"em": []string{hash}},
	}
	for i := 0; i+1 < len(changes); i += 2 {
		if changes[i+1] == "" {
			delete(e, changes[i])
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(changes[i+1]), &v); err != nil {
			panic(err)
		}
		e[changes[i]] = v
	}
	b, _ := json.Marshal(e)
	return string(b)
}

const path = "/v27.0/" + pixel + "/events"

func TestFakeAcceptsAValidRequest(t *testing.T) {
	fake, srv := start(t)
	status, _, ok := post(t, srv, path, token, "["+ev()+","+ev("event_id", `"evt_2"`, "event_name", `"Purchase"`,
		"custom_data", `{"value":49.99,"currency":"USD"}`, "action_source", `"website"`,
		"event_source_url", `"https://x.example/"`, "user_data",
		`{"ph":"`+hash+`","fbc":"fb.1.1554763741205.AbCd","fbp":"fb.1.1596403881668.1116446470","client_user_agent":"UA","client_ip_address":"2001:db8::1"}`)+"]")
	if status != 200 || ok["events_received"] != float64(2) || ok["fbtrace_id"] == nil {
		t.Fatalf("%d %v", status, ok)
	}
	if r := fake.Requests(); len(r) != 1 || r[0].TokenIn != "form" || r[0].Status != 200 {
		t.Errorf("requests %+v", r)
	}
	if e := fake.Events(); len(e) != 2 || e[1].Name != "Purchase" || e[1].PixelID != pixel {
		t.Errorf("events %+v", e)
	}
	// Token in the query and JSON bodies are accepted too.
	resp, err := http.Post(srv.URL+path+"?access_token="+token, "application/json",
		strings.NewReader(`{"data":[`+ev("event_id", `"evt_3"`)+`],"test_event_code":"TEST1"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("JSON body: %v %v", resp.Status, err)
	}
	resp.Body.Close()
	if r := fake.Requests(); r[1].TokenIn != "query" || r[1].TestEventCode != "TEST1" {
		t.Errorf("request %+v", r[1])
	}
}

func TestFakeRefuses(t *testing.T) {
	_, srv := start(t)
	thousand := make([]string, 1001)
	for i := range thousand {
		thousand[i] = ev("event_id", fmt.Sprintf(`"e%d"`, i))
	}
	cases := []struct {
		name          string
		path, tok     string
		data          string
		code, subcode int
		index         int // -1: no event named
	}{
		{"no token", path, "", "[" + ev() + "]", 104, 0, -1},
		{"unknown token", path, "EAAB-wrong", "[" + ev() + "]", 190, 0, -1},
		{"another pixel's token", path, "other-token", "[" + ev() + "]", 100, 33, -1},
		{"unknown pixel", "/v27.0/999/events", token, "[" + ev() + "]", 100, 33, -1},
		{"old version", "/v19.0/" + pixel + "/events", token, "[" + ev() + "]", 2635, 0, -1},
		{"bad path", "/v27.0/" + pixel + "/event", token, "[" + ev() + "]", 2500, 0, -1},
		{"no data", path, token, "", 100, 0, -1},
		{"empty data", path, token, "[]", 100, 0, -1},
		{"data not an array", path, token, ev(), 100, 0, -1},
		{"1001 events", path, token, "[" + strings.Join(thousand, ",") + "]", 100, 0, -1},
		{"unhashed email", path, token, "[" + ev() + "," + ev("user_data", `{"em":"jane.doe@example.com"}`) + "]", 100, 0, 1},
		{"upper-case hash", path, token, "[" + ev("user_data", `{"em":"`+strings.ToUpper(hash)+`"}`) + "]", 100, 0, 0},
		{"empty user_data", path, token, "[" + ev("user_data", `{}`) + "]", 100, 0, 0},
		{"unknown user_data key", path, token, "[" + ev("user_data", `{"email":"`+hash+`"}`) + "]", 100, 0, 0},
		{"bad fbc", path, token, "[" + ev("user_data", `{"fbc":"IwAR2xYz"}`) + "]", 100, 0, 0},
		{"bad ip", path, token, "[" + ev("user_data", `{"em":"`+hash+`","client_ip_address":"localhost"}`) + "]", 100, 0, 0},
		{"time as text", path, token, "[" + ev("event_time", `"2026-11-26T11:00:00Z"`) + "]", 100, 0, 0},
		{"time in milliseconds", path, token, "[" + ev("event_time", fmt.Sprint(now.UnixMilli())) + "]", 100, 0, 0},
		{"time eight days old", path, token, "[" + ev() + "," + ev("event_time", fmt.Sprint(now.Add(-8*24*time.Hour).Unix())) + "]", 100, 2804003, 1},
		{"no event_name", path, token, "[" + ev("event_name", "") + "]", 100, 0, 0},
		{"no action_source", path, token, "[" + ev("action_source", "") + "]", 100, 0, 0},
		{"unknown action_source", path, token, "[" + ev("action_source", `"web"`) + "]", 100, 0, 0},
		{"website without url", path, token, "[" + ev("action_source", `"website"`, "user_data", `{"em":"`+hash+`","client_user_agent":"UA"}`) + "]", 100, 0, 0},
		{"website without user agent", path, token, "[" + ev("action_source", `"website"`, "event_source_url", `"https://x.example/"`) + "]", 100, 0, 0},
		{"purchase without value", path, token, "[" + ev("event_name", `"Purchase"`) + "]", 100, 2804009, 0},
		{"purchase without currency", path, token, "[" + ev("event_name", `"Purchase"`, "custom_data", `{"value":1}`) + "]", 100, 2804009, 0},
		{"value as text", path, token, "[" + ev("custom_data", `{"value":"1","currency":"USD"}`) + "]", 100, 0, 0},
		{"unknown event key", path, token, "[" + ev("eventname", `"Lead"`) + "]", 100, 0, 0},
		{"event_id a number", path, token, "[" + ev("event_id", `7`) + "]", 100, 0, 0},
	}
	for _, c := range cases {
		status, ge, _ := post(t, srv, c.path, c.tok, c.data)
		e := ge.Error
		if status != 400 || e.Code != c.code || e.Subcode != c.subcode || e.FBTraceID == "" {
			t.Errorf("%s: %d %+v, want 400 code %d/%d", c.name, status, e, c.code, c.subcode)
		}
		got, named := e.ErrorData["event_index"]
		if c.index < 0 && named || c.index >= 0 && (!named || got != c.index) {
			t.Errorf("%s: error_data %v, want event %d", c.name, e.ErrorData, c.index)
		}
	}
}

func TestFakeRefusesOtherMethodsAndBodies(t *testing.T) {
	_, srv := start(t)
	resp, err := http.Get(srv.URL + path + "?access_token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("GET: %d", resp.StatusCode)
	}
	resp, err = http.Post(srv.URL+path, "text/plain", strings.NewReader("data=[]&access_token="+token))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("text/plain: %d", resp.StatusCode)
	}
}

func TestFakeDeduplicates(t *testing.T) {
	fake, srv := start(t)
	for range 2 {
		if status, _, ok := post(t, srv, path, token, "["+ev()+"]"); status != 200 || ok["events_received"] != float64(1) {
			t.Fatalf("%d %v", status, ok)
		}
	}
	// Another event name with the same id is not a duplicate.
	post(t, srv, path, token, "["+ev("event_name", `"Contact"`)+"]")
	if fake.Duplicates() != 1 || len(fake.Events()) != 3 || !fake.Events()[1].Duplicate {
		t.Errorf("%d duplicates in %+v", fake.Duplicates(), fake.Events())
	}
}

func TestFakeDedupWindowIs48Hours(t *testing.T) {
	clock := now
	fake := metafake.New(metafake.Options{Pixels: map[string]string{pixel: token}, Now: func() time.Time { return clock }})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	post(t, srv, path, token, "["+ev()+"]")
	clock = now.Add(49 * time.Hour)
	post(t, srv, path, token, "["+ev("event_time", fmt.Sprint(clock.Add(-time.Hour).Unix()))+"]")
	if fake.Duplicates() != 0 || len(fake.Events()) != 2 {
		t.Errorf("after 49 h: %d duplicates of %d events", fake.Duplicates(), len(fake.Events()))
	}
}

func TestFakeInjectedFailures(t *testing.T) {
	fake, srv := start(t)
	fake.FailNext(1, metafake.RateLimit)
	fake.FailNext(1, metafake.TooManyRequests)
	form := url.Values{"data": {"[" + ev() + "]"}, "access_token": {token}}
	resp, _ := http.PostForm(srv.URL+path, form)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("X-Business-Use-Case-Usage"), `"estimated_time_to_regain_access":1`) {
		t.Errorf("rate limit: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = http.PostForm(srv.URL+path, form)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "60" {
		t.Errorf("429: %d %v", resp.StatusCode, resp.Header)
	}
	if status, _, _ := post(t, srv, path, token, "["+ev()+"]"); status != 200 {
		t.Errorf("after the failures: %d", status)
	}
	fake.SetPartial("evt_9")
	status, ge, _ := post(t, srv, path, token, "["+ev()+","+ev("event_id", `"evt_9"`)+"]")
	if status != 400 || ge.Error.ErrorData["event_index"] != 1 {
		t.Errorf("partial: %d %+v", status, ge)
	}
	if len(fake.Events()) != 1 {
		t.Errorf("a refused request stored events: %+v", fake.Events())
	}
}
