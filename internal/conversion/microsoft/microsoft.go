// Package microsoft sends conversions to Microsoft Advertising as offline
// conversions: the ApplyOfflineConversions operation of the Campaign
// Management API v13, called through its REST (JSON) endpoint. OAuth access
// tokens come from the Microsoft identity platform and are cached in memory.
// docs/conversions-microsoft.md describes the mapping and every rule.
package microsoft

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
)

// Connection settings.
const (
	SettingCustomerID     = "customer_id"
	SettingAccountID      = "account_id"
	SettingDeveloperToken = "developer_token"
	SettingClientID       = "client_id"
	SettingClientSecret   = "client_secret"
	SettingRefreshToken   = "refresh_token"
	SettingTenant         = "tenant"
	SettingGoal           = "conversion_goal"
)

// Platform rules.
const (
	// MaxBatch is ApplyOfflineConversions' limit per call (5601 beyond it).
	MaxBatch = 1000
	// ConversionWindow is how old a conversion may be, and the longest goal
	// conversion window after a click.
	ConversionWindow = 90 * 24 * time.Hour
	// ClickSettle is Microsoft's advice to wait an hour after a click before
	// uploading a conversion for it.
	ClickSettle = time.Hour
	// GoalSettle is how long a new offline conversion goal refuses
	// conversions (5615).
	GoalSettle = 2 * time.Hour
	// CallRateWait is the pause after CallRateExceeded (117) when no
	// Retry-After came with it: Microsoft meters calls per minute.
	CallRateWait = time.Minute
	// maxGoalName is the longest conversion goal name Microsoft accepts.
	maxGoalName = 100
)

// Skip reasons of this platform, beside conversion's shared ones.
const (
	SkipBeforeClick = "conversion_before_click" // Microsoft refuses it (5616)
)

// APIPath is the REST path of ApplyOfflineConversions under Endpoints.Microsoft.
const APIPath = "/CampaignManagement/v13/OfflineConversions/Apply"

// Scope is what Pruuv asks the identity platform for.
const Scope = "https://ads.microsoft.com/msads.manage offline_access"

// Client sends offline conversions to Microsoft Advertising. It is safe for
// concurrent use; its only state is the access-token cache.
type Client struct {
	api     string // base URL of the Campaign Management API
	oauth   string // base URL of the identity platform
	hc      conversion.HTTPDoer
	now     func() time.Time
	mu      sync.Mutex
	tokens  map[string]*tokenSlot
	timeout time.Duration // per HTTP exchange, on top of the caller's context
}

var _ conversion.Client = (*Client)(nil)

// DefaultTimeout bounds one HTTP exchange with Microsoft.
const DefaultTimeout = 30 * time.Second

// New returns a client for the given base URLs. A nil hc gets an *http.Client
// with DefaultTimeout.
func New(endpoints conversion.Endpoints, hc conversion.HTTPDoer) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{
		api:     strings.TrimRight(endpoints.Microsoft, "/"),
		oauth:   strings.TrimRight(endpoints.MicrosoftOAuth, "/"),
		hc:      hc,
		now:     time.Now,
		tokens:  make(map[string]*tokenSlot),
		timeout: DefaultTimeout,
	}
}

// Platform is conversion.Microsoft.
func (c *Client) Platform() conversion.Platform { return conversion.Microsoft }

var keys = []conversion.Key{
	{Name: SettingCustomerID, Required: true, Doc: "Manager account (customer) id, digits: the CID in the Microsoft Advertising URL"},
	{Name: SettingAccountID, Required: true, Doc: "Ad account id, digits: the AID in the Microsoft Advertising URL"},
	{Name: SettingDeveloperToken, Required: true, Secret: true, Doc: "Bing Ads API developer token"},
	{Name: SettingClientID, Required: true, Doc: "Application (client) id of the app registered with the Microsoft identity platform"},
	{Name: SettingClientSecret, Secret: true, Doc: "Client secret of a confidential (web) app; leave unset for a public client"},
	{Name: SettingRefreshToken, Required: true, Secret: true, Doc: "OAuth refresh token granted for scope " + Scope},
	{Name: SettingTenant, Default: "common", Doc: "Identity platform tenant: common, organizations, consumers or a tenant id"},
	{Name: SettingGoal, Doc: "Offline conversion goal name used when a stage's mapping gives none"},
}

// Keys lists the connection settings.
func (c *Client) Keys() []conversion.Key { return keys }

// Validate checks a connection's settings without calling Microsoft. Besides
// missing and malformed values it refuses names it does not know, which are
// most likely typos.
func (c *Client) Validate(settings map[string]string) error {
	known := make(map[string]bool, len(keys))
	for _, k := range keys {
		known[k.Name] = true
	}
	var unknown []string
	for name := range settings {
		if !known[name] {
			unknown = append(unknown, name+" is not a Microsoft setting")
		}
	}
	sort.Strings(unknown)
	return settingsError(append(check(settings), unknown...))
}

func settingsError(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return errors.New("microsoft: " + strings.Join(problems, "; "))
}

// check lists what is missing or malformed in the settings Send uses.
func check(settings map[string]string) []string {
	var problems []string
	for _, k := range keys {
		if k.Required && strings.TrimSpace(settings[k.Name]) == "" {
			problems = append(problems, k.Name+" is required")
		}
	}
	for _, name := range []string{SettingCustomerID, SettingAccountID} {
		if v := settings[name]; v != "" && !digits(v) {
			problems = append(problems, name+" must be digits only")
		}
	}
	if t := settings[SettingTenant]; t != "" && !tenantName(t) {
		problems = append(problems, "tenant must be common, organizations, consumers, a tenant id or a domain")
	}
	if g := settings[SettingGoal]; len(g) > maxGoalName {
		problems = append(problems, fmt.Sprintf("conversion_goal must be at most %d characters", maxGoalName))
	}
	return problems
}

func digits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// tenantName accepts what can stand in the token URL's path segment: GUIDs,
// domains and the three aliases.
func tenantName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '.') {
			return false
		}
	}
	return s != "" && s[0] != '.'
}

// HasSignal reports an msclkid: ApplyOfflineConversions requires one on every
// conversion (5603); hashed email and phone only enhance the match.
func (c *Client) HasSignal(f *event.Fields) bool { return f.MSCLKID != "" }

// Check applies Microsoft's time rules. The goal's own age (5615) and
// conversion window are only known to Microsoft.
func (c *Client) Check(cv *conversion.Conversion, now time.Time) conversion.Verdict {
	f := &cv.Fields
	if f.MSCLKID == "" {
		return conversion.Verdict{Skip: conversion.SkipNoClickID, Detail: "Microsoft needs an msclkid on every offline conversion"}
	}
	t := cv.Time
	if now.Sub(t) > ConversionWindow {
		return conversion.Verdict{Skip: conversion.SkipOutsideWindow,
			Detail: "Microsoft accepts offline conversions from the last 90 days only"}
	}
	click := f.ClickTimestamp
	if !click.IsZero() {
		if t.Before(click.Add(-conversion.ClickClockSkew)) {
			return conversion.Verdict{Skip: SkipBeforeClick,
				Detail: "the conversion time is before the click time; Microsoft refuses it"}
		}
		if t.Sub(click) > ConversionWindow {
			return conversion.Verdict{Skip: conversion.SkipOutsideWindow,
				Detail: "the conversion is more than 90 days after the click, beyond any goal's conversion window"}
		}
	}
	var v conversion.Verdict
	if t.After(now) {
		// A clock running ahead of ours: Microsoft refuses future times
		// (5614), so wait until the time has passed.
		v.NotBefore = t.Add(time.Second)
	}
	if !click.IsZero() && now.Before(click.Add(ClickSettle)) {
		if nb := click.Add(ClickSettle); nb.After(v.NotBefore) {
			v.NotBefore = nb
		}
	}
	return v
}

// MaxBatch is 1,000 conversions per call.
func (c *Client) MaxBatch() int { return MaxBatch }

// MinInterval keeps a run well under the per-minute call rate Microsoft meters
// (CallRateExceeded, 117); it publishes no number.
func (c *Client) MinInterval() time.Duration { return time.Second }

// Summary describes what is sent for cv, without credentials: the goal, a
// shortened msclkid, the time, value and currency, and hashes cut to 8.
func (c *Client) Summary(cv *conversion.Conversion) string {
	f := &cv.Fields
	var b strings.Builder
	goal := cv.EventName
	if goal == "" {
		goal = "(connection default)"
	}
	fmt.Fprintf(&b, "ConversionName=%q MicrosoftClickId=%s ConversionTime=%s", goal, short(f.MSCLKID), formatTime(cv.Time))
	if f.HasRevenue {
		fmt.Fprintf(&b, " ConversionValue=%s", event.FormatMicros(f.RevenueMicros))
		if f.Currency != "" {
			fmt.Fprintf(&b, " ConversionCurrencyCode=%s", f.Currency)
		}
	}
	if f.EmailSHA256 != "" {
		fmt.Fprintf(&b, " HashedEmailAddress=%s", cut(f.EmailSHA256))
	}
	if f.PhoneSHA256 != "" {
		fmt.Fprintf(&b, " HashedPhoneNumber=%s", cut(f.PhoneSHA256))
	}
	return b.String()
}

func short(clickID string) string {
	if clickID == "" {
		return "(none)"
	}
	return conversion.Shorten(clickID, 8)
}

func cut(hash string) string {
	if len(hash) <= 8 {
		return hash
	}
	return hash[:8]
}

// formatTime is ConversionTime's form: UTC to the second. The same event
// always yields the same text, which keeps Microsoft's dedup key (click id,
// goal, time) stable across attempts.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05Z")
}
