package googlefake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"time"
)

var (
	uploadPath     = regexp.MustCompile(`^/(v(?:2[3-9]|[3-9]\d))/customers/(\d{10}):uploadClickConversions$`)
	actionResource = regexp.MustCompile(`^customers/(\d+)/conversionActions/(\d+)$`)
	adsDateTime    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$`)
	clickIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,512}$`)
	sha256Hex      = regexp.MustCompile(`^[a-f0-9]{64}$`)
	currencyCode   = regexp.MustCompile(`^[A-Z]{3}$`)
	digits10       = regexp.MustCompile(`^\d{10}$`)
)

const (
	maxConversions     = 2000
	maxUserIdentifiers = 5
	clickWindow        = 90 * 24 * time.Hour
	minClickAge        = 6 * time.Hour
	adsTimeLayout      = "2006-01-02 15:04:05-07:00"
)

// uploadRequest is UploadClickConversionsRequest with every field the API
// takes, so only a name Google does not know is refused.
type uploadRequest struct {
	CustomerID     string            `json:"customerId"`
	Conversions    []clickConversion `json:"conversions"`
	PartialFailure *bool             `json:"partialFailure"`
	ValidateOnly   bool              `json:"validateOnly"`
	JobID          *int64            `json:"jobId"`
	DebugEnabled   bool              `json:"debugEnabled"`
}

type clickConversion struct {
	GCLID                          string           `json:"gclid"`
	GBRAID                         string           `json:"gbraid"`
	WBRAID                         string           `json:"wbraid"`
	ConversionAction               string           `json:"conversionAction"`
	ConversionDateTime             string           `json:"conversionDateTime"`
	ConversionValue                *float64         `json:"conversionValue"`
	CurrencyCode                   string           `json:"currencyCode"`
	OrderID                        string           `json:"orderId"`
	ExternalAttributionData        json.RawMessage  `json:"externalAttributionData"`
	CustomVariables                json.RawMessage  `json:"customVariables"`
	CartData                       json.RawMessage  `json:"cartData"`
	UserIdentifiers                []userIdentifier `json:"userIdentifiers"`
	ConversionEnvironment          string           `json:"conversionEnvironment"`
	Consent                        *adsConsent      `json:"consent"`
	CustomerType                   string           `json:"customerType"`
	UserIPAddress                  string           `json:"userIpAddress"`
	SessionAttributesEncoded       string           `json:"sessionAttributesEncoded"`
	SessionAttributesKeyValuePairs json.RawMessage  `json:"sessionAttributesKeyValuePairs"`
}

type userIdentifier struct {
	HashedEmail          string          `json:"hashedEmail"`
	HashedPhoneNumber    string          `json:"hashedPhoneNumber"`
	MobileID             string          `json:"mobileId"`
	ThirdPartyUserID     string          `json:"thirdPartyUserId"`
	AddressInfo          json.RawMessage `json:"addressInfo"`
	UserIdentifierSource string          `json:"userIdentifierSource"`
}

type adsConsent struct {
	AdUserData        string `json:"adUserData"`
	AdPersonalization string `json:"adPersonalization"`
}

// adsErr is one GoogleAdsError.
type adsErr struct {
	family, code, message string
	row                   int    // conversions[row], or -1
	field                 string // snake_case proto field under the row
}

func (e adsErr) json() map[string]any {
	out := map[string]any{"errorCode": map[string]string{e.family: e.code}, "message": e.message}
	if e.row >= 0 {
		path := []map[string]any{{"fieldName": "conversions", "index": e.row}}
		if e.field != "" {
			path = append(path, map[string]any{"fieldName": e.field})
		}
		out["location"] = map[string]any{"fieldPathElements": path}
	}
	return out
}

func (e adsErr) where() string {
	if e.row < 0 {
		return e.message
	}
	at := fmt.Sprintf("conversions[%d]", e.row)
	if e.field != "" {
		at += "." + e.field
	}
	return e.message + ", at " + at
}

func adsFailure(version string, errs ...adsErr) map[string]any {
	var list []map[string]any
	for _, e := range errs {
		list = append(list, e.json())
	}
	return map[string]any{
		"@type":     "type.googleapis.com/google.ads.googleads." + version + ".errors.GoogleAdsFailure",
		"errors":    list,
		"requestId": "fake-" + randomHex(6),
	}
}

// adsRequestError answers a request-level error in Google Ads' shape.
func adsRequestError(w http.ResponseWriter, version string, status int, code string, e adsErr) {
	writeStatus(w, status, code, e.where(), adsFailure(version, e))
}

func (f *Fake) serveUpload(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	f.record("upload", r, raw, nil)
	m := uploadPath.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodPost {
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", "The requested URL "+r.URL.Path+" was not found on this server.")
		return
	}
	version, customer := m[1], m[2]
	row := func(i int, field, family, code, msg string) adsErr {
		return adsErr{family: family, code: code, message: msg, row: i, field: field}
	}
	whole := func(family, code, msg string) adsErr {
		return adsErr{family: family, code: code, message: msg, row: -1}
	}

	switch f.apiFails.Next() {
	case ServerError:
		writeStatus(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable.")
		return
	case RateLimited:
		w.Header().Set("Retry-After", fmt.Sprint(int(RetryAfter/time.Second)))
		adsRequestError(w, version, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED",
			whole("quotaError", "RESOURCE_TEMPORARILY_EXHAUSTED", "Too many requests. Retry in 30 seconds."))
		return
	case Hang:
		f.hang(r)
		return
	case Unauthorized:
		adsRequestError(w, version, http.StatusUnauthorized, "UNAUTHENTICATED",
			whole("authenticationError", "OAUTH_TOKEN_REVOKED", "The OAuth token in the header was revoked."))
		return
	case Validation:
		adsRequestError(w, version, http.StatusBadRequest, "INVALID_ARGUMENT",
			whole("requestError", "INVALID_INPUT", "The request contains invalid input."))
		return
	}

	switch f.authorize(r) {
	case "missing":
		adsRequestError(w, version, http.StatusUnauthorized, "UNAUTHENTICATED",
			whole("authenticationError", "OAUTH_TOKEN_HEADER_INVALID", "Request is missing required authentication credential. Expected OAuth 2 access token."))
		return
	case "invalid":
		adsRequestError(w, version, http.StatusUnauthorized, "UNAUTHENTICATED",
			whole("authenticationError", "OAUTH_TOKEN_INVALID", "Oauth token in the header is not valid."))
		return
	case "expired":
		adsRequestError(w, version, http.StatusUnauthorized, "UNAUTHENTICATED",
			whole("authenticationError", "OAUTH_TOKEN_EXPIRED", "Oauth token in the header has expired."))
		return
	}
	if r.Header.Get("developer-token") != DeveloperToken {
		adsRequestError(w, version, http.StatusUnauthorized, "UNAUTHENTICATED",
			whole("authenticationError", "DEVELOPER_TOKEN_INVALID", "The developer token is not valid."))
		return
	}
	login := r.Header.Values("login-customer-id")
	if len(login) > 1 || (len(login) == 1 && !digits10.MatchString(login[0])) {
		adsRequestError(w, version, http.StatusUnauthorized, "UNAUTHENTICATED",
			whole("authenticationError", "LOGIN_CUSTOMER_ID_PARSING_ERROR", "Error parsing login-customer-id header."))
		return
	}

	f.mu.Lock()
	actions, known := f.customers[customer]
	needLogin := f.loginCustomer
	notAllowlisted := f.notAllowlisted
	f.mu.Unlock()
	if !known || (needLogin != "" && (len(login) == 0 || login[0] != needLogin)) {
		adsRequestError(w, version, http.StatusForbidden, "PERMISSION_DENIED",
			whole("authorizationError", "USER_PERMISSION_DENIED",
				"User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header."))
		return
	}
	if notAllowlisted {
		adsRequestError(w, version, http.StatusForbidden, "PERMISSION_DENIED",
			whole("notAllowlistedError", "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE", "Customer is not on the allowlist for this feature."))
		return
	}

	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. Content-Type must be application/json.")
		return
	}
	var req uploadRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		msg := "Invalid JSON payload received."
		if err != nil {
			msg += " " + err.Error()
		}
		writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", msg,
			map[string]any{"@type": "type.googleapis.com/google.rpc.BadRequest",
				"fieldViolations": []map[string]string{{"description": msg}}})
		return
	}
	switch {
	case req.PartialFailure == nil || !*req.PartialFailure:
		adsRequestError(w, version, http.StatusBadRequest, "INVALID_ARGUMENT",
			whole("partialFailureError", "PARTIAL_FAILURE_MODE_REQUIRED", "The partial failure field was false in the request. This method requires this field be set to true."))
		return
	case len(req.Conversions) == 0:
		adsRequestError(w, version, http.StatusBadRequest, "INVALID_ARGUMENT",
			whole("fieldError", "REQUIRED_NONEMPTY_LIST", "The required field was not present or was an empty list: conversions."))
		return
	case len(req.Conversions) > maxConversions:
		adsRequestError(w, version, http.StatusBadRequest, "INVALID_ARGUMENT",
			whole("conversionUploadError", "TOO_MANY_CONVERSIONS_IN_REQUEST", "The request contained more than 2000 conversions."))
		return
	case req.JobID != nil && (*req.JobID < 0 || *req.JobID > math.MaxInt32):
		adsRequestError(w, version, http.StatusBadRequest, "INVALID_ARGUMENT",
			whole("conversionUploadError", "INVALID_JOB_ID", "The job ID must be in [0, 2^31)."))
		return
	}
	for i, c := range req.Conversions {
		if c.Consent == nil {
			continue
		}
		for field, v := range map[string]string{"ad_user_data": c.Consent.AdUserData, "ad_personalization": c.Consent.AdPersonalization} {
			if v != "" && v != "GRANTED" && v != "DENIED" && v != "UNSPECIFIED" {
				msg := fmt.Sprintf("Invalid value at 'conversions[%d].consent.%s' (type.googleapis.com/google.ads.googleads.%s.enums.ConsentStatusEnum.ConsentStatus), %q", i, field, version, v)
				writeStatus(w, http.StatusBadRequest, "INVALID_ARGUMENT", msg,
					map[string]any{"@type": "type.googleapis.com/google.rpc.BadRequest",
						"fieldViolations": []map[string]string{{"field": fmt.Sprintf("conversions[%d].consent.%s", i, field), "description": msg}}})
				return
			}
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	results := make([]map[string]any, len(req.Conversions))
	var errs []adsErr
	inRequest := map[string]bool{}
	type commit struct{ order, clickConv, id string }
	var commits []commit
	for i, c := range req.Conversions {
		e, ok := f.checkRow(i, c, customer, actions, now, inRequest, row)
		if !ok {
			errs = append(errs, e)
			results[i] = map[string]any{}
			continue
		}
		res := map[string]any{"conversionAction": c.ConversionAction, "conversionDateTime": c.ConversionDateTime}
		for k, v := range map[string]string{"gclid": c.GCLID, "gbraid": c.GBRAID, "wbraid": c.WBRAID} {
			if v != "" {
				res[k] = v
			}
		}
		if len(c.UserIdentifiers) > 0 {
			res["userIdentifiers"] = c.UserIdentifiers
		}
		results[i] = res
		id := c.OrderID
		if id == "" {
			id = c.ConversionAction + "|" + c.GCLID + c.GBRAID + c.WBRAID + "|" + c.ConversionDateTime
		}
		commits = append(commits, commit{order: orderKey(c), clickConv: clickConvKey(c), id: id})
	}
	if !req.ValidateOnly {
		for _, c := range commits {
			if c.order != "" {
				f.orderIDs[c.order] = true
			}
			f.clickConvs[c.clickConv] = true
			f.accept(c.id)
		}
	}
	out := map[string]any{"jobId": fmt.Sprint(int64(1)<<42 + int64(f.seq))}
	if !req.ValidateOnly {
		out["results"] = results
	}
	if len(errs) > 0 {
		var where []string
		for _, e := range errs {
			where = append(where, e.where())
		}
		out["partialFailureError"] = map[string]any{
			"code":    3,
			"message": strings.Join(where, ", "),
			"details": []any{adsFailure(version, errs...)},
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func orderKey(c clickConversion) string {
	if c.OrderID == "" {
		return ""
	}
	return c.ConversionAction + "|" + c.OrderID
}

func clickConvKey(c clickConversion) string {
	return c.ConversionAction + "|" + c.GCLID + "|" + c.GBRAID + "|" + c.WBRAID + "|" + c.ConversionDateTime
}

// checkRow applies the per-conversion rules; it runs with f.mu held.
func (f *Fake) checkRow(i int, c clickConversion, customer string, actions map[string]bool, now time.Time,
	inRequest map[string]bool, row func(int, string, string, string, string) adsErr) (adsErr, bool) {
	upload := func(field, code, msg string) (adsErr, bool) {
		return row(i, field, "conversionUploadError", code, msg), false
	}

	if code, ok := f.partial[c.OrderID]; ok && c.OrderID != "" {
		family := "conversionUploadError"
		if fam, cd, found := strings.Cut(code, ":"); found {
			family, code = fam, cd
		}
		return row(i, "", family, code, "Injected failure "+code+"."), false
	}
	m := actionResource.FindStringSubmatch(c.ConversionAction)
	if m == nil || m[1] != customer || !actions[m[2]] {
		return upload("conversion_action", "NO_CONVERSION_ACTION_FOUND",
			"The conversion action specified in the upload request cannot be found. Make sure it's available in this account.")
	}
	if !adsDateTime.MatchString(c.ConversionDateTime) {
		return row(i, "conversion_date_time", "dateError", "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET",
			"The string date time's format should be yyyy-mm-dd hh:mm:ss+|-hh:mm."), false
	}
	at, err := time.Parse(adsTimeLayout, c.ConversionDateTime)
	if err != nil {
		return row(i, "conversion_date_time", "dateError", "INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET",
			"The string date time's format should be yyyy-mm-dd hh:mm:ss+|-hh:mm."), false
	}

	var kind, click string
	n := 0
	for _, k := range []struct{ kind, v string }{{"gclid", c.GCLID}, {"gbraid", c.GBRAID}, {"wbraid", c.WBRAID}} {
		if k.v != "" {
			n++
			if kind == "" {
				kind, click = k.kind, k.v
			}
		}
	}
	switch {
	case c.GBRAID != "" && c.WBRAID != "":
		return upload("wbraid", "GBRAID_WBRAID_BOTH_SET", "Both gbraid and wbraid are set; set at most one.")
	case n > 1:
		return row(i, "gbraid", "fieldError", "VALUE_MUST_BE_UNSET", "Only one of gclid, gbraid and wbraid may be set."), false
	case n == 0 && len(c.UserIdentifiers) == 0:
		return upload("", "CLICK_NOT_FOUND", "No click was found for the given identifiers: set a gclid, gbraid, wbraid or user identifiers.")
	}

	if len(c.UserIdentifiers) > maxUserIdentifiers {
		return row(i, "user_identifiers", "collectionSizeError", "TOO_MANY", "Too many user identifiers; at most 5."), false
	}
	for _, u := range c.UserIdentifiers {
		set := 0
		for _, v := range []bool{u.HashedEmail != "", u.HashedPhoneNumber != "", u.MobileID != "", u.ThirdPartyUserID != "", len(u.AddressInfo) > 0} {
			if v {
				set++
			}
		}
		switch {
		case u.MobileID != "" || u.ThirdPartyUserID != "" || len(u.AddressInfo) > 0:
			return upload("user_identifiers", "UNSUPPORTED_USER_IDENTIFIER", "Only hashed_email and hashed_phone_number are supported.")
		case set != 1:
			return upload("user_identifiers", "INVALID_USER_IDENTIFIER", "Each user identifier must hold exactly one identifier.")
		case u.HashedEmail != "" && !sha256Hex.MatchString(u.HashedEmail),
			u.HashedPhoneNumber != "" && !sha256Hex.MatchString(u.HashedPhoneNumber):
			return upload("user_identifiers", "INVALID_USER_IDENTIFIER", "The user identifier is not a valid SHA-256 hash in lower-case hex.")
		}
	}
	if c.CurrencyCode != "" && !currencyCode.MatchString(c.CurrencyCode) {
		return row(i, "currency_code", "currencyCodeError", "UNSUPPORTED", "The currency code is not supported."), false
	}

	if click != "" {
		if !clickIDPattern.MatchString(click) {
			return upload(kind, "UNPARSEABLE_"+strings.ToUpper(kind), "The "+kind+" could not be decoded.")
		}
		clickAt, ok := f.clicks[click]
		switch {
		case !ok:
			return upload(kind, "EVENT_NOT_FOUND", "The click associated with the given identifier was not found.")
		case now.Sub(clickAt) > clickWindow || at.Sub(clickAt) > clickWindow:
			return upload(kind, "EXPIRED_EVENT", "The click associated with the given identifier is too old to be imported.")
		case now.Sub(clickAt) < minClickAge:
			return upload(kind, "TOO_RECENT_EVENT", "The click associated with the given identifier is too recent; wait 6 hours after the click.")
		case at.Before(clickAt):
			return upload("conversion_date_time", "CONVERSION_PRECEDES_EVENT", "The conversion happened before the click.")
		}
	}

	if key := orderKey(c); key != "" {
		switch {
		case inRequest[key]:
			return upload("order_id", "DUPLICATE_ORDER_ID", "The request contains two conversions with the same order ID.")
		case f.orderIDs[key]:
			return upload("order_id", "ORDER_ID_ALREADY_IN_USE", "The order ID was already used for this conversion action.")
		}
		inRequest[key] = true
	}
	key := "click|" + clickConvKey(c)
	switch {
	case click == "" || c.OrderID != "":
	case inRequest[key]:
		return upload("", "DUPLICATE_CLICK_CONVERSION_IN_REQUEST", "The request contains two conversions with the same click, action and time.")
	case f.clickConvs[clickConvKey(c)]:
		return upload("", "CLICK_CONVERSION_ALREADY_EXISTS", "A conversion with this click, action and time was already uploaded.")
	}
	inRequest[key] = true
	return adsErr{}, true
}
