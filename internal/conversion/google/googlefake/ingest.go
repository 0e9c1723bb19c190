package googlefake

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

const (
	maxEvents          = 2000
	maxDestinations    = 10
	maxEventIdentities = 10
)

// ingestRequest is IngestEventsRequest with every field the API takes.
type ingestRequest struct {
	Destinations   []destination   `json:"destinations"`
	Events         []ingestEvent   `json:"events"`
	Consent        *dmConsent      `json:"consent"`
	ValidateOnly   bool            `json:"validateOnly"`
	Encoding       string          `json:"encoding"`
	EncryptionInfo json.RawMessage `json:"encryptionInfo"`
}

type productAccount struct {
	Product     string `json:"product"`
	AccountType string `json:"accountType"`
	AccountID   string `json:"accountId"`
}

type destination struct {
	Reference            string          `json:"reference"`
	LoginAccount         *productAccount `json:"loginAccount"`
	LinkedAccount        *productAccount `json:"linkedAccount"`
	OperatingAccount     *productAccount `json:"operatingAccount"`
	ProductDestinationID string          `json:"productDestinationId"`
}

type ingestEvent struct {
	DestinationReferences     []string        `json:"destinationReferences"`
	TransactionID             string          `json:"transactionId"`
	EventTimestamp            string          `json:"eventTimestamp"`
	LastUpdatedTimestamp      string          `json:"lastUpdatedTimestamp"`
	UserData                  *userData       `json:"userData"`
	Consent                   *dmConsent      `json:"consent"`
	AdIdentifiers             *adIdentifiers  `json:"adIdentifiers"`
	Currency                  string          `json:"currency"`
	ConversionValue           *float64        `json:"conversionValue"`
	EventSource               string          `json:"eventSource"`
	EventDeviceInfo           json.RawMessage `json:"eventDeviceInfo"`
	CartData                  json.RawMessage `json:"cartData"`
	CustomVariables           json.RawMessage `json:"customVariables"`
	ExperimentalFields        json.RawMessage `json:"experimentalFields"`
	UserProperties            json.RawMessage `json:"userProperties"`
	EventName                 string          `json:"eventName"`
	ClientID                  string          `json:"clientId"`
	UserID                    string          `json:"userId"`
	AdditionalEventParameters json.RawMessage `json:"additionalEventParameters"`
}

type userData struct {
	UserIdentifiers []struct {
		EmailAddress string          `json:"emailAddress"`
		PhoneNumber  string          `json:"phoneNumber"`
		Address      json.RawMessage `json:"address"`
	} `json:"userIdentifiers"`
}

type adIdentifiers struct {
	GCLID                 string          `json:"gclid"`
	GBRAID                string          `json:"gbraid"`
	WBRAID                string          `json:"wbraid"`
	SessionAttributes     string          `json:"sessionAttributes"`
	LandingPageDeviceInfo json.RawMessage `json:"landingPageDeviceInfo"`
}

type dmConsent struct {
	AdUserData        string `json:"adUserData"`
	AdPersonalization string `json:"adPersonalization"`
}

type violation struct{ field, reason, description string }

// ingestError answers a whole-request error in the Data Manager API's shape:
// ErrorInfo, RequestInfo and, for field problems, BadRequest.
func ingestError(w http.ResponseWriter, status int, code, reason, message string, vs []violation) {
	id := "fake-" + randomHex(6)
	details := []any{
		map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
			"domain": "datamanager.googleapis.com", "metadata": map[string]string{"requestId": id}},
		map[string]any{"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": id},
	}
	if len(vs) > 0 {
		var fvs []map[string]string
		for _, v := range vs {
			fvs = append(fvs, map[string]string{"field": v.field, "description": v.description, "reason": v.reason})
		}
		details = append(details, map[string]any{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": fvs})
	}
	writeStatus(w, status, code, message, details...)
}

func (f *Fake) serveIngest(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	f.record("ingest", r, raw, nil)
	if r.Method != http.MethodPost {
		writeStatus(w, http.StatusNotFound, "NOT_FOUND", "The requested URL "+r.URL.Path+" was not found on this server.")
		return
	}
	switch f.apiFails.Next() {
	case ServerError:
		writeStatus(w, http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable.")
		return
	case RateLimited:
		w.Header().Set("Retry-After", fmt.Sprint(int(RetryAfter/time.Second)))
		ingestError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED",
			"Quota exceeded for quota metric 'Ingest requests' of service 'datamanager.googleapis.com'.", nil)
		return
	case Hang:
		f.hang(r)
		return
	case Unauthorized:
		ingestError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "ACCESS_TOKEN_EXPIRED",
			"Request had invalid authentication credentials. Expected OAuth 2 access token.", nil)
		return
	case Validation:
		ingestError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "There was a problem with the request.",
			[]violation{{field: "destinations", reason: "INVALID_DESTINATION", description: "Injected validation failure."}})
		return
	}
	if reason := f.authorize(r); reason != "" {
		er := "ACCESS_TOKEN_TYPE_UNSUPPORTED"
		if reason == "expired" {
			er = "ACCESS_TOKEN_EXPIRED"
		}
		ingestError(w, http.StatusUnauthorized, "UNAUTHENTICATED", er,
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", nil)
		return
	}
	if ct := r.Header.Get("Content-Type"); len(ct) < 16 || ct[:16] != "application/json" {
		ingestError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received. Content-Type must be application/json.", nil)
		return
	}
	var req ingestRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		msg := "Invalid JSON payload received."
		if err != nil {
			msg += " " + err.Error()
		}
		ingestError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", msg, nil)
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	var vs []violation
	bad := func(field, reason, format string, args ...any) {
		vs = append(vs, violation{field: field, reason: reason, description: fmt.Sprintf(format, args...)})
	}

	switch {
	case len(req.Destinations) == 0:
		bad("destinations", "REQUIRED_FIELD_MISSING", "At least one destination is required.")
	case len(req.Destinations) > maxDestinations:
		bad("destinations", "TOO_MANY_DESTINATIONS", "At most %d destinations are allowed.", maxDestinations)
	}
	refs := map[string]bool{}
	for i, d := range req.Destinations {
		at := fmt.Sprintf("destinations[%d]", i)
		if len(req.Destinations) > 1 && d.Reference == "" {
			bad(at+".reference", "REQUIRED_FIELD_MISSING", "A reference is required when there are several destinations.")
		}
		if refs[d.Reference] && d.Reference != "" {
			bad(at+".reference", "INVALID_ARGUMENT", "Destination references must be unique.")
		}
		refs[d.Reference] = true
		oa := d.OperatingAccount
		if oa == nil || oa.AccountType != "GOOGLE_ADS" || !digits10.MatchString(oa.AccountID) {
			bad(at+".operating_account", "INVALID_DESTINATION", "The operating account must be a GOOGLE_ADS account with a 10-digit id.")
			continue
		}
		if la := d.LoginAccount; la != nil && (la.AccountType != "GOOGLE_ADS" || !digits10.MatchString(la.AccountID)) {
			bad(at+".login_account", "INVALID_DESTINATION", "The login account must be a GOOGLE_ADS account with a 10-digit id.")
			continue
		}
		actions, known := f.customers[oa.AccountID]
		login := ""
		if d.LoginAccount != nil {
			login = d.LoginAccount.AccountID
		}
		if !known || (f.loginCustomer != "" && login != f.loginCustomer) {
			ingestError(w, http.StatusForbidden, "PERMISSION_DENIED", "PERMISSION_DENIED",
				"The caller does not have permission to access the operating account.", nil)
			return
		}
		if !actions[d.ProductDestinationID] {
			bad(at+".product_destination_id", "INVALID_CONVERSION_ACTION_ID", "The conversion action %q was not found in the operating account.", d.ProductDestinationID)
		}
	}

	switch {
	case len(req.Events) == 0:
		bad("events", "REQUIRED_FIELD_MISSING", "At least one event is required.")
	case len(req.Events) > maxEvents:
		bad("events", "TOO_MANY_EVENTS", "At most %d events are allowed.", maxEvents)
	}
	if req.Encoding != "" && req.Encoding != "HEX" && req.Encoding != "BASE64" {
		bad("encoding", "INVALID_ARGUMENT", "Encoding must be HEX or BASE64.")
	}
	checkConsent := func(at string, c *dmConsent) {
		if c == nil {
			return
		}
		for name, v := range map[string]string{"ad_user_data": c.AdUserData, "ad_personalization": c.AdPersonalization} {
			if v != "" && v != "CONSENT_GRANTED" && v != "CONSENT_DENIED" && v != "CONSENT_STATUS_UNSPECIFIED" {
				bad(at+"consent."+name, "INVALID_ARGUMENT", "Invalid consent status %q.", v)
			}
		}
	}
	checkConsent("", req.Consent)

	missingEncoding := false
	for i, e := range req.Events {
		at := fmt.Sprintf("events.events[%d]", i)
		if code, ok := f.partial[e.TransactionID]; ok && e.TransactionID != "" {
			bad(at, code, "Injected failure %s.", code)
		}
		for _, ref := range e.DestinationReferences {
			if !refs[ref] {
				bad(at+".destination_references", "INVALID_DESTINATION", "No destination has the reference %q.", ref)
			}
		}
		if e.EventTimestamp == "" {
			bad(at+".event_timestamp", "REQUIRED_FIELD_MISSING", "The event timestamp is required.")
		} else if _, err := time.Parse(time.RFC3339Nano, e.EventTimestamp); err != nil {
			bad(at+".event_timestamp", "INVALID_FORMAT", "The event timestamp must be an RFC 3339 timestamp.")
		}
		hasAd := false
		if a := e.AdIdentifiers; a != nil {
			n := 0
			for _, v := range []string{a.GCLID, a.GBRAID, a.WBRAID} {
				if v != "" {
					n++
					if !clickIDPattern.MatchString(v) {
						bad(at+".ad_identifiers", "INVALID_FORMAT", "The click identifier is malformed.")
					}
				}
			}
			if n > 1 {
				bad(at+".ad_identifiers", "INVALID_ARGUMENT", "Set only one of gclid, gbraid and wbraid.")
			}
			hasAd = n > 0
		}
		if u := e.UserData; u != nil {
			if req.Encoding == "" && !missingEncoding {
				missingEncoding = true
				bad("encoding", "REQUIRED_FIELD_MISSING", "Encoding is required when events carry user data.")
			}
			if len(u.UserIdentifiers) == 0 || len(u.UserIdentifiers) > maxEventIdentities {
				bad(at+".user_data.user_identifiers", "INVALID_ARGUMENT", "Between 1 and %d user identifiers are allowed.", maxEventIdentities)
			}
			for j, id := range u.UserIdentifiers {
				uat := fmt.Sprintf("%s.user_data.user_identifiers[%d]", at, j)
				set := 0
				for _, v := range []bool{id.EmailAddress != "", id.PhoneNumber != "", len(id.Address) > 0} {
					if v {
						set++
					}
				}
				if set != 1 {
					bad(uat, "INVALID_ARGUMENT", "Each user identifier must hold exactly one of email_address, phone_number and address.")
					continue
				}
				for _, h := range []string{id.EmailAddress, id.PhoneNumber} {
					if h != "" {
						if reason := checkHash(h, req.Encoding); reason != "" {
							bad(uat, reason, "The identifier is not a SHA-256 hash in the request's encoding.")
						}
					}
				}
			}
			hasAd = hasAd || len(u.UserIdentifiers) > 0
		}
		if !hasAd {
			bad(at, "NO_IDENTIFIERS_PROVIDED", "The event has neither ad identifiers nor user data.")
		}
		if e.Currency != "" && !currencyCode.MatchString(e.Currency) {
			bad(at+".currency", "INVALID_CURRENCY_CODE", "The currency code %q is not valid.", e.Currency)
		}
		if e.ConversionValue != nil && *e.ConversionValue < 0 {
			bad(at+".conversion_value", "INVALID_ARGUMENT", "The conversion value must not be negative.")
		}
		switch e.EventSource {
		case "", "WEB", "APP", "IN_STORE", "PHONE", "OTHER":
		default:
			bad(at+".event_source", "INVALID_ARGUMENT", "Invalid event source %q.", e.EventSource)
		}
		checkConsent(at+".", e.Consent)
	}

	if len(vs) > 0 {
		ingestError(w, http.StatusBadRequest, "INVALID_ARGUMENT", vs[0].reason, "There was a problem with the request.", vs)
		return
	}
	if !req.ValidateOnly {
		for _, e := range req.Events {
			if e.TransactionID != "" {
				f.accept(e.TransactionID)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"requestId": "fake-" + randomHex(8)})
}

// checkHash returns "" for a SHA-256 digest in encoding, else the reason.
func checkHash(h, encoding string) string {
	var b []byte
	var err error
	switch encoding {
	case "HEX":
		b, err = hex.DecodeString(h)
		if err != nil {
			return "INVALID_HEX_ENCODING"
		}
	case "BASE64":
		b, err = base64.StdEncoding.DecodeString(h)
		if err != nil {
			return "INVALID_FORMAT"
		}
	default:
		return "" // reported once as the missing encoding
	}
	if len(b) != 32 {
		return "INVALID_SHA256_FORMAT"
	}
	return ""
}
