package google

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pruuv/pruuv/internal/conversion"
)

// The two backends a connection can send through.
const (
	apiDataManager = "datamanager"
	apiAds         = "ads"
)

// defaultAdsVersion is the Google Ads API version used when the connection
// does not name one: the latest active version in November 2026.
const defaultAdsVersion = "v26"

// keys documents the connection settings; Validate refuses any other name so
// a misspelt key is caught when the connection is added, not at send time.
var keys = []conversion.Key{
	{Name: "api", Default: apiDataManager,
		Doc: "which Google API to send through: datamanager (Data Manager API events:ingest) or ads (Google Ads API uploadClickConversions, only for developer tokens Google has allowlisted for click-conversion upload)"},
	{Name: "customer_id", Required: true,
		Doc: "the Google Ads account that owns the conversion actions, 10 digits (dashes are accepted and removed)"},
	{Name: "login_customer_id",
		Doc: "the manager account the OAuth user signs in through, when it is not the customer account itself, 10 digits"},
	{Name: "client_id", Required: true,
		Doc: "the OAuth client id of your Google Cloud project"},
	{Name: "client_secret", Required: true, Secret: true,
		Doc: "the OAuth client secret"},
	{Name: "refresh_token", Required: true, Secret: true,
		Doc: "an OAuth refresh token granted for the scope https://www.googleapis.com/auth/datamanager (api=datamanager) or https://www.googleapis.com/auth/adwords (api=ads)"},
	{Name: "developer_token", Secret: true,
		Doc: "the Google Ads API developer token; required with api=ads, unused by the Data Manager API"},
	{Name: "api_version", Default: defaultAdsVersion,
		Doc: "the Google Ads API version for api=ads, e.g. v26"},
	{Name: "consent_ad_user_data", Default: "unspecified",
		Doc: "the ad_user_data consent sent with every conversion: granted, denied or unspecified (not sent); set granted only when your forms collect that consent"},
}

// settings is a connection's settings, checked and normalised.
type settings struct {
	api             string
	customerID      string
	loginCustomerID string
	clientID        string
	clientSecret    string
	refreshToken    string
	developerToken  string
	version         string
	consent         string // "GRANTED", "DENIED" or "" (not sent)
	// saveSecret is the connection's SaveSecret (nil: cannot save).
	saveSecret func(ctx context.Context, key, value string) error
}

var (
	customerIDPattern = regexp.MustCompile(`^\d{10}$`)
	versionPattern    = regexp.MustCompile(`^v\d{1,3}$`)
)

// parseSettings checks every setting and reports all problems at once.
func parseSettings(m map[string]string) (settings, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	get := func(name string) string {
		v := strings.TrimSpace(m[name])
		if v == "" {
			for _, k := range keys {
				if k.Name == name {
					return k.Default
				}
			}
		}
		return v
	}

	var names []string
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.ContainsFunc(keys, func(k conversion.Key) bool { return k.Name == name }) {
			bad(name, "is not a Google setting")
		}
	}

	s := settings{
		api:            get("api"),
		clientID:       get("client_id"),
		clientSecret:   get("client_secret"),
		refreshToken:   get("refresh_token"),
		developerToken: get("developer_token"),
		version:        get("api_version"),
	}
	if s.api != apiDataManager && s.api != apiAds {
		bad("api", "must be datamanager or ads")
	}
	for _, k := range keys {
		if k.Required && strings.TrimSpace(m[k.Name]) == "" {
			bad(k.Name, "is required")
		}
	}
	if c := strings.ReplaceAll(get("customer_id"), "-", ""); c != "" {
		if !customerIDPattern.MatchString(c) {
			bad("customer_id", "must be a 10-digit Google Ads customer id, e.g. 123-456-7890")
		}
		s.customerID = c
	}
	if c := strings.ReplaceAll(get("login_customer_id"), "-", ""); c != "" {
		if !customerIDPattern.MatchString(c) {
			bad("login_customer_id", "must be a 10-digit Google Ads manager customer id, e.g. 123-456-7890")
		}
		s.loginCustomerID = c
	}
	if s.api == apiAds && s.developerToken == "" {
		bad("developer_token", "is required with api=ads")
	}
	if !versionPattern.MatchString(s.version) {
		bad("api_version", "must look like v26")
	}
	switch strings.ToLower(get("consent_ad_user_data")) {
	case "granted":
		s.consent = "GRANTED"
	case "denied":
		s.consent = "DENIED"
	case "unspecified":
	default:
		bad("consent_ad_user_data", "must be granted, denied or unspecified")
	}
	return s, errors.Join(errs...)
}
