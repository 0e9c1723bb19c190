// Package metafake is a strict stand-in for the Meta Conversions API, for
// tests: it refuses what Meta refuses, with Meta's error envelope and codes
// (reference notes §1 and §7), records what it received, and can be told to
// fail. Start it with httptest.NewServer(metafake.New(metafake.Options{…})).
package metafake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pruuv/pruuv/internal/conversion/fakekit"
)

// Rules the fake enforces.
const (
	MaxEvents       = 1000
	MaxAge          = 7 * 24 * time.Hour
	FutureTolerance = 10 * time.Minute
	DedupWindow     = 48 * time.Hour
	maxBody         = 8 << 20
)

// Options configure a Fake.
type Options struct {
	// Pixels maps each known pixel id to the access token that may send to it.
	Pixels map[string]string
	// Versions are the Graph API versions served; default v24.0–v27.0.
	Versions []string
	// Now is the fake's clock; default time.Now.
	Now func() time.Time
	// RetryAfter is what a TooManyRequests or RateLimit failure asks the
	// client to wait; default one minute.
	RetryAfter time.Duration
}

// Kind is a failure the fake can be told to answer with.
type Kind int

// The failures.
const (
	// ServerError: HTTP 500 with Graph error code 2, is_transient true.
	ServerError Kind = iota + 1
	// TooManyRequests: HTTP 429 with Retry-After (a proxy's answer).
	TooManyRequests
	// RateLimit: Meta's own throttle, HTTP 400 code 80004 with an
	// X-Business-Use-Case-Usage header.
	RateLimit
	// Hang: no answer until the client gives up.
	Hang
	// AuthError: HTTP 400 code 190, an expired token (subcode 463).
	AuthError
	// ValidationError: HTTP 400 code 100 naming no event.
	ValidationError
)

// Request is one request as the fake received and answered it.
type Request struct {
	Method, Path string
	Query        url.Values
	ContentType  string
	// TokenIn says where the access token was: "query", "form", "json" or "".
	TokenIn       string
	TestEventCode string
	// Data is the data array as sent (re-encoded when it came as a form
	// field), nil when absent or not JSON.
	Data   json.RawMessage
	Status int
	Answer json.RawMessage
}

// Event is one accepted event.
type Event struct {
	PixelID       string
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
	firstSeen map[string]time.Time // pixel, event_name, event_id → first accepted
	traces    int
}

// New returns a fake serving opts.Pixels.
func New(opts Options) *Fake {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.Versions) == 0 {
		opts.Versions = []string{"v24.0", "v25.0", "v26.0", "v27.0"}
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = time.Minute
	}
	return &Fake{opts: opts, partial: map[string]bool{}, firstSeen: map[string]time.Time{}}
}

// FailNext makes the next n requests answer with k instead of being checked.
// The route, method and body are still read first (so Requests shows where
// the token was); a request refused for those consumes the failure.
func (f *Fake) FailNext(n int, k Kind) { f.failures.Add(n, k) }

// SetPartial makes every request holding one of these event ids fail as Meta
// fails a batch with an invalid event: code 100, naming the first such event
// in error_data.event_index. No ids clears the set.
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

// Duplicates counts accepted events that repeated an event_name and event_id
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

// apiError is a Graph API error.
type apiError struct {
	status     int
	Message    string `json:"message"`
	Type       string `json:"type"`
	Code       int    `json:"code"`
	Subcode    int    `json:"error_subcode,omitempty"`
	Transient  bool   `json:"is_transient"`
	UserTitle  string `json:"error_user_title,omitempty"`
	UserMsg    string `json:"error_user_msg,omitempty"`
	ErrorData  any    `json:"error_data,omitempty"`
	FBTraceID  string `json:"fbtrace_id"`
	retryAfter bool
}

func invalid(msg string) *apiError {
	return &apiError{status: 400, Message: "(#100) " + msg, Type: "OAuthException", Code: 100}
}

// eventError is code 100 about event i, which Meta reports for the whole request.
func eventError(i, subcode int, title, msg string) *apiError {
	return &apiError{status: 400, Message: "Invalid parameter", Type: "OAuthException", Code: 100,
		Subcode: subcode, UserTitle: title, UserMsg: msg, ErrorData: map[string]int{"event_index": i}}
}

func failure(k Kind) *apiError {
	switch k {
	case ServerError:
		return &apiError{status: 500, Message: "An unexpected error has occurred. Please retry your request later.",
			Type: "OAuthException", Code: 2, Transient: true}
	case TooManyRequests:
		return &apiError{status: 429, Message: "Too many requests", Type: "OAuthException", Code: 4, Transient: true, retryAfter: true}
	case RateLimit:
		return &apiError{status: 400, Message: "(#80004) There have been too many calls to this ad-account. Wait a bit and try again.",
			Type: "OAuthException", Code: 80004, Subcode: 2446079, Transient: true, retryAfter: true}
	case AuthError:
		return &apiError{status: 400, Message: "Error validating access token: Session has expired.",
			Type: "OAuthException", Code: 190, Subcode: 463}
	default:
		return invalid("Invalid parameter")
	}
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), ContentType: r.Header.Get("Content-Type")}
	fail := f.failures.Next()
	if fail == Hang {
		f.requests.Add(rec)
		// The request's context ends when the client goes away, but only
		// once the body has been read.
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		return
	}

	status, answer, hdr := f.serve(r, &rec, fail)
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(answer)
	rec.Status, rec.Answer = status, answer
	f.requests.Add(rec)
}

var (
	pathRE = regexp.MustCompile(`^/(v[0-9]+\.[0-9]+)/([0-9]+)/events$`)
	hashRE = regexp.MustCompile(`^[a-f0-9]{64}$`)
	fbcRE  = regexp.MustCompile(`^fb\.[0-2]\.[0-9]{13}\.[^.]+(\.[A-Za-z0-9_-]+)?$`)
	fbpRE  = regexp.MustCompile(`^fb\.[0-2]\.[0-9]{13}\.[0-9]+(\.[A-Za-z0-9_-]+)?$`)
	curRE  = regexp.MustCompile(`^[A-Za-z]{3}$`)
)

// serve checks one request and returns the answer: status, body and headers.
func (f *Fake) serve(r *http.Request, rec *Request, fail Kind) (int, []byte, map[string]string) {
	now := f.opts.Now()
	events, aerr := f.check(r, rec, fail, now)
	if aerr != nil {
		f.mu.Lock()
		f.traces++
		aerr.FBTraceID = fmt.Sprintf("FakeTrace%06d", f.traces)
		f.mu.Unlock()
		hdr := map[string]string{}
		if aerr.retryAfter {
			secs := int(f.opts.RetryAfter / time.Second)
			if aerr.status == http.StatusTooManyRequests {
				hdr["Retry-After"] = strconv.Itoa(secs)
			} else {
				mins := (secs + 59) / 60
				hdr["X-Business-Use-Case-Usage"] = fmt.Sprintf(
					`{"1234567890":[{"type":"ads_management","call_count":100,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":%d}]}`, mins)
			}
		}
		b, _ := json.Marshal(map[string]*apiError{"error": aerr})
		return aerr.status, b, hdr
	}
	pixel := pathRE.FindStringSubmatch(r.URL.Path)[2]
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range events {
		e.PixelID, e.TestEventCode = pixel, rec.TestEventCode
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
	f.traces++
	b, _ := json.Marshal(map[string]any{"events_received": len(events), "messages": []string{},
		"fbtrace_id": fmt.Sprintf("FakeTrace%06d", f.traces)})
	return http.StatusOK, b, nil
}

// check applies Meta's rules in the order Meta would meet them: the route,
// the token, the request, then each event.
func (f *Fake) check(r *http.Request, rec *Request, fail Kind, now time.Time) ([]Event, *apiError) {
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return nil, &apiError{status: 400, Message: fmt.Sprintf("Unknown path components: %s", r.URL.Path),
			Type: "OAuthException", Code: 2500}
	}
	if !contains(f.opts.Versions, m[1]) {
		return nil, &apiError{status: 400, Message: fmt.Sprintf("(#2635) Version %s is not available.", m[1]),
			Type: "OAuthException", Code: 2635}
	}
	if r.Method != http.MethodPost {
		return nil, &apiError{status: 400, Message: "Unsupported " + strings.ToLower(r.Method) + " request.",
			Type: "GraphMethodException", Code: 100}
	}
	params, aerr := readParams(r)
	if aerr != nil {
		return nil, aerr
	}
	token := ""
	switch {
	case r.URL.Query().Get("access_token") != "":
		token, rec.TokenIn = r.URL.Query().Get("access_token"), "query"
	case params.token != "":
		token, rec.TokenIn = params.token, params.tokenIn
	}
	rec.TestEventCode, rec.Data = params.testEventCode, params.data
	if fail != 0 {
		return nil, failure(fail)
	}
	if token == "" {
		return nil, &apiError{status: 400, Message: "An access token is required to request this resource.",
			Type: "OAuthException", Code: 104}
	}
	if !f.knownToken(token) {
		return nil, &apiError{status: 400, Message: "Invalid OAuth access token - Cannot parse access token",
			Type: "OAuthException", Code: 190}
	}
	if want, ok := f.opts.Pixels[m[2]]; !ok || want != token {
		return nil, &apiError{status: 400, Type: "GraphMethodException", Code: 100, Subcode: 33, Message: fmt.Sprintf(
			"Unsupported post request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", m[2])}
	}
	if params.data == nil {
		return nil, invalid("The parameter data is required")
	}
	var data []json.RawMessage
	if err := json.Unmarshal(params.data, &data); err != nil {
		return nil, invalid("param data must be an array.")
	}
	if len(data) == 0 {
		return nil, invalid("param data must be an array with at least one event.")
	}
	if len(data) > MaxEvents {
		return nil, invalid(fmt.Sprintf("param data must be an array of at most %d events.", MaxEvents))
	}
	events := make([]Event, len(data))
	for i, raw := range data {
		e, aerr := checkEvent(i, raw, now)
		if aerr != nil {
			return nil, aerr
		}
		events[i] = e
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, e := range events {
		if f.partial[e.ID] {
			return nil, eventError(i, 2804001, "Invalid event",
				fmt.Sprintf("The event at index %d was refused (event_id %s).", i, e.ID))
		}
	}
	return events, nil
}

func (f *Fake) knownToken(t string) bool {
	for _, v := range f.opts.Pixels {
		if v == t {
			return true
		}
	}
	return false
}

type params struct {
	token, tokenIn, testEventCode string
	data                          json.RawMessage
}

// readParams reads the body as Meta does: JSON, a URL-encoded form or a
// multipart form, where data is a JSON array or a string holding one.
func readParams(r *http.Request) (params, *apiError) {
	var p params
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return p, invalid("The request body could not be read.")
	}
	switch ct {
	case "application/json":
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			return p, invalid("The request body is not valid JSON.")
		}
		for k, v := range top {
			var s string
			switch k {
			case "data":
				p.data = v
				if json.Unmarshal(v, &s) == nil {
					p.data = json.RawMessage(s)
				}
			case "access_token", "test_event_code":
				if json.Unmarshal(v, &s) != nil {
					return p, invalid("param " + k + " must be a string.")
				}
				if k == "access_token" {
					p.token, p.tokenIn = s, "json"
				} else {
					p.testEventCode = s
				}
			case "partner_agent", "namespace_id", "upload_id", "upload_tag", "upload_source":
			default:
				return p, invalid("Unknown parameter: " + k)
			}
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		if err := r.ParseMultipartForm(maxBody); err != nil && err != http.ErrNotMultipart {
			return p, invalid("The request body could not be parsed.")
		}
		for k, v := range r.PostForm {
			switch k {
			case "data":
				p.data = json.RawMessage(v[0])
			case "access_token":
				p.token, p.tokenIn = v[0], "form"
			case "test_event_code":
				p.testEventCode = v[0]
			case "partner_agent", "namespace_id", "upload_id", "upload_tag", "upload_source":
			default:
				return p, invalid("Unknown parameter: " + k)
			}
		}
		if p.data != nil && !json.Valid(p.data) {
			return p, invalid("param data must be an array.")
		}
	default:
		return p, invalid("Unsupported content type " + ct)
	}
	return p, nil
}

var actionSources = []string{"email", "website", "app", "phone_call", "chat", "physical_store",
	"system_generated", "business_messaging", "other"}

// The documented keys; anything else is refused, so a misspelt field fails a
// test instead of being dropped.
var (
	eventKeys = []string{"event_name", "event_time", "user_data", "custom_data", "event_source_url", "opt_out",
		"event_id", "action_source", "data_processing_options", "data_processing_options_country",
		"data_processing_options_state", "referrer_url", "app_data", "original_event_data", "customer_segmentation"}
	hashedKeys = []string{"em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id"}
	rawKeys    = []string{"client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id", "fb_login_id",
		"lead_id", "anon_id", "madid", "page_id", "page_scoped_user_id", "ctwa_clid", "ig_account_id", "ig_sid"}
)

// checkEvent applies the per-event rules of reference §1.2–1.4.
func checkEvent(i int, raw json.RawMessage, now time.Time) (Event, *apiError) {
	bad := func(msg string) (Event, *apiError) {
		return Event{}, eventError(i, 0, "Invalid parameter", fmt.Sprintf("Event %d: %s", i, msg))
	}
	var ev map[string]json.RawMessage
	if json.Unmarshal(raw, &ev) != nil {
		return bad("must be an object")
	}
	for k := range ev {
		if !contains(eventKeys, k) {
			return bad("unknown parameter " + k)
		}
	}
	var e Event
	e.Raw = raw
	if json.Unmarshal(ev["event_name"], &e.Name) != nil || e.Name == "" {
		return bad("event_name is required and must be a string")
	}
	if v, ok := ev["event_id"]; ok && json.Unmarshal(v, &e.ID) != nil {
		return bad("event_id must be a string")
	}
	var secs int64
	if json.Unmarshal(ev["event_time"], &secs) != nil {
		return bad("event_time is required and must be an integer number of seconds")
	}
	e.Time = time.Unix(secs, 0)
	var source string
	if json.Unmarshal(ev["action_source"], &source) != nil || !contains(actionSources, source) {
		return bad("action_source is required and must be one of " + strings.Join(actionSources, ", "))
	}
	if now.Sub(e.Time) > MaxAge && !(source == "physical_store" && now.Sub(e.Time) <= 62*24*time.Hour) {
		return Event{}, eventError(i, 2804003, "Event Timestamp Too Old",
			"The timestamp for this event is too far in the past; events must be sent within 7 days of when they happened.")
	}
	if e.Time.Sub(now) > FutureTolerance {
		return bad("event_time is in the future")
	}
	var ud map[string]json.RawMessage
	if json.Unmarshal(ev["user_data"], &ud) != nil || len(ud) == 0 {
		return bad("user_data is required and must hold at least one customer information parameter")
	}
	for k, v := range ud {
		switch {
		case contains(hashedKeys, k):
			if !hashed(v) {
				return bad("user_data." + k + " must be a SHA-256 hash (64 lower-case hex) or an array of them")
			}
		case contains(rawKeys, k):
			var s string
			if json.Unmarshal(v, &s) != nil || s == "" {
				return bad("user_data." + k + " must be a non-empty string")
			}
			switch k {
			case "client_ip_address":
				if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
					return bad("user_data.client_ip_address must be an IPv4 or IPv6 address")
				}
			case "fbc":
				if !fbcRE.MatchString(s) {
					return bad("user_data.fbc must look like fb.1.1554763741205.<fbclid>")
				}
			case "fbp":
				if !fbpRE.MatchString(s) {
					return bad("user_data.fbp must look like fb.1.1596403881668.1116446470")
				}
			}
		default:
			return bad("unknown user_data parameter " + k)
		}
	}
	if source == "website" {
		var url string
		if json.Unmarshal(ev["event_source_url"], &url) != nil || url == "" {
			return bad("event_source_url is required for website events")
		}
		if _, ok := ud["client_user_agent"]; !ok {
			return bad("user_data.client_user_agent is required for website events")
		}
	}
	var value, currency bool
	if v, ok := ev["custom_data"]; ok {
		var cd map[string]json.RawMessage
		if json.Unmarshal(v, &cd) != nil {
			return bad("custom_data must be an object")
		}
		if raw, ok := cd["value"]; ok {
			var n float64
			if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
				return bad("custom_data.value must be a number")
			}
			value = true
		}
		if raw, ok := cd["currency"]; ok {
			var c string
			if json.Unmarshal(raw, &c) != nil || !curRE.MatchString(c) {
				return bad("custom_data.currency must be an ISO 4217 code")
			}
			currency = true
		}
	}
	if e.Name == "Purchase" && !(value && currency) {
		return Event{}, eventError(i, 2804009, "Missing Value for Purchase Event",
			"Purchase events must include value and currency in custom_data.")
	}
	return e, nil
}

// hashed accepts a SHA-256 hex string or a non-empty array of them.
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

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
