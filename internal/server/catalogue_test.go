package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// The Webhook API's fixed bodies.
const (
	wantUnauthorized = `{"error":"Unauthorized"}`
	wantNotFound     = `{"error":"Stage not found"}`
	wantTooLarge     = `{"error":"Payload too large"}`
	wantBadMethod    = `{"error":"Method not allowed"}`
)

// notJSON ends a details message that is matched as a prefix: the parser's
// reason follows it.
const notJSON = "is not valid JSON: …"

// webhookFields is the seed page's payload reference, in its order.
var webhookFields = []string{
	"reference", "item_reference", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
	"gclid", "wbraid", "gbraid", "ttclid", "msclkid", "fbc", "fbp", "click_timestamp", "revenue_value",
	"currency", "data_timestamp", "gender", "age_range", "location_country", "location_region", "job_title",
	"company_size", "industry",
}

// malformed is one request of the catalogue and the one answer it must get.
type malformed struct {
	name   string
	method string   // POST when empty
	stage  string   // the Lead stage when empty
	auth   []string // Authorization header values; nil means Lead's valid token
	body   []byte

	status  int
	want    string              // the exact body, unless details is set
	details map[string][]string // for 400: the exact details; a message ending in … is a prefix
}

// payload is a body with a reference and name set to the raw JSON value (or
// the reference itself set to it).
func payload(name, raw string) []byte {
	if name == "reference" {
		return []byte(`{"reference":` + raw + `}`)
	}
	return []byte(`{"reference":"catalogue-1","` + name + `":` + raw + `}`)
}

// padded returns a JSON object of exactly n bytes: fields, then an ignored
// padding field.
func padded(fields string, n int) []byte {
	head := `{` + fields + `"pad":"`
	return []byte(head + strings.Repeat("p", n-len(head)-2) + `"}`)
}

func details(kv ...string) map[string][]string {
	d := map[string][]string{}
	for i := 0; i < len(kv); i += 2 {
		d[kv[i]] = append(d[kv[i]], kv[i+1])
	}
	return d
}

func catalogue(lead, other pruuvtest.Stage) []malformed {
	tok := lead.WebhookToken
	valid := []byte(`{"reference":"catalogue-valid","gclid":"g","revenue_value":250,"currency":"GBP"}`)
	bad := func(b byte) byte { // another base62 character: the checksum no longer matches
		if b == 'A' {
			return 'B'
		}
		return 'A'
	}
	badChecksum := tok[:len(tok)-1] + string(bad(tok[len(tok)-1]))
	badSecret := tok[:15] + string(bad(tok[15])) + tok[16:]
	none := []string{}
	mib := bytes.Repeat([]byte("a"), 1<<20)
	copy(mib, `{"reference":"big","pad":"`)
	mib[len(mib)-2], mib[len(mib)-1] = '"', '}'

	cs := []malformed{
		// Authentication: a valid body, so a wrongly accepted token would store it.
		{name: "no Authorization", auth: none, body: valid, status: 401, want: wantUnauthorized},
		{name: "Basic", auth: []string{"Basic dXNlcjpwYXNz"}, body: valid, status: 401, want: wantUnauthorized},
		{name: "Basic with the token", auth: []string{"Basic " + tok}, body: valid, status: 401, want: wantUnauthorized},
		{name: "Bearer alone", auth: []string{"Bearer"}, body: valid, status: 401, want: wantUnauthorized},
		{name: "Bearer and a space", auth: []string{"Bearer "}, body: valid, status: 401, want: wantUnauthorized},
		{name: "empty header", auth: []string{""}, body: valid, status: 401, want: wantUnauthorized},
		{name: "token without scheme", auth: []string{tok}, body: valid, status: 401, want: wantUnauthorized},
		{name: "scheme glued to token", auth: []string{"Bearer" + tok}, body: valid, status: 401, want: wantUnauthorized},
		{name: "Token scheme", auth: []string{"Token " + tok}, body: valid, status: 401, want: wantUnauthorized},
		{name: "two Authorization headers", auth: []string{"Bearer " + tok, "Bearer " + tok}, body: valid, status: 401, want: wantUnauthorized},
		{name: "two Authorization headers, one valid", auth: []string{"Bearer " + tok, "Basic dXNlcjpwYXNz"}, body: valid, status: 401, want: wantUnauthorized},
		{name: "token and extra words", auth: []string{"Bearer " + tok + " extra"}, body: valid, status: 401, want: wantUnauthorized},
		{name: "quoted token", auth: []string{`Bearer "` + tok + `"`}, body: valid, status: 401, want: wantUnauthorized},
		{name: "bad checksum", auth: []string{"Bearer " + badChecksum}, body: valid, status: 401, want: wantUnauthorized},
		{name: "changed secret", auth: []string{"Bearer " + badSecret}, body: valid, status: 401, want: wantUnauthorized},
		{name: "truncated token", auth: []string{"Bearer " + tok[:len(tok)-1]}, body: valid, status: 401, want: wantUnauthorized},
		{name: "upper-cased token", auth: []string{"Bearer " + strings.ToUpper(tok)}, body: valid, status: 401, want: wantUnauthorized},
		{name: "another stage's token", auth: []string{"Bearer " + other.WebhookToken}, body: valid, status: 401, want: wantUnauthorized},
		{name: "token before body: 1 MiB", auth: []string{"Bearer " + badChecksum}, body: mib, status: 401, want: wantUnauthorized},

		// The scheme is case-insensitive and may be followed by several spaces:
		// these pass authentication and stop at the missing reference.
		{name: "lower-case bearer", auth: []string{"bearer " + tok}, body: []byte(`{}`), status: 400, details: details("reference", "is required")},
		{name: "upper-case BEARER", auth: []string{"BEARER " + tok}, body: []byte(`{}`), status: 400, details: details("reference", "is required")},
		{name: "several spaces", auth: []string{"Bearer   " + tok}, body: []byte(`{}`), status: 400, details: details("reference", "is required")},

		// The stage is looked up first, whatever the token.
		{name: "unknown stage, valid token", stage: "stg_0000000000000000000000", body: valid, status: 404, want: wantNotFound},
		{name: "unknown stage, no token", stage: "stg_0000000000000000000000", auth: none, body: valid, status: 404, want: wantNotFound},
		{name: "unknown stage, bad token", stage: "stg_0000000000000000000000", auth: []string{"Basic x"}, body: []byte(`nonsense`), status: 404, want: wantNotFound},
		{name: "unknown stage, Lead id with its last character changed", stage: lead.ID[:len(lead.ID)-1] + string(bad(lead.ID[len(lead.ID)-1])), body: valid, status: 404, want: wantNotFound},
		{name: "unknown stage, lower-cased id", stage: strings.ToLower(lead.ID) + "x", body: valid, status: 404, want: wantNotFound},
		{name: "unknown stage, SQL", stage: `stg_' OR '1'='1`, body: valid, status: 404, want: wantNotFound},
		{name: "unknown stage, long id", stage: strings.Repeat("s", 2000), body: valid, status: 404, want: wantNotFound},
		{name: "unknown stage, unicode id", stage: "stg_é🙂", body: valid, status: 404, want: wantNotFound},
		{name: "unknown stage, 1 MiB", stage: "stg_0000000000000000000000", body: mib, status: 404, want: wantNotFound},

		// Methods other than POST.
		{name: "GET", method: http.MethodGet, status: 405, want: wantBadMethod},
		{name: "PUT", method: http.MethodPut, body: valid, status: 405, want: wantBadMethod},
		{name: "DELETE", method: http.MethodDelete, status: 405, want: wantBadMethod},
		{name: "PATCH", method: http.MethodPatch, body: valid, status: 405, want: wantBadMethod},
		{name: "GET without token", method: http.MethodGet, auth: none, status: 405, want: wantBadMethod},

		// Bodies that are not one JSON object.
		{name: "empty body", body: nil, status: 400, details: details("body", "is empty; send a JSON object")},
		{name: "whitespace body", body: []byte(" \r\n\t "), status: 400, details: details("body", "is empty; send a JSON object")},
		{name: "form encoded", body: []byte("reference=CRM-1&gclid=x"), status: 400, details: details("body", notJSON)},
		{name: "plain text", body: []byte("hello"), status: 400, details: details("body", notJSON)},
		{name: "truncated JSON", body: []byte(`{"reference":"a"`), status: 400, details: details("body", notJSON)},
		{name: "trailing comma", body: []byte(`{"reference":"a",}`), status: 400, details: details("body", notJSON)},
		{name: "two objects", body: []byte(`{"reference":"a"}{"reference":"b"}`), status: 400, details: details("body", notJSON)},
		{name: "object then garbage", body: []byte(`{"reference":"a"} x`), status: 400, details: details("body", notJSON)},
		{name: "byte order mark", body: []byte("\ufeff{\"reference\":\"a\"}"), status: 400, details: details("body", notJSON)},
		{name: "NaN revenue", body: payload("revenue_value", "NaN"), status: 400, details: details("body", notJSON)},
		{name: "Infinity revenue", body: payload("revenue_value", "Infinity"), status: 400, details: details("body", notJSON)},
		{name: "hex revenue", body: payload("revenue_value", "0x10"), status: 400, details: details("body", notJSON)},
		{name: "JSON array", body: []byte(`[{"reference":"a"}]`), status: 400, details: details("body", "must be a JSON object")},
		{name: "empty JSON array", body: []byte(`[]`), status: 400, details: details("body", "must be a JSON object")},
		{name: "JSON string", body: []byte(`"reference"`), status: 400, details: details("body", "must be a JSON object")},
		{name: "JSON number", body: []byte(`42`), status: 400, details: details("body", "must be a JSON object")},
		{name: "JSON null", body: []byte(`null`), status: 400, details: details("body", "must be a JSON object")},
		{name: "JSON true", body: []byte(`true`), status: 400, details: details("body", "must be a JSON object")},
		{name: "invalid UTF-8", body: []byte("{\"reference\":\"caf\xe9\"}"), status: 400, details: details("body", "must be valid UTF-8")},
		{name: "invalid UTF-8 in an unknown field", body: []byte("{\"reference\":\"a\",\"x\":\"\xff\xfe\"}"), status: 400, details: details("body", "must be valid UTF-8")},
		{name: "encoded surrogate", body: []byte("{\"reference\":\"\xed\xa0\x80\"}"), status: 400, details: details("body", "must be valid UTF-8")},
		{name: "nesting past the parser's limit", body: []byte(`{"reference":"a","x":` + strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001) + `}`), status: 400, details: details("body", notJSON)},

		// The reference.
		{name: "no reference", body: []byte(`{}`), status: 400, details: details("reference", "is required")},
		{name: "null reference", body: payload("reference", "null"), status: 400, details: details("reference", "is required")},
		{name: "empty reference", body: payload("reference", `""`), status: 400, details: details("reference", "must not be empty")},
		{name: "Reference in another case", body: []byte(`{"Reference":"a","REFERENCE":"b"}`), status: 400, details: details("reference", "is required")},
		{name: "reference nested", body: []byte(`{"data":{"reference":"a"}}`), status: 400, details: details("reference", "is required")},
		{name: "reference too long", body: payload("reference", `"`+strings.Repeat("r", 256)+`"`), status: 400, details: details("reference", "must be at most 255 bytes")},
		{name: "reference with a newline", body: payload("reference", `"a\nb"`), status: 400, details: details("reference", "must not contain control characters")},
		{name: "reference with NUL", body: payload("reference", `"a\u0000b"`), status: 400, details: details("reference", "must not contain control characters")},
		{name: "gclid too long", body: payload("gclid", `"`+strings.Repeat("g", 513)+`"`), status: 400, details: details("gclid", "must be at most 512 bytes")},
		{name: "utm_campaign too long", body: payload("utm_campaign", `"`+strings.Repeat("c", 1025)+`"`), status: 400, details: details("utm_campaign", "must be at most 1024 bytes")},

		// Duplicate keys.
		{name: "reference twice", body: []byte(`{"reference":"a","reference":"b"}`), status: 400, details: details("reference", "is given more than once")},
		{name: "reference twice, escaped", body: []byte(`{"reference":"a","refer\u0065nce":"a"}`), status: 400, details: details("reference", "is given more than once")},
		{name: "gclid twice", body: []byte(`{"reference":"a","gclid":"x","gclid":"x"}`), status: 400, details: details("gclid", "is given more than once")},
		{name: "revenue twice", body: []byte(`{"reference":"a","revenue_value":1,"revenue_value":2}`), status: 400, details: details("revenue_value", "is given more than once")},

		// Currency.
		{name: "unknown currency", body: payload("currency", `"ZZZ"`), status: 400, details: details("currency", "must be an ISO 4217 currency code, e.g. GBP")},
		{name: "withdrawn currency", body: payload("currency", `"HRK"`), status: 400, details: details("currency", "must be an ISO 4217 currency code, e.g. GBP")},
		{name: "currency symbol", body: payload("currency", `"£"`), status: 400, details: details("currency", "must be an ISO 4217 currency code, e.g. GBP")},
		{name: "currency with space", body: payload("currency", `"GBP "`), status: 400, details: details("currency", "must be an ISO 4217 currency code, e.g. GBP")},

		// Numbers out of range.
		{name: "revenue negative", body: payload("revenue_value", "-1"), status: 400, details: details("revenue_value", "must not be negative")},
		{name: "revenue 1e12+1", body: payload("revenue_value", "1000000000001"), status: 400, details: details("revenue_value", "must be at most 1000000000000")},
		{name: "revenue 1e13", body: payload("revenue_value", "1e13"), status: 400, details: details("revenue_value", "must be at most 1000000000000")},
		{name: "revenue 1e400", body: payload("revenue_value", "1e400"), status: 400, details: details("revenue_value", "must be at most 1000000000000")},
		{name: "revenue 1e999999999", body: payload("revenue_value", "1e999999999"), status: 400, details: details("revenue_value", "must be at most 1000000000000")},
		{name: "revenue 2^64", body: payload("revenue_value", "18446744073709551616"), status: 400, details: details("revenue_value", "must be at most 1000000000000")},

		// Every error at once.
		{
			name:   "several fields wrong",
			body:   []byte(`{"reference":7,"utm_source":["g"],"revenue_value":"250","currency":"ZZZ","click_timestamp":"2024-01-01","gender":"` + strings.Repeat("x", 256) + `"}`),
			status: 400,
			details: details("reference", "must be a string", "utm_source", "must be a string", "revenue_value", "must be a number",
				"currency", "must be an ISO 4217 currency code, e.g. GBP", "click_timestamp", timeMsg, "gender", "must be at most 255 bytes"),
		},

		// Size: the limit is 64 KiB, inclusive.
		{name: "exactly 64 KiB without reference", body: padded(``, 64<<10), status: 400, details: details("reference", "is required")},
		{name: "exactly 64 KiB with a bad field", body: padded(`"reference":"big","gclid":1,`, 64<<10), status: 400, details: details("gclid", "must be a string")},
		{name: "64 KiB and one byte", body: padded(`"reference":"big",`, 64<<10+1), status: 413, want: wantTooLarge},
		{name: "1 MiB", body: mib, status: 413, want: wantTooLarge},
	}

	// Non-ISO and out-of-range dates for both timestamps.
	for _, name := range []string{"click_timestamp", "data_timestamp"} {
		for _, v := range []string{"2024-01-01", "01/02/2024", "2024-01-01 10:00:00Z", "2024-01-01T10:00:00", "2024-01-01T10:00:00+0100",
			"Mon, 01 Jan 2024 10:00:00 GMT", "1704103200", "2024-02-30T10:00:00Z"} {
			cs = append(cs, malformed{name: name + " " + v, body: payload(name, `"`+v+`"`), status: 400, details: details(name, timeMsg)})
		}
		cs = append(cs,
			malformed{name: name + " unix number", body: payload(name, "1704103200"), status: 400, details: details(name, "must be a string")},
			malformed{name: name + " in the future", body: payload(name, `"2099-01-01T00:00:00Z"`), status: 400, details: details(name, "must not be in the future")})
	}

	// The wrong JSON type for every field, alone and all at once.
	all := map[string][]string{}
	var allBody []string
	for _, name := range webhookFields {
		wrong, msg := []string{`123`, `{"v":"x"}`, `true`}, "must be a string"
		if name == "revenue_value" {
			wrong, msg = []string{`"250"`, `[250]`, `false`}, "must be a number"
		}
		for _, raw := range wrong {
			cs = append(cs, malformed{name: "wrong type " + name + " " + raw, body: payload(name, raw), status: 400, details: details(name, msg)})
		}
		all[name] = []string{msg}
		allBody = append(allBody, `"`+name+`":`+wrong[0])
	}
	cs = append(cs, malformed{name: "every field wrong", body: []byte("{" + strings.Join(allBody, ",") + "}"), status: 400, details: all})
	return cs
}

const timeMsg = "must be an ISO 8601 date-time with a time zone offset or Z, e.g. 2026-03-01T14:30:00Z"

func send(t *testing.T, base string, lead pruuvtest.Stage, c malformed) pruuvtest.Response {
	t.Helper()
	method, stage, auth := c.method, c.stage, c.auth
	if method == "" {
		method = http.MethodPost
	}
	if stage == "" {
		stage = lead.ID
	}
	if auth == nil {
		auth = []string{"Bearer " + lead.WebhookToken}
	}
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequest(method, base+"/api/webhooks/funnel/"+url.PathEscape(stage), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	resp, err := pruuvtest.Client().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", c.name, err)
	}
	return pruuvtest.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// checkValidation asserts a 400 body is exactly the documented shape with the
// wanted details.
func checkValidation(t *testing.T, name, body string, want map[string][]string) {
	t.Helper()
	var got struct {
		Error   string              `json:"error"`
		Details map[string][]string `json:"details"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil || got.Error != "Validation failed" {
		t.Errorf("%s: body %.300s is not a validation failure (%v)", name, body, err)
		return
	}
	if canon, _ := json.Marshal(got); string(canon) != body {
		t.Errorf("%s: body %.300s, want exactly %.300s", name, body, canon)
	}
	if len(got.Details) != len(want) {
		t.Errorf("%s: details %q, want %q", name, got.Details, want)
		return
	}
	for k, msgs := range want {
		g := got.Details[k]
		ok := len(g) == len(msgs)
		for i := 0; ok && i < len(msgs); i++ {
			if p, isPrefix := strings.CutSuffix(msgs[i], "…"); isPrefix {
				ok = strings.HasPrefix(g[i], p) && len(g[i]) > len(p)
			} else {
				ok = g[i] == msgs[i]
			}
		}
		if !ok {
			t.Errorf("%s: details %q, want %q", name, got.Details, want)
			return
		}
	}
}

// TestMalformedCatalogue sends every kind of malformed request the Webhook API
// can meet and checks each gets exactly its documented answer and changes
// nothing: no event is stored and the stage's hourly quota is untouched.
func TestMalformedCatalogue(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			srv := pruuvtest.Start(t, cfg)
			stages := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead", "Won")
			lead, won := stages[0], stages[1]

			var unauthorized []pruuvtest.Response
			for _, c := range catalogue(lead, won) {
				r := send(t, srv.URL, lead, c)
				if r.Status != c.status {
					t.Errorf("%s: status %d %.300s, want %d", c.name, r.Status, r.Body, c.status)
					continue
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("%s: Content-Type %q", c.name, ct)
				}
				if c.details != nil {
					checkValidation(t, c.name, r.Body, c.details)
				} else if r.Body != c.want {
					t.Errorf("%s: body %.300s, want %s", c.name, r.Body, c.want)
				}
				switch r.Status {
				case 400:
					// A refused payload is not counted against the hour.
					if l, rem := r.Header.Get("X-RateLimit-Limit"), r.Header.Get("X-RateLimit-Remaining"); l == "" || rem != l {
						t.Errorf("%s: X-RateLimit-Remaining %q of %q, want the whole quota", c.name, rem, l)
					}
				case 401:
					if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="pruuv"` {
						t.Errorf("%s: WWW-Authenticate %q", c.name, got)
					}
					unauthorized = append(unauthorized, r)
				case 405:
					if got := r.Header.Values("Allow"); !slices.Equal(got, []string{"POST"}) {
						t.Errorf("%s: Allow %q, want POST", c.name, got)
					}
				}
				if r.Header.Get("Pruuv-Event-Id") != "" {
					t.Errorf("%s: answer names an event", c.name)
				}
			}

			// Every 401 looks the same, whatever was wrong with the credentials:
			// same body, same headers (bar the date and connection handling).
			headerNames := func(h http.Header) []string {
				var out []string
				for k := range h {
					if k != "Date" && k != "Connection" {
						out = append(out, k+": "+strings.Join(h.Values(k), ","))
					}
				}
				slices.Sort(out)
				return out
			}
			if len(unauthorized) < 15 {
				t.Errorf("only %d answers were 401", len(unauthorized))
			}
			for _, r := range unauthorized[min(1, len(unauthorized)):] {
				if r.Body != unauthorized[0].Body {
					t.Errorf("401 bodies differ: %q and %q", r.Body, unauthorized[0].Body)
				}
				if a, b := headerNames(r.Header), headerNames(unauthorized[0].Header); !reflect.DeepEqual(a, b) {
					t.Errorf("401 headers differ:\n%q\n%q", a, b)
				}
			}

			// Nothing was stored.
			if out := strings.TrimSpace(pruuvtest.Run(t, cfg, "events", "list", "--json")); out != "[]" {
				t.Fatalf("after the catalogue, events list shows:\n%s", out)
			}

			// The hour's quota is whole: the next valid request, at the size limit
			// and with a lower-case scheme, is the first event counted.
			body := padded(`"reference":"after-catalogue","revenue_value":250,"currency":"gbp",`, 64<<10)
			r := send(t, srv.URL, lead, malformed{name: "valid", auth: []string{"bearer " + lead.WebhookToken}, body: body})
			if r.Status != 200 {
				t.Fatalf("valid request after the catalogue: %d %s", r.Status, r.Body)
			}
			var ok struct {
				Received bool   `json:"received"`
				EventID  string `json:"event_id"`
			}
			if err := json.Unmarshal([]byte(r.Body), &ok); err != nil || !ok.Received || ok.EventID == "" ||
				r.Body != `{"received":true,"event_id":"`+ok.EventID+`"}` {
				t.Fatalf("valid request: body %s", r.Body)
			}
			limit, err := strconv.Atoi(r.Header.Get("X-RateLimit-Limit"))
			if err != nil || limit != 1000 {
				t.Errorf("X-RateLimit-Limit %q, want the default 1000", r.Header.Get("X-RateLimit-Limit"))
			}
			if got, want := r.Header.Get("X-RateLimit-Remaining"), strconv.Itoa(limit-1); got != want {
				t.Errorf("X-RateLimit-Remaining %q after the catalogue and one event, want %s", got, want)
			}
			out := pruuvtest.Run(t, cfg, "events", "list", "--json")
			if n := strings.Count(out, `"event_id"`); n != 1 || !strings.Contains(out, `"event_id": "`+ok.EventID+`"`) ||
				!strings.Contains(out, `"currency": "GBP"`) {
				t.Errorf("events list after one valid request:\n%.2000s", out)
			}
		})
	}
}
