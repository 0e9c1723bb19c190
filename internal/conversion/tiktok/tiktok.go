// Package tiktok sends conversions to the TikTok Events API 2.0:
// POST {base}/open_api/v1.3/event/track/. docs/conversions-tiktok.md records
// the wire format and every decision made here.
package tiktok

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

// Path is the Events API 2.0 endpoint, the same for one event or many.
const Path = "/open_api/v1.3/event/track/"

// Limits and rules of the Events API.
const (
	// MaxEvents is TikTok's limit on events per request.
	MaxEvents = 1000
	// Window is how old an event TikTok is taken to accept. TikTok's own
	// page could not be read; 28 days comes from secondary sources. A wrong
	// guess costs little: TikTok names a refused event (Batch.<i>), so only
	// that one fails. WindowMargin covers the time between check and send.
	Window       = 28 * 24 * time.Hour
	WindowMargin = time.Hour
	// FutureTolerance is how far ahead of the send an event_time may be;
	// a later one waits (Verdict.NotBefore) until it has passed.
	FutureTolerance = time.Minute
	// Timeout bounds one request, answer included.
	Timeout = 30 * time.Second
	// minInterval: /event/track/ allows 1,000 requests a second per
	// advertiser; 20 a second per connection leaves room for every other
	// sender on the account.
	minInterval = 50 * time.Millisecond
)

// The connection settings.
const (
	SettingPixelCode     = "pixel_code"
	SettingAccessToken   = "access_token"
	SettingTestEventCode = "test_event_code"
)

var keys = []conversion.Key{
	{Name: SettingPixelCode, Required: true, Doc: "the TikTok pixel code (Events Manager), e.g. C4ABCDEF1234567890AB"},
	{Name: SettingAccessToken, Required: true, Secret: true, Doc: "the Events API access token generated in the pixel's settings"},
	{Name: SettingTestEventCode, Doc: "routes events to Events Manager's Test events tool; remove it for production"},
}

var pixelCodeRE = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

// Client sends conversions to the TikTok Events API.
type Client struct {
	base string
	hc   conversion.HTTPDoer
	// Timeout bounds one request; New sets it to the package's Timeout.
	Timeout time.Duration
}

var _ conversion.Client = (*Client)(nil)

// New returns a client for the TikTok Business API at baseURL
// (https://business-api.tiktok.com in production). A nil hc gets an
// http.Client that follows no redirects.
func New(baseURL string, hc conversion.HTTPDoer) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: conversion.Doer(hc), Timeout: Timeout}
}

// Platform implements conversion.Client.
func (*Client) Platform() conversion.Platform { return conversion.TikTok }

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
	switch v := settings[SettingPixelCode]; {
	case v == "":
		bad(SettingPixelCode, "is required")
	case !pixelCodeRE.MatchString(v):
		bad(SettingPixelCode, "must be the pixel code, letters and digits")
	}
	switch v := settings[SettingAccessToken]; {
	case v == "":
		bad(SettingAccessToken, "is required")
	case strings.ContainsAny(v, " \t\r\n"):
		bad(SettingAccessToken, "must not contain spaces")
	}
	if len(settings[SettingTestEventCode]) > 64 {
		bad(SettingTestEventCode, "is too long")
	}
	return errors.Join(errs...)
}

// HasSignal implements conversion.Client: the ttclid, or the email or phone
// hash. IP address and user agent alone are not enough: TikTok can at best
// guess a person from them, and sending every event that has them would fill
// the audit log with conversions TikTok cannot attribute.
func (*Client) HasSignal(f *event.Fields) bool {
	return f.TTCLID != "" || f.EmailSHA256 != "" || f.PhoneSHA256 != ""
}

// Check implements conversion.Client.
func (*Client) Check(c *conversion.Conversion, now time.Time) conversion.Verdict {
	switch {
	case c.EventName == "":
		return conversion.Verdict{Skip: conversion.SkipNoMapping, Detail: "the stage has no TikTok event name"}
	case now.Sub(c.Time) > Window-WindowMargin:
		return conversion.Verdict{Skip: conversion.SkipOutsideWindow, Detail: fmt.Sprintf(
			"the conversion time %s is more than 28 days before the send (Pruuv stops at 27 days 23 hours)",
			c.Time.UTC().Format(time.RFC3339))}
	case c.Time.After(now.Add(FutureTolerance)):
		return conversion.Verdict{NotBefore: c.Time}
	}
	return conversion.Verdict{}
}

// Summary implements conversion.Client.
func (*Client) Summary(c *conversion.Conversion) string {
	f := &c.Fields
	var b strings.Builder
	fmt.Fprintf(&b, "event=%s event_id=%s event_time=%d user{", c.EventName, c.EventID, c.Time.Unix())
	var user []string
	add := func(name, v string) {
		if v != "" {
			user = append(user, name+"="+v)
		}
	}
	add("ttclid", conversion.Shorten(f.TTCLID, 6))
	add("email", conversion.Shorten(f.EmailSHA256, 8))
	add("phone", conversion.Shorten(f.PhoneSHA256, 8))
	if f.ClientIPAddress != "" {
		user = append(user, "ip")
	}
	if f.ClientUserAgent != "" {
		user = append(user, "user_agent")
	}
	b.WriteString(strings.Join(user, " "))
	b.WriteString("}")
	if f.HasRevenue && f.Currency != "" {
		fmt.Fprintf(&b, " properties{value=%s currency=%s}", event.FormatMicros(f.RevenueMicros), f.Currency)
	}
	if f.EventSourceURL != "" {
		b.WriteString(" page{url}")
	}
	return b.String()
}
