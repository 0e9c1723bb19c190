// Package meta sends conversions to the Meta Conversions API:
// POST {base}/{api_version}/{pixel_id}/events. docs/conversions-meta.md
// records the wire format and every decision made here.
package meta

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
)

// DefaultAPIVersion is the Graph API version used when a connection names
// none: the current one (released 2026-11-04), so a connection created today
// has the longest time before Meta retires its version.
const DefaultAPIVersion = "v27.0"

// Limits and rules of the Conversions API.
const (
	// MaxEvents is Meta's limit on events per request.
	MaxEvents = 1000
	// Window is how old an event_time Meta accepts. One older event makes
	// Meta refuse the whole request, so Check keeps WindowMargin in hand for
	// the time between the check and the send.
	Window       = 7 * 24 * time.Hour
	WindowMargin = time.Hour
	// FutureTolerance is how far ahead of the send an event_time may be;
	// a later one waits (Verdict.NotBefore) until it has passed.
	FutureTolerance = time.Minute
	// Timeout bounds one request, answer included.
	Timeout = 30 * time.Second
	// minInterval keeps a run to 4 requests a second on one connection: the
	// Conversions API has no quota of its own but counts against the
	// Marketing API's call-count throttling.
	minInterval = 250 * time.Millisecond
)

// The connection settings.
const (
	SettingPixelID       = "pixel_id"
	SettingAccessToken   = "access_token"
	SettingAPIVersion    = "api_version"
	SettingTestEventCode = "test_event_code"
	SettingActionSource  = "action_source"
)

// The action_source values Meta accepts.
var actionSources = []string{"email", "website", "app", "phone_call", "chat", "physical_store",
	"system_generated", "business_messaging", "other"}

var keys = []conversion.Key{
	{Name: SettingPixelID, Required: true, Doc: "the Meta pixel (dataset) id, digits only"},
	{Name: SettingAccessToken, Required: true, Secret: true, Doc: "a Conversions API access token for the pixel (Events Manager > Settings, or a system user's token)"},
	{Name: SettingAPIVersion, Default: DefaultAPIVersion, Doc: "the Graph API version, e.g. v25.0"},
	{Name: SettingTestEventCode, Doc: "routes events to Events Manager's Test events tool; remove it for production"},
	{Name: SettingActionSource, Default: "website", Doc: "where conversions happen: " + strings.Join(actionSources, ", ") +
		"; a website event without a source URL and user agent is sent as system_generated"},
}

var (
	pixelIDRE    = regexp.MustCompile(`^[0-9]{1,32}$`)
	apiVersionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)
	// The cookie formats of Meta's fbc/fbp documentation, with the optional
	// appendix segment newer Meta tooling adds. A value that does not match
	// is not sent: Meta may refuse the whole batch over it.
	fbcRE = regexp.MustCompile(`^fb\.[0-2]\.[0-9]{13}\.[^.]+(\.[A-Za-z0-9_-]+)?$`)
	fbpRE = regexp.MustCompile(`^fb\.[0-2]\.[0-9]{13}\.[0-9]+(\.[A-Za-z0-9_-]+)?$`)
)

// Client sends conversions to the Meta Conversions API.
type Client struct {
	base string
	hc   conversion.HTTPDoer
	// Timeout bounds one request; New sets it to the package's Timeout.
	Timeout time.Duration
}

var _ conversion.Client = (*Client)(nil)

// New returns a client for the Graph API at baseURL (https://graph.facebook.com
// in production). A nil hc gets an http.Client that follows no redirects.
func New(baseURL string, hc conversion.HTTPDoer) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: conversion.Doer(hc), Timeout: Timeout}
}

// Platform implements conversion.Client.
func (*Client) Platform() conversion.Platform { return conversion.Meta }

// Keys implements conversion.Client.
func (*Client) Keys() []conversion.Key { return keys }

// MaxBatch implements conversion.Client.
func (*Client) MaxBatch() int { return MaxEvents }

// MinInterval implements conversion.Client.
func (*Client) MinInterval() time.Duration { return minInterval }

// Validate implements conversion.Client: every problem is reported, unknown
// settings included, so a typo is not silently ignored.
func (*Client) Validate(settings map[string]string) error {
	var errs []error
	bad := func(k, msg string) { errs = append(errs, fmt.Errorf("%s: %s", k, msg)) }
	for k := range settings {
		if !slices.ContainsFunc(keys, func(key conversion.Key) bool { return key.Name == k }) {
			bad(k, "unknown setting")
		}
	}
	switch v := settings[SettingPixelID]; {
	case v == "":
		bad(SettingPixelID, "is required")
	case !pixelIDRE.MatchString(v):
		bad(SettingPixelID, "must be the pixel's numeric id")
	}
	switch v := settings[SettingAccessToken]; {
	case v == "":
		bad(SettingAccessToken, "is required")
	case strings.ContainsAny(v, " \t\r\n"):
		bad(SettingAccessToken, "must not contain spaces")
	}
	if v := settings[SettingAPIVersion]; v != "" && !apiVersionRE.MatchString(v) {
		bad(SettingAPIVersion, "must look like v27.0")
	}
	if v := settings[SettingActionSource]; v != "" && !slices.Contains(actionSources, v) {
		bad(SettingActionSource, "must be one of "+strings.Join(actionSources, ", "))
	}
	if len(settings[SettingTestEventCode]) > 64 {
		bad(SettingTestEventCode, "is too long")
	}
	return errors.Join(errs...)
}

// HasSignal implements conversion.Client: a well-formed fbc or fbp cookie, or
// the email or phone hash.
func (*Client) HasSignal(f *event.Fields) bool {
	return fbcRE.MatchString(f.FBC) || fbpRE.MatchString(f.FBP) || f.EmailSHA256 != "" || f.PhoneMetaSHA256 != ""
}

// Check implements conversion.Client.
func (*Client) Check(c *conversion.Conversion, now time.Time) conversion.Verdict {
	switch {
	case c.EventName == "":
		return conversion.Verdict{Skip: conversion.SkipNoMapping, Detail: "the stage has no Meta event name"}
	case now.Sub(c.Time) > Window-WindowMargin:
		return conversion.Verdict{Skip: conversion.SkipOutsideWindow, Detail: fmt.Sprintf(
			"the conversion time %s is more than 7 days before the send (Pruuv stops at 6 days 23 hours)",
			c.Time.UTC().Format(time.RFC3339))}
	case c.EventName == "Purchase" && (!c.Fields.HasRevenue || c.Fields.Currency == ""):
		return conversion.Verdict{Skip: conversion.SkipMissingValue, Detail: "a Meta Purchase needs revenue_value and currency"}
	case c.Time.After(now.Add(FutureTolerance)):
		return conversion.Verdict{NotBefore: c.Time}
	}
	return conversion.Verdict{}
}

// Summary implements conversion.Client.
func (*Client) Summary(c *conversion.Conversion) string {
	f := &c.Fields
	var b strings.Builder
	fmt.Fprintf(&b, "event_name=%s event_id=%s event_time=%d user_data{", c.EventName, c.EventID, c.Time.Unix())
	var ud []string
	add := func(name, v string) {
		if v != "" {
			ud = append(ud, name+"="+v)
		}
	}
	add("em", conversion.Shorten(f.EmailSHA256, 8))
	add("ph", conversion.Shorten(f.PhoneMetaSHA256, 8))
	for _, ck := range []struct {
		name, v string
		re      *regexp.Regexp
	}{{"fbc", f.FBC, fbcRE}, {"fbp", f.FBP, fbpRE}} {
		switch {
		case ck.v == "":
		case ck.re.MatchString(ck.v):
			add(ck.name, conversion.Shorten(ck.v, 6))
		default:
			ud = append(ud, ck.name+"=malformed,not-sent")
		}
	}
	if f.ClientIPAddress != "" {
		ud = append(ud, "client_ip_address")
	}
	if f.ClientUserAgent != "" {
		ud = append(ud, "client_user_agent")
	}
	b.WriteString(strings.Join(ud, " "))
	b.WriteString("}")
	if f.EventSourceURL != "" {
		b.WriteString(" event_source_url")
	}
	if f.HasRevenue && f.Currency != "" {
		fmt.Fprintf(&b, " custom_data{value=%s currency=%s}", event.FormatMicros(f.RevenueMicros), f.Currency)
	}
	return b.String()
}
