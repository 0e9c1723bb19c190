// Package googlefake is a strict local stand-in for Google's OAuth token
// endpoint, the Data Manager API's events:ingest and the Google Ads API's
// uploadClickConversions. It refuses what Google refuses, in Google's error
// shapes, records every request, and can be told to fail in the ways the
// real services do. docs/conversions-google.md lists its rules.
package googlefake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pruuv/pruuv/internal/conversion/fakekit"
)

// The credentials and accounts a new Fake knows.
const (
	ClientID       = "fake-client.apps.googleusercontent.com"
	ClientSecret   = "fake-client-secret"
	RefreshToken   = "1//fake-refresh-token"
	DeveloperToken = "fake-developer-token"
	CustomerID     = "1234567890"
	ActionID       = "555000111"
)

// Kind is a failure the fake can be told to answer with.
type Kind int

// The failures. InvalidGrant applies to the token endpoint; the others to the
// next API requests (events:ingest or uploadClickConversions).
const (
	ServerError  Kind = iota + 1 // 503 UNAVAILABLE
	RateLimited                  // 429 RESOURCE_EXHAUSTED with Retry-After: 30
	Hang                         // no answer until the client gives up
	Unauthorized                 // 401 UNAUTHENTICATED whatever the token
	InvalidGrant                 // the token endpoint answers 400 invalid_grant
	Validation                   // 400 INVALID_ARGUMENT naming no event
)

// RetryAfter is the Retry-After the RateLimited failure carries.
const RetryAfter = 30 * time.Second

// Request is one request the fake received, decoded.
type Request struct {
	Endpoint string // "token", "ingest" or "upload"
	Method   string
	Path     string
	Header   http.Header
	Form     url.Values     // the token endpoint's form
	Body     map[string]any // an API request's JSON body, nil when it was not JSON
	Raw      []byte
}

// Fake serves the three endpoints on one handler: point
// conversion.Endpoints.GoogleOAuth, GoogleDataManager and GoogleAds at it.
type Fake struct {
	mu             sync.Mutex
	now            func() time.Time
	tokenTTL       time.Duration
	refreshTokens  map[string]bool // known refresh token → still valid
	tokens         map[string]time.Time
	customers      map[string]map[string]bool // customer → conversion actions
	loginCustomer  string
	clicks         map[string]time.Time
	orderIDs       map[string]bool // action + order id, uploaded
	clickConvs     map[string]bool // action + click + time, uploaded
	accepted       []string
	acceptedSet    map[string]bool
	apiFails       fakekit.Failures[Kind]
	tokenFails     fakekit.Failures[Kind]
	partial        map[string]string // event id → error code
	notAllowlisted bool
	requests       fakekit.Log[Request]
	refreshes      int
	rotate         bool // token answers carry a new refresh_token
	seq            int
	done           chan struct{}
	closeOnce      sync.Once
}

// New returns a fake that knows ClientID, ClientSecret, RefreshToken,
// DeveloperToken, customer CustomerID with action ActionID, issues access
// tokens valid for an hour and reads the time from time.Now.
func New() *Fake {
	return &Fake{
		now:           time.Now,
		tokenTTL:      time.Hour,
		refreshTokens: map[string]bool{RefreshToken: true},
		tokens:        map[string]time.Time{},
		customers:     map[string]map[string]bool{CustomerID: {ActionID: true}},
		clicks:        map[string]time.Time{},
		orderIDs:      map[string]bool{},
		clickConvs:    map[string]bool{},
		acceptedSet:   map[string]bool{},
		partial:       map[string]string{},
		done:          make(chan struct{}),
	}
}

// SetClock sets the fake's clock, against which tokens expire and click ages
// are measured.
func (f *Fake) SetClock(now func() time.Time) { f.mu.Lock(); f.now = now; f.mu.Unlock() }

// SetTokenTTL sets the expires_in of the access tokens issued from now on.
func (f *Fake) SetTokenTTL(d time.Duration) { f.mu.Lock(); f.tokenTTL = d; f.mu.Unlock() }

// AddCustomer makes a Google Ads account and its conversion actions known.
func (f *Fake) AddCustomer(customer string, actions ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.customers[customer] == nil {
		f.customers[customer] = map[string]bool{}
	}
	for _, a := range actions {
		f.customers[customer][a] = true
	}
}

// RequireLoginCustomer makes every API request name this manager account
// (login-customer-id, or the Data Manager destination's loginAccount).
func (f *Fake) RequireLoginCustomer(id string) { f.mu.Lock(); f.loginCustomer = id; f.mu.Unlock() }

// AddClick records a click (gclid, gbraid or wbraid) made at the given time.
func (f *Fake) AddClick(id string, at time.Time) { f.mu.Lock(); f.clicks[id] = at; f.mu.Unlock() }

// RevokeRefreshToken makes the token endpoint answer invalid_grant for token.
func (f *Fake) RevokeRefreshToken(token string) {
	f.mu.Lock()
	f.refreshTokens[token] = false
	f.mu.Unlock()
}

// RotateRefreshTokens makes every later token answer carry a new
// refresh_token, as Google rarely does; the old one keeps working until
// revoked.
func (f *Fake) RotateRefreshTokens() {
	f.mu.Lock()
	f.rotate = true
	f.mu.Unlock()
}

// ExpireTokens expires every access token issued so far, as if an hour had
// passed: the next API request with one gets 401.
func (f *Fake) ExpireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for t := range f.tokens {
		f.tokens[t] = time.Time{}
	}
}

// FailNext makes the next n requests of the endpoint kind applies to fail
// with kind.
func (f *Fake) FailNext(n int, kind Kind) {
	if kind == InvalidGrant {
		f.tokenFails.Add(n, kind)
	} else {
		f.apiFails.Add(n, kind)
	}
}

// SetPartial makes the events with these ids (orderId on the Ads API,
// transactionId on the Data Manager API) fail with code: a row error of the
// conversionUploadError family, or "family:CODE" for another family
// (e.g. "internalError:INTERNAL_ERROR"), in uploadClickConversions'
// partialFailureError; a field violation with that reason on
// events:ingest, which fails the whole request.
func (f *Fake) SetPartial(code string, ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.partial[id] = code
	}
}

// SetNotAllowlisted makes uploadClickConversions answer 403
// CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE, as it does for developer tokens
// that never uploaded click conversions before 2026-06-15.
func (f *Fake) SetNotAllowlisted(on bool) { f.mu.Lock(); f.notAllowlisted = on; f.mu.Unlock() }

// Requests returns every request received so far, in order.
func (f *Fake) Requests() []Request { return f.requests.All() }

// TokenRefreshes counts the requests to the token endpoint.
func (f *Fake) TokenRefreshes() int { f.mu.Lock(); defer f.mu.Unlock(); return f.refreshes }

// Accepted lists the ids (orderId or transactionId) of the conversions
// accepted, each once, in order.
func (f *Fake) Accepted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.accepted...)
}

// Close releases requests held by Hang.
func (f *Fake) Close() { f.closeOnce.Do(func() { close(f.done) }) }

// ServeHTTP routes to the token endpoint, events:ingest or
// uploadClickConversions; anything else is 404.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/token":
		f.serveToken(w, r)
	case r.URL.Path == "/v1/events:ingest":
		f.serveIngest(w, r)
	case strings.HasSuffix(r.URL.Path, ":uploadClickConversions"):
		f.serveUpload(w, r)
	default:
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", "The requested URL "+r.URL.Path+" was not found on this server.")
	}
}

// record keeps a decoded copy of a request.
func (f *Fake) record(endpoint string, r *http.Request, raw []byte, form url.Values) {
	rec := Request{Endpoint: endpoint, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Form: form, Raw: raw}
	if endpoint != "token" {
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			rec.Body = m
		}
	}
	f.requests.Add(rec)
}

func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.refreshes++
	f.mu.Unlock()
	if r.Method != http.MethodPost {
		f.record("token", r, nil, nil)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed.")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		f.record("token", r, nil, nil)
		oauthError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
		return
	}
	if err := r.ParseForm(); err != nil {
		f.record("token", r, nil, nil)
		oauthError(w, http.StatusBadRequest, "invalid_request", "Malformed form body.")
		return
	}
	form := r.PostForm
	f.record("token", r, []byte(form.Encode()), form)

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokenFails.Next() != 0 {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	switch {
	case form.Get("grant_type") != "refresh_token":
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+form.Get("grant_type"))
		return
	case form.Get("client_id") != ClientID || form.Get("client_secret") != ClientSecret:
		oauthError(w, http.StatusUnauthorized, "invalid_client", "The OAuth client was not found.")
		return
	case !f.refreshTokens[form.Get("refresh_token")]:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Token has been expired or revoked.")
		return
	}
	f.seq++
	token := fmt.Sprintf("ya29.fake-%d-%s", f.seq, randomHex(8))
	f.tokens[token] = f.now().Add(f.tokenTTL)
	answer := map[string]any{
		"access_token": token,
		"expires_in":   int(f.tokenTTL / time.Second),
		"scope":        "https://www.googleapis.com/auth/adwords https://www.googleapis.com/auth/datamanager",
		"token_type":   "Bearer",
	}
	if f.rotate {
		refresh := fmt.Sprintf("1//fake-rotated-%d-%s", f.seq, randomHex(8))
		f.refreshTokens[refresh] = true
		answer["refresh_token"] = refresh
	}
	writeJSON(w, http.StatusOK, answer)
}

// authorize checks the Bearer token: "" when it is a live token this fake
// issued, else the reason it is not.
func (f *Fake) authorize(r *http.Request) (reason string) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 || !strings.HasPrefix(h[0], "Bearer ") {
		return "missing"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.tokens[strings.TrimPrefix(h[0], "Bearer ")]
	switch {
	case !ok:
		return "invalid"
	case !f.now().Before(exp):
		return "expired"
	}
	return ""
}

// hang holds the request until the client goes away or the fake is closed.
func (f *Fake) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-f.done:
	}
}

func (f *Fake) accept(id string) {
	if !f.acceptedSet[id] {
		f.acceptedSet[id] = true
		f.accepted = append(f.accepted, id)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a client that went away is not the fake's concern
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// writeStatus writes Google's error envelope (google.rpc.Status).
func writeStatus(w http.ResponseWriter, status int, code, message string, details ...any) {
	e := map[string]any{"code": status, "message": message, "status": code}
	if len(details) > 0 {
		e["details"] = details
	}
	writeJSON(w, status, map[string]any{"error": e})
}
