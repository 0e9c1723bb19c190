// Package tiktokfake is a strict stand-in for the TikTok Events API 2.0, for
// tests: it refuses what TikTok refuses, answering HTTP 200 with TikTok's
// {code, message, request_id, data} (reference notes §3 and §7), records what
// it received, and can be told to fail. Start it with
// httptest.NewServer(tiktokfake.New(tiktokfake.Options{…})).
package tiktokfake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/pruuv/pruuv/internal/conversion/fakekit"
)

// Path is the one route served.
const Path = "/open_api/v1.3/event/track/"

// Rules the fake enforces.
const (
	MaxEvents       = 1000
	FutureTolerance = 10 * time.Minute
	DedupWindow     = 48 * time.Hour
	maxBody         = 8 << 20
)

// TikTok's answer codes.
const (
	CodeOK           = 0
	CodeNoPermission = 40001
	CodeInvalid      = 40002
	CodeRateLimited  = 40100
	CodeBadToken     = 40105
	CodeSystemError  = 50000
)

// Options configure a Fake.
type Options struct {
	// Pixels maps each known pixel code to the access token that may send to it.
	Pixels map[string]string
	// MaxAge is the oldest event_time accepted; default 28 days.
	MaxAge time.Duration
	// Now is the fake's clock; default time.Now.
	Now func() time.Time
	// RetryAfter is what a TooManyRequests failure asks the client to wait;
	// default one minute.
	RetryAfter time.Duration
}

// Kind is a failure the fake can be told to answer with.
type Kind int

// The failures.
const (
	// ServerError: HTTP 502 with an HTML page, as a gateway answers in an outage.
	ServerError Kind = iota + 1
	// TooManyRequests: HTTP 429 with Retry-After, from a gateway.
	TooManyRequests
	// RateLimit: TikTok's own, HTTP 200 with code 40100.
	RateLimit
	// SystemError: HTTP 200 with code 50000.
	SystemError
	// Hang: no answer until the client gives up.
	Hang
	// AuthError: HTTP 200 with code 40105, a revoked token.
	AuthError
	// ValidationError: HTTP 200 with code 40002 naming no event.
	ValidationError
)

// Request is one request as the fake received and answered it.
type Request struct {
	Method, Path, ContentType string
	// Token is the Access-Token header.
	Token string
	// Body is the request body as sent, nil when not JSON.
	Body   json.RawMessage
	Status int
	Code   int
	Answer json.RawMessage
}

// Event is one accepted event.
type Event struct {
	PixelCode     string
	Name, ID      string
	Time          time.Time
	TestEventCode string
	Duplicate     bool
	Raw           json.RawMessage
}

// Fake is the stand-in; it is an http.Handler.
type Fake struct {
	opts Options

	mu        sync.Mutex
	failures  fakekit.Failures[Kind]
	requests  fakekit.Log[Request]
	partial   map[string]bool
	events    []Event
	firstSeen map[string]time.Time // pixel, event, event_id → first accepted
	ids       int
}

// New returns a fake serving opts.Pixels.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = 28 * 24 * time.Hour
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = time.Minute
	}
	return &Fake{opts: opts, partial: map[string]bool{}, firstSeen: map[string]time.Time{}}
}

// FailNext makes the next n requests answer with k instead of being checked.
// ServerError, TooManyRequests and Hang come from a gateway and answer any
// route; TikTok's own codes answer only POSTs to Path.
func (f *Fake) FailNext(n int, k Kind) { f.failures.Add(n, k) }

// SetPartial makes every request holding one of these event ids fail as
// TikTok fails a batch with an invalid event: code 40002, naming the first
// such event as Batch.<i>. No ids clears the set.
func (f *Fake) SetPartial(eventIDs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partial = map[string]bool{}
	for _, id := range eventIDs {
		f.partial[id] = true
	}
}

// Requests returns every request received so far.
func (f *Fake) Requests() []Request { return f.requests.All() }

// Events returns every accepted event, duplicates included and marked.
func (f *Fake) Events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.events...)
}

// Duplicates counts accepted events that repeated an event and event_id
// already received for the pixel within 48 hours.
func (f *Fake) Duplicates() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, e := range f.events {
		if e.Duplicate {
			n++
		}
	}
	return n
}

// refusal is a non-zero code and its message.
type refusal struct {
	code int
	msg  string
}

func invalid(format string, a ...any) *refusal {
	return &refusal{CodeInvalid, fmt.Sprintf(format, a...)}
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Token: r.Header.Get("Access-Token")}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && json.Valid(body) {
		rec.Body = body
	}
	fail := f.failures.Next()

	switch {
	case fail == Hang:
		f.requests.Add(rec)
		<-r.Context().Done()
		return
	case fail == ServerError:
		f.plain(w, &rec, http.StatusBadGateway, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>")
		return
	case fail == TooManyRequests:
		w.Header().Set("Retry-After", strconv.Itoa(int(f.opts.RetryAfter/time.Second)))
		f.plain(w, &rec, http.StatusTooManyRequests, "text/html", "<html><body><h1>429 Too Many Requests</h1></body></html>")
		return
	case r.URL.Path != Path:
		f.plain(w, &rec, http.StatusNotFound, "application/json", `{"code":40400,"message":"Not Found"}`)
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", "POST")
		f.plain(w, &rec, http.StatusMethodNotAllowed, "application/json", `{"code":40500,"message":"Method Not Allowed"}`)
		return
	}

	var ref *refusal
	switch fail {
	case RateLimit:
		ref = &refusal{CodeRateLimited, "Too many requests. Please retry in some time."}
	case SystemError:
		ref = &refusal{CodeSystemError, "System error. Please retry later."}
	case AuthError:
		ref = &refusal{CodeBadToken, "Access token is incorrect or has been revoked."}
	case ValidationError:
		ref = invalid("data: Invalid value.")
	default:
		if err != nil || len(body) > maxBody {
			ref = invalid("The request body could not be read.")
		} else {
			ref = f.check(r, body)
		}
	}
	code, msg := CodeOK, "OK"
	if ref != nil {
		code, msg = ref.code, ref.msg
	}
	f.mu.Lock()
	f.ids++
	id := fmt.Sprintf("20261126120000FAKE%06d", f.ids)
	f.mu.Unlock()
	answer, _ := json.Marshal(map[string]any{"code": code, "message": msg, "request_id": id, "data": map[string]any{}})
	rec.Code = code
	f.plain(w, &rec, http.StatusOK, "application/json", string(answer))
}

func (f *Fake) plain(w http.ResponseWriter, rec *Request, status int, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	io.WriteString(w, body)
	rec.Status, rec.Answer = status, nil
	if json.Valid([]byte(body)) {
		rec.Answer = json.RawMessage(body)
	}
	f.requests.Add(*rec)
}

var (
	hashRE     = regexp.MustCompile(`^[a-f0-9]{64}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
)

// The documented fields (reference §3.2); anything else is refused, so a
// misspelt field fails a test instead of being dropped.
var (
	topKeys   = set("event_source", "event_source_id", "partner_name", "test_event_code", "data")
	eventKeys = set("event", "event_time", "event_id", "user", "properties", "page", "lead", "limited_data_use", "app", "ad")
	userKeys  = set("ttclid", "ttp", "email", "phone", "external_id", "ip", "user_agent", "locale",
		"first_name", "last_name", "city", "state", "country", "zip_code", "idfa", "idfv", "gaid", "att_status")
	hashedUser = set("email", "phone", "external_id")
	propKeys   = set("value", "currency", "content_type", "contents", "content_ids", "num_items", "order_id",
		"shop_id", "query", "search_string", "description")
	pageKeys = set("url", "referrer")
)

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// check applies TikTok's rules: the token, the request, then each event.
// It stores the events of an accepted request.
func (f *Fake) check(r *http.Request, body []byte) *refusal {
	token := r.Header.Get("Access-Token")
	if token == "" {
		return &refusal{CodeBadToken, "Access token is null, please check your request."}
	}
	if !f.knownToken(token) {
		return &refusal{CodeBadToken, "Access token is incorrect or has been revoked."}
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		return invalid("Content-Type must be application/json.")
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return invalid("The request body is not a JSON object.")
	}
	for k := range top {
		if !topKeys[k] {
			return invalid("%s: Unknown field.", k)
		}
	}
	var source, pixel, testCode string
	if json.Unmarshal(top["event_source"], &source) != nil {
		return invalid("event_source: Missing data for required field.")
	}
	if source != "web" && source != "app" && source != "offline" && source != "crm" {
		return invalid("event_source: Must be one of: web, app, offline, crm.")
	}
	if json.Unmarshal(top["event_source_id"], &pixel) != nil || pixel == "" {
		return invalid("event_source_id: Missing data for required field.")
	}
	if v, ok := top["test_event_code"]; ok && json.Unmarshal(v, &testCode) != nil {
		return invalid("test_event_code: Not a valid string.")
	}
	if want, ok := f.opts.Pixels[pixel]; !ok || want != token {
		return &refusal{CodeNoPermission, fmt.Sprintf("No permission to operate pixel code: %s. You must be an admin or operator of this advertiser account.", pixel)}
	}
	var data []json.RawMessage
	if json.Unmarshal(top["data"], &data) != nil {
		return invalid("data: Missing data for required field.")
	}
	if len(data) < 1 || len(data) > MaxEvents {
		return invalid("data: Length must be between 1 and %d.", MaxEvents)
	}
	now := f.opts.Now()
	events := make([]Event, len(data))
	for i, raw := range data {
		e, msg := f.checkEvent(raw, now)
		if msg != "" {
			return invalid("Batch.%d.%s", i, msg)
		}
		e.PixelCode, e.TestEventCode = pixel, testCode
		events[i] = e
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, e := range events {
		if f.partial[e.ID] {
			return invalid("Batch.%d.event_id: Event refused (%s).", i, e.ID)
		}
	}
	for _, e := range events {
		if e.ID != "" {
			key := pixel + "\x00" + e.Name + "\x00" + e.ID
			if first, ok := f.firstSeen[key]; ok && now.Sub(first) < DedupWindow {
				e.Duplicate = true
			} else {
				f.firstSeen[key] = now
			}
		}
		f.events = append(f.events, e)
	}
	return nil
}

func (f *Fake) knownToken(t string) bool {
	for _, v := range f.opts.Pixels {
		if v == t {
			return true
		}
	}
	return false
}

// checkEvent checks one element of data and returns "<path>: <reason>" when
// it is refused.
func (f *Fake) checkEvent(raw json.RawMessage, now time.Time) (Event, string) {
	var ev map[string]json.RawMessage
	if json.Unmarshal(raw, &ev) != nil {
		return Event{}, "data: Not a valid object."
	}
	if msg := known(ev, eventKeys, ""); msg != "" {
		return Event{}, msg
	}
	e := Event{Raw: raw}
	if json.Unmarshal(ev["event"], &e.Name) != nil || e.Name == "" {
		return e, "event: Missing data for required field."
	}
	var secs int64
	if json.Unmarshal(ev["event_time"], &secs) != nil {
		return e, "event_time: Not a valid integer."
	}
	e.Time = time.Unix(secs, 0)
	if now.Sub(e.Time) > f.opts.MaxAge {
		return e, fmt.Sprintf("event_time: Event time must be within the last %d days.", int(f.opts.MaxAge.Hours()/24))
	}
	if e.Time.Sub(now) > FutureTolerance {
		return e, "event_time: Event time must not be in the future."
	}
	if v, ok := ev["event_id"]; ok && json.Unmarshal(v, &e.ID) != nil {
		return e, "event_id: Not a valid string."
	}
	var u map[string]json.RawMessage
	if v, ok := ev["user"]; ok {
		if json.Unmarshal(v, &u) != nil {
			return e, "user: Not a valid object."
		}
		if msg := known(u, userKeys, "user."); msg != "" {
			return e, msg
		}
		for k, v := range u {
			if hashedUser[k] {
				if !hashed(v) {
					return e, "user." + k + ": Must be a SHA-256 hash (64 lower-case hex) or a list of them."
				}
				continue
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				return e, "user." + k + ": Not a valid string."
			}
			if k == "ip" {
				if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
					return e, "user.ip: Not a valid IP address."
				}
			}
		}
	}
	if v, ok := ev["properties"]; ok {
		var p map[string]json.RawMessage
		if json.Unmarshal(v, &p) != nil {
			return e, "properties: Not a valid object."
		}
		if msg := known(p, propKeys, "properties."); msg != "" {
			return e, msg
		}
		if raw, ok := p["value"]; ok {
			var n float64
			if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
				return e, "properties.value: Not a valid number."
			}
		}
		if raw, ok := p["currency"]; ok {
			var c string
			if json.Unmarshal(raw, &c) != nil || !currencyRE.MatchString(c) {
				return e, "properties.currency: Not a valid ISO 4217 currency code."
			}
		}
	}
	if v, ok := ev["page"]; ok {
		var p map[string]json.RawMessage
		if json.Unmarshal(v, &p) != nil {
			return e, "page: Not a valid object."
		}
		if msg := known(p, pageKeys, "page."); msg != "" {
			return e, msg
		}
		var url string
		if raw, ok := p["url"]; ok && json.Unmarshal(raw, &url) != nil {
			return e, "page.url: Not a valid string."
		}
	}
	return e, ""
}

func known(obj map[string]json.RawMessage, keys map[string]bool, prefix string) string {
	for k := range obj {
		if !keys[k] {
			return prefix + k + ": Unknown field."
		}
	}
	return ""
}

// hashed accepts a SHA-256 hex string or a non-empty list of them.
func hashed(v json.RawMessage) bool {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return hashRE.MatchString(s)
	}
	var list []string
	if json.Unmarshal(v, &list) != nil || len(list) == 0 {
		return false
	}
	for _, s := range list {
		if !hashRE.MatchString(s) {
			return false
		}
	}
	return true
}
