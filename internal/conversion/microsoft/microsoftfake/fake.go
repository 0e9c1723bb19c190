// Package microsoftfake is a strict stand-in for Microsoft Advertising's
// ApplyOfflineConversions (Campaign Management v13, REST) and the Microsoft
// identity platform's token endpoint, for tests. It refuses what the real
// service refuses, with Microsoft's error codes and shapes, records every
// request, and can be told to fail in the ways the real one does.
//
// The rules it enforces are listed in docs/conversions-microsoft.md.
package microsoftfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pruuv/pruuv/internal/conversion/fakekit"
)

// Paths served.
const (
	APIPath   = "/CampaignManagement/v13/OfflineConversions/Apply"
	tokenPath = "/oauth2/v2.0/token" // after "/{tenant}"
)

// Scope is the permission the token endpoint requires.
const Scope = "https://ads.microsoft.com/msads.manage"

// Limits the fake applies.
const (
	MaxConversions = 1000
	Window         = 90 * 24 * time.Hour // ConversionTime age, and the goals' conversion window
	GoalSettle     = 2 * time.Hour       // a goal refuses conversions until this old (5615)
	DefaultLife    = time.Hour           // access-token lifetime
)

// Account is the one Microsoft Advertising account and app registration the
// fake knows.
type Account struct {
	CustomerID     string
	AccountID      string
	DeveloperToken string
	ClientID       string
	ClientSecret   string // "" makes the app a public client, which must not send a secret
	RefreshToken   string // the grant the fake starts with
	Tenant         string // "" means "common"
}

// Kind is an injected failure.
type Kind int

// Failures FailNext can inject. API kinds apply to ApplyOfflineConversions,
// token kinds to the token endpoint.
const (
	ServerError        Kind = iota + 1 // API: 500 with an InternalError (0) fault
	Unavailable                        // API: 503 with an HTML body
	TooManyRequests                    // API: 429 with Retry-After: 30
	CallRateExceeded                   // API: 400 with OperationError 117 and no Retry-After
	Hang                               // API: no answer until the client gives up
	TokenExpired                       // API: 401 AuthenticationTokenExpired (109); the token presented stops working
	InvalidCredentials                 // API: 401 InvalidCredentials (105)
	Garbage                            // API: 200 with a body that is not JSON
	InvalidGrant                       // token: 400 invalid_grant
	TokenUnavailable                   // token: 503
)

func (k Kind) token() bool { return k == InvalidGrant || k == TokenUnavailable }

// Request is one recorded ApplyOfflineConversions call.
type Request struct {
	Header http.Header
	Raw    []byte
	Body   *ApplyRequest // nil when the body is not JSON of the right shape
}

// ApplyRequest is the request body.
type ApplyRequest struct {
	OfflineConversions []*OfflineConversion
}

// OfflineConversion is one conversion as received. The fake does not model
// external attribution: ExternalAttributionCredit and ExternalAttributionModel
// are refused as unknown fields.
type OfflineConversion struct {
	ConversionCurrencyCode string   `json:",omitempty"`
	ConversionName         string   `json:",omitempty"`
	ConversionTime         string   `json:",omitempty"`
	ConversionValue        *float64 `json:",omitempty"`
	HashedEmailAddress     string   `json:",omitempty"`
	HashedPhoneNumber      string   `json:",omitempty"`
	MicrosoftClickId       string   `json:",omitempty"`
}

// BatchError is Microsoft's per-item error.
type BatchError struct {
	Code      int
	Details   *string
	ErrorCode string
	FieldPath *string
	Index     int
	Message   string
	Type      string
}

// OperationError is Microsoft's whole-call error (ApiFaultDetail).
type OperationError struct {
	Code      int
	Details   *string
	ErrorCode string
	Message   string
}

// AdAPIError is Microsoft's generic error (AdApiFaultDetail), used for
// authentication failures.
type AdAPIError struct {
	Code      int
	Detail    *string
	ErrorCode string
	Message   string
}

// Error codes and names (Microsoft's operation error codes; the 99xxx ones
// are the fake's own, for refusals whose real code is not documented).
var errorCodes = map[int]string{
	0:     "InternalError",
	105:   "InvalidCredentials",
	106:   "UserIsNotAuthorized",
	109:   "AuthenticationTokenExpired",
	117:   "CallRateExceeded",
	1102:  "CampaignServiceInvalidAccountId",
	5600:  "OfflineConversionsNullOrEmpty",
	5601:  "OfflineConversionsLimitExceeded",
	5602:  "OfflineConversionIsNull",
	5603:  "OfflineConversionMicrosoftClickIdNullOrEmpty",
	5604:  "OfflineConversionMicrosoftClickIdInvalid",
	5605:  "OfflineConversionNameNullOrEmpty",
	5606:  "OfflineConversionNameInvalid",
	5607:  "OfflineConversionTimeInvalid",
	5608:  "OfflineConversionTimeNullOrEmpty",
	5609:  "OfflineConversionTimeOutOfWindow",
	5610:  "OfflineConversionValueInvalid",
	5611:  "OfflineConversionCurrencyCodeInvalid",
	5612:  "OfflineConversionsApplyFailed",
	5613:  "OfflineConversionPilotNotEnabledForCustomer",
	5614:  "FutureConversionTimeCannotBeSet",
	5615:  "OfflineConversionNotAcceptedForGoal",
	5616:  "ConversionTimeEarlierThanClickTime",
	5617:  "ClickIdDateTimeOutsideGoalConversionWindow",
	99000: "FakeInvalidRequestBody",
	99001: "FakeHashedEmailAddressInvalid",
	99002: "FakeHashedPhoneNumberInvalid",
}

// Name returns the ErrorCode the fake uses for a numeric code.
func Name(code int) string { return errorCodes[code] }

var (
	clickRe = regexp.MustCompile(`^(?i)[0-9a-f]{32}(-\d)?$`)
	timeRe  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$`)
	hashRe  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	curRe   = regexp.MustCompile(`^[A-Z]{3}$`)
	digits  = regexp.MustCompile(`^[0-9]{1,19}$`)
)

type dedupKey struct {
	click, goal string
	at          time.Time
}

// Fake is an http.Handler serving both endpoints. Use it with
// httptest.NewServer and point Endpoints.Microsoft and MicrosoftOAuth at it.
type Fake struct {
	acct Account
	now  func() time.Time

	mu        sync.Mutex
	life      time.Duration
	goals     map[string]time.Time
	clicks    map[string]time.Time
	access    map[string]time.Time // token → expiry
	refresh   map[string]bool      // refresh tokens that work
	apiFail   fakekit.Failures[Kind]
	tokenFail fakekit.Failures[Kind]
	partial   map[string]int // msclkid → injected error code
	requests  fakekit.Log[Request]
	tokenReqs fakekit.Log[map[string][]string]
	accepted  []OfflineConversion
	seen      map[dedupKey]bool
	seq       int
	release   chan struct{}
	closed    bool
}

// New returns a fake for one account; now is its clock (time.Now when nil).
func New(acct Account, now func() time.Time) *Fake {
	if now == nil {
		now = time.Now
	}
	return &Fake{
		acct:    acct,
		now:     now,
		life:    DefaultLife,
		goals:   make(map[string]time.Time),
		clicks:  make(map[string]time.Time),
		access:  make(map[string]time.Time),
		refresh: map[string]bool{acct.RefreshToken: true},
		partial: make(map[string]int),
		seen:    make(map[dedupKey]bool),
		release: make(chan struct{}),
	}
}

// AddGoal creates an offline conversion goal at createdAt.
func (f *Fake) AddGoal(name string, createdAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.goals[name] = createdAt
}

// AddClick records when an msclkid's click happened, for the after-click and
// conversion-window rules. Conversions for unrecorded (well-formed) clicks are
// accepted without those checks.
func (f *Fake) AddClick(msclkid string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clicks[strings.ToLower(msclkid)] = at
}

// SetTokenLife sets expires_in for tokens issued from now on.
func (f *Fake) SetTokenLife(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.life = d
}

// FailNext makes the next n calls to the endpoint kind belongs to fail that way.
func (f *Fake) FailNext(n int, kind Kind) {
	if kind.token() {
		f.tokenFail.Add(n, kind)
	} else {
		f.apiFail.Add(n, kind)
	}
}

// SetPartial makes every conversion with this msclkid fail with code (a
// PartialErrors entry) until ClearPartial.
func (f *Fake) SetPartial(msclkid string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partial[strings.ToLower(msclkid)] = code
}

// ClearPartial undoes SetPartial.
func (f *Fake) ClearPartial(msclkid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.partial, strings.ToLower(msclkid))
}

// ExpireAccessTokens makes every access token issued so far expired.
func (f *Fake) ExpireAccessTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for t := range f.access {
		f.access[t] = time.Time{}
	}
}

// RevokeRefreshTokens makes every refresh token fail with invalid_grant, as
// when the user withdraws consent or changes their password.
func (f *Fake) RevokeRefreshTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.refresh)
}

// RevokeRefreshToken makes one refresh token fail with invalid_grant, as when
// it reaches the end of its life; the others keep working.
func (f *Fake) RevokeRefreshToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.refresh, token)
}

// Requests returns every ApplyOfflineConversions call received, in order.
func (f *Fake) Requests() []Request { return f.requests.All() }

// TokenRequests returns the form of every token request received, in order.
func (f *Fake) TokenRequests() []map[string][]string { return f.tokenReqs.All() }

// Accepted returns the conversions applied, duplicates left out.
func (f *Fake) Accepted() []OfflineConversion {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]OfflineConversion, len(f.accepted))
	copy(out, f.accepted)
	return out
}

// Close releases requests held by Hang.
func (f *Fake) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.release)
	}
}

// ServeHTTP routes to the token endpoint or ApplyOfflineConversions.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == APIPath:
		f.serveApply(w, r)
	case strings.HasSuffix(r.URL.Path, tokenPath) && strings.Count(r.URL.Path, "/") == 4:
		f.serveToken(w, r, strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), tokenPath))
	default:
		http.NotFound(w, r)
	}
}

func (f *Fake) trackingID() string {
	f.seq++
	return fmt.Sprintf("fake-%08d", f.seq)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// adAPIFault writes an AdApiFaultDetail: authentication and other generic
// failures.
func (f *Fake) adAPIFault(w http.ResponseWriter, status, code int, msg string) {
	id := f.trackingID()
	w.Header().Set("TrackingId", id)
	writeJSON(w, status, map[string]any{
		"TrackingId": id,
		"Type":       "AdApiFaultDetail",
		"Errors":     []AdAPIError{{Code: code, ErrorCode: errorCodes[code], Message: msg}},
	})
}

// apiFault writes an ApiFaultDetail with operation errors.
func (f *Fake) apiFault(w http.ResponseWriter, status, code int, msg string) {
	id := f.trackingID()
	w.Header().Set("TrackingId", id)
	writeJSON(w, status, map[string]any{
		"TrackingId":      id,
		"Type":            "ApiFaultDetail",
		"BatchErrors":     []BatchError{},
		"OperationErrors": []OperationError{{Code: code, ErrorCode: errorCodes[code], Message: msg}},
	})
}

func (f *Fake) serveApply(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	rec := Request{Header: r.Header.Clone(), Raw: raw}
	var loose ApplyRequest
	if json.Unmarshal(raw, &loose) == nil {
		rec.Body = &loose
	}

	f.requests.Add(rec)
	fail := f.apiFail.Next()
	f.mu.Lock()
	release := f.release
	f.mu.Unlock()

	if fail == Hang {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	switch fail {
	case ServerError:
		f.apiFault(w, http.StatusInternalServerError, 0, "An internal error has occurred.")
		return
	case Unavailable:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "<html><body>Service Unavailable</body></html>")
		return
	case TooManyRequests:
		w.Header().Set("Retry-After", "30")
		f.apiFault(w, http.StatusTooManyRequests, 117, "You have exceeded the number of calls that you are allowed to make in a minute.")
		return
	case CallRateExceeded:
		f.apiFault(w, http.StatusBadRequest, 117, "You have exceeded the number of calls that you are allowed to make in a minute.")
		return
	case InvalidCredentials:
		f.adAPIFault(w, http.StatusUnauthorized, 105, "Authentication failed. Either supplied credentials are invalid or the account is inactive.")
		return
	case Garbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"PartialErrors":[`)
		return
	}

	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	if !f.authenticate(w, r, fail == TokenExpired) {
		return
	}

	var req ApplyRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		msg := "The request body is not an ApplyOfflineConversionsRequest"
		if err != nil {
			msg += ": " + err.Error()
		}
		f.apiFault(w, http.StatusBadRequest, 99000, msg)
		return
	}
	switch n := len(req.OfflineConversions); {
	case n == 0:
		f.apiFault(w, http.StatusBadRequest, 5600, "The list of offline conversions cannot be null or empty.")
		return
	case n > MaxConversions:
		f.apiFault(w, http.StatusBadRequest, 5601, fmt.Sprintf("The list of offline conversions cannot exceed %d.", MaxConversions))
		return
	}

	partial := []BatchError{}
	for i, oc := range req.OfflineConversions {
		code := f.check(oc)
		if code < 0 {
			continue // applied, or a duplicate silently ignored
		}
		partial = append(partial, BatchError{Code: code, ErrorCode: errorCodes[code], Index: i,
			Message: "The offline conversion was not applied: " + errorCodes[code] + ".", Type: "BatchError"})
	}
	id := f.trackingID()
	w.Header().Set("TrackingId", id)
	writeJSON(w, http.StatusOK, map[string]any{"PartialErrors": partial})
}

// authenticate checks the headers; it writes the fault and returns false when
// they fail. expire makes the presented token expire first.
func (f *Fake) authenticate(w http.ResponseWriter, r *http.Request, expire bool) bool {
	token := ""
	if a := r.Header.Get("Authorization"); a != "" {
		var ok bool
		if token, ok = strings.CutPrefix(a, "Bearer "); !ok {
			token = ""
		}
	} else {
		token = r.Header.Get("AuthenticationToken")
	}
	exp, known := f.access[token]
	if expire && known {
		f.access[token] = time.Time{}
		exp = time.Time{}
	}
	switch {
	case token == "" || !known:
		f.adAPIFault(w, http.StatusUnauthorized, 105, "Authentication failed. Either supplied credentials are invalid or the account is inactive.")
		return false
	case !f.now().Before(exp):
		f.adAPIFault(w, http.StatusUnauthorized, 109, "The OAuth access token has expired.")
		return false
	case r.Header.Get("DeveloperToken") != f.acct.DeveloperToken:
		f.adAPIFault(w, http.StatusUnauthorized, 105, "Authentication failed. The developer token is missing or invalid.")
		return false
	}
	cid := r.Header.Get("CustomerId")
	if !digits.MatchString(cid) || cid != f.acct.CustomerID {
		f.adAPIFault(w, http.StatusForbidden, 106, "The user is not authorized to access this customer.")
		return false
	}
	aid := r.Header.Get("CustomerAccountId")
	if !digits.MatchString(aid) || aid != f.acct.AccountID {
		f.apiFault(w, http.StatusBadRequest, 1102, "The account identifier is not valid.")
		return false
	}
	return true
}

// check validates one conversion and applies it. It returns the error code,
// or -1 when the conversion was applied or ignored as a duplicate.
func (f *Fake) check(oc *OfflineConversion) int {
	if oc == nil {
		return 5602
	}
	click := strings.ToLower(oc.MicrosoftClickId)
	if code, ok := f.partial[click]; ok && click != "" {
		return code
	}
	switch {
	case oc.MicrosoftClickId == "":
		return 5603
	case !clickRe.MatchString(oc.MicrosoftClickId):
		return 5604
	case oc.ConversionName == "":
		return 5605
	}
	created, ok := f.goals[oc.ConversionName]
	if !ok {
		return 5606
	}
	now := f.now()
	if now.Sub(created) < GoalSettle {
		return 5615
	}
	if oc.ConversionTime == "" {
		return 5608
	}
	if !timeRe.MatchString(oc.ConversionTime) {
		return 5607
	}
	at, err := time.Parse(time.RFC3339Nano, oc.ConversionTime)
	if err != nil {
		return 5607
	}
	switch {
	case now.Sub(at) > Window:
		return 5609
	case at.After(now):
		return 5614
	}
	if clickAt, ok := f.clicks[click]; ok {
		if at.Before(clickAt) {
			return 5616
		}
		if at.Sub(clickAt) > Window {
			return 5617
		}
	}
	if oc.ConversionValue != nil && *oc.ConversionValue < 0 {
		return 5610
	}
	if oc.ConversionCurrencyCode != "" && !curRe.MatchString(oc.ConversionCurrencyCode) {
		return 5611
	}
	if oc.HashedEmailAddress != "" && !hashRe.MatchString(oc.HashedEmailAddress) {
		return 99001
	}
	if oc.HashedPhoneNumber != "" && !hashRe.MatchString(oc.HashedPhoneNumber) {
		return 99002
	}
	k := dedupKey{click: click, goal: oc.ConversionName, at: at.UTC()}
	if !f.seen[k] {
		f.seen[k] = true
		f.accepted = append(f.accepted, *oc)
	}
	return -1
}

// tokenError is the identity platform's error body.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	ErrorCodes  []int  `json:"error_codes"`
	Timestamp   string `json:"timestamp"`
	TraceID     string `json:"trace_id"`
}

func (f *Fake) tokenFault(w http.ResponseWriter, status int, code string, aadsts int, msg string) {
	writeJSON(w, status, tokenError{
		Error:       code,
		Description: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nTimestamp: %s", aadsts, msg, f.trackingID(), f.now().UTC().Format(time.DateTime)),
		ErrorCodes:  []int{aadsts},
		Timestamp:   f.now().UTC().Format(time.DateTime) + "Z",
		TraceID:     f.trackingID(),
	})
}

func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ct := r.Header.Get("Content-Type")
	parseErr := r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenReqs.Add(r.PostForm)
	fail := f.tokenFail.Next()
	form := r.PostForm
	want := f.acct.Tenant
	if want == "" {
		want = "common"
	}
	switch {
	case fail == TokenUnavailable:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case tenant != want:
		f.tokenFault(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found.", tenant))
	case !strings.HasPrefix(ct, "application/x-www-form-urlencoded") || parseErr != nil:
		f.tokenFault(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.")
	case form.Get("grant_type") != "refresh_token":
		f.tokenFault(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
	case form.Get("client_id") != f.acct.ClientID:
		f.tokenFault(w, http.StatusBadRequest, "unauthorized_client", 700016, "Application not found in the directory.")
	case f.acct.ClientSecret == "" && form.Has("client_secret"):
		f.tokenFault(w, http.StatusBadRequest, "invalid_request", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
	case f.acct.ClientSecret != "" && form.Get("client_secret") != f.acct.ClientSecret:
		f.tokenFault(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided.")
	case !hasScope(form.Get("scope"), Scope):
		f.tokenFault(w, http.StatusBadRequest, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid.")
	case fail == InvalidGrant || !f.refresh[form.Get("refresh_token")]:
		f.tokenFault(w, http.StatusBadRequest, "invalid_grant", 70000, "The provided grant has expired due to it being revoked, a fresh auth token is needed.")
	default:
		f.seq++
		access := fmt.Sprintf("fake-access-%d", f.seq)
		refresh := fmt.Sprintf("fake-refresh-%d", f.seq)
		f.access[access] = f.now().Add(f.life)
		f.refresh[refresh] = true // the old one keeps working, as with Microsoft
		body := map[string]any{
			"token_type":   "Bearer",
			"scope":        form.Get("scope"),
			"expires_in":   int(f.life / time.Second),
			"access_token": access,
		}
		if hasScope(form.Get("scope"), "offline_access") {
			body["refresh_token"] = refresh
		}
		writeJSON(w, http.StatusOK, body)
	}
}

func hasScope(scopes, want string) bool {
	for _, s := range strings.Fields(scopes) {
		if s == want {
			return true
		}
	}
	return false
}
