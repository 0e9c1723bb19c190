// Package google sends conversions to Google Ads, through the Data Manager API
// (events:ingest, the default) or, for developer tokens Google still allows,
// the Google Ads API's uploadClickConversions. docs/conversions-google.md
// describes both and every decision taken where Google's documentation is
// silent.
package google

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
)

// Google's rules on click age, as documented for uploadClickConversions and
// applied to both APIs.
const (
	// ClickWindow is the longest click-through window of a conversion action:
	// a click older than this can no longer be credited.
	ClickWindow = 90 * 24 * time.Hour
	// MinClickAge is how long Google needs after a click before a conversion
	// for it can be uploaded (error TOO_RECENT_EVENT).
	MinClickAge = 6 * time.Hour
)

// maxBatch is Google's limit on conversions per request on both APIs (2,000
// events per events:ingest request, 2,000 conversions per
// uploadClickConversions request).
const maxBatch = 2000

// Timeout bounds one HTTP exchange with Google (a token refresh or an API
// call), answer included, as the other platforms' clients do. One Send makes
// at most four in a row (refresh, call, and again on a 401), which keeps it
// inside the queue's lease margin.
const Timeout = 30 * time.Second

// minInterval keeps one connection well inside the Data Manager API's 300
// requests a minute per Cloud project and the Google Ads API's token-bucket
// rate limits, with several connections sending at once.
const minInterval = time.Second

// Skip reasons of this platform, beside the shared ones.
const (
	SkipConversionBeforeClick = "conversion_before_click"
	SkipInvalidAction         = "invalid_conversion_action"
)

// Client sends conversions to Google. It is safe for concurrent use; its only
// state is the access-token cache.
type Client struct {
	endpoints conversion.Endpoints
	hc        conversion.HTTPDoer
	now       func() time.Time
	tokens    tokens
	// Timeout bounds one exchange; New sets it to the package's Timeout.
	Timeout time.Duration
}

var _ conversion.Client = (*Client)(nil)

// New returns a client sending to the Google endpoints in endpoints through hc.
// A nil hc gets an http.Client that follows no redirects.
func New(endpoints conversion.Endpoints, hc conversion.HTTPDoer) *Client {
	return &Client{endpoints: endpoints, hc: conversion.Doer(hc), now: time.Now, Timeout: Timeout}
}

// Platform is conversion.Google.
func (c *Client) Platform() conversion.Platform { return conversion.Google }

// Keys lists the connection settings.
func (c *Client) Keys() []conversion.Key {
	out := make([]conversion.Key, len(keys))
	copy(out, keys)
	return out
}

// Validate checks a connection's settings offline.
func (c *Client) Validate(settings map[string]string) error {
	_, err := parseSettings(settings)
	return err
}

// HasSignal reports whether f carries a Google click id (gclid, gbraid,
// wbraid) or an email or phone hash, which Google matches as enhanced
// conversions for leads.
func (c *Client) HasSignal(f *event.Fields) bool {
	return f.GCLID != "" || f.GBRAID != "" || f.WBRAID != "" ||
		f.EmailGoogleSHA256 != "" || f.PhoneSHA256 != ""
}

// MaxBatch is 2,000 conversions per request.
func (c *Client) MaxBatch() int { return maxBatch }

// MinInterval is the pause between two requests on one connection.
func (c *Client) MinInterval() time.Duration { return minInterval }

// Check applies Google's rules. An event with a click id must carry its
// click_timestamp; the conversion must come after the click and within 90 days
// of it, and the click must be at least 6 hours old (else the send waits). An
// event matched only by email or phone must be at most 90 days old. A
// conversion timed in the future waits until that time.
func (c *Client) Check(cv *conversion.Conversion, now time.Time) conversion.Verdict {
	if !isDigits(cv.EventName) {
		return conversion.Verdict{Skip: SkipInvalidAction,
			Detail: fmt.Sprintf("the stage's Google mapping %q is not a conversion action id (digits only)", cv.EventName)}
	}
	f := &cv.Fields
	var v conversion.Verdict
	switch kind, _ := clickID(f); {
	case kind != "":
		click := f.ClickTimestamp
		switch {
		case click.IsZero():
			return conversion.Verdict{Skip: conversion.SkipNoClickTimestamp,
				Detail: "Google needs click_timestamp with a " + kind + " to check its 90-day window"}
		case cv.Time.Before(click.Add(-conversion.ClickClockSkew)):
			return conversion.Verdict{Skip: SkipConversionBeforeClick,
				Detail: fmt.Sprintf("the conversion (%s) is earlier than the click (%s)", stamp(cv.Time), stamp(click))}
		case cv.Time.Sub(click) > ClickWindow:
			return conversion.Verdict{Skip: conversion.SkipOutsideWindow,
				Detail: fmt.Sprintf("the conversion (%s) is more than 90 days after the click (%s)", stamp(cv.Time), stamp(click))}
		case now.Sub(click) > ClickWindow:
			return conversion.Verdict{Skip: conversion.SkipOutsideWindow,
				Detail: fmt.Sprintf("the click (%s) is more than 90 days old", stamp(click))}
		}
		if ready := click.Add(MinClickAge); now.Before(ready) {
			v.NotBefore = ready
		}
	case f.EmailGoogleSHA256 != "" || f.PhoneSHA256 != "":
		if now.Sub(cv.Time) > ClickWindow {
			return conversion.Verdict{Skip: conversion.SkipOutsideWindow,
				Detail: fmt.Sprintf("the conversion (%s) is more than 90 days old", stamp(cv.Time))}
		}
	default:
		return conversion.Verdict{Skip: conversion.SkipNoClickID,
			Detail: "no gclid, gbraid, wbraid, email or phone"}
	}
	if cv.Time.After(now) && cv.Time.After(v.NotBefore) {
		v.NotBefore = cv.Time
	}
	return v
}

// Send delivers one batch through the connection's API and returns one Result
// per conversion, in order.
func (c *Client) Send(ctx context.Context, conn conversion.Connection, batch []conversion.Conversion) []conversion.Result {
	s, err := parseSettings(conn.Settings)
	if err != nil {
		return conversion.AllResults(len(batch), conversion.Result{Outcome: conversion.Permanent,
			Message: "the Google connection's settings are invalid: " + err.Error()})
	}
	s.saveSecret = conn.SaveSecret
	res := make([]conversion.Result, len(batch))
	for start := 0; start < len(batch); start += maxBatch {
		end := min(start+maxBatch, len(batch))
		if s.api == apiAds {
			c.sendAds(ctx, conn.ID, s, batch[start:end], res[start:end])
		} else {
			c.sendDataManager(ctx, conn.ID, s, batch[start:end], res[start:end])
		}
	}
	return res
}

// Summary describes what is sent for cv, redacted: click ids shortened, hashes
// cut to 8 characters, no credential.
func (c *Client) Summary(cv *conversion.Conversion) string {
	f := &cv.Fields
	parts := []string{"action=" + cv.EventName, "id=" + cv.EventID, "time=" + stamp(cv.Time)}
	if kind, id := clickID(f); kind != "" {
		parts = append(parts, kind+"="+conversion.Shorten(id, 8))
	}
	if !f.ClickTimestamp.IsZero() {
		parts = append(parts, "click_time="+stamp(f.ClickTimestamp))
	}
	if f.HasRevenue {
		parts = append(parts, "value="+event.FormatMicros(f.RevenueMicros))
	}
	if f.Currency != "" {
		parts = append(parts, "currency="+f.Currency)
	}
	if f.EmailGoogleSHA256 != "" {
		parts = append(parts, "email_sha256="+conversion.Shorten(f.EmailGoogleSHA256, 8))
	}
	if f.PhoneSHA256 != "" {
		parts = append(parts, "phone_sha256="+conversion.Shorten(f.PhoneSHA256, 8))
	}
	return strings.Join(parts, " ")
}

// clickID returns the one click id sent: gclid first, then gbraid, then wbraid,
// as Google asks for a single click id per conversion.
func clickID(f *event.Fields) (kind, id string) {
	switch {
	case f.GCLID != "":
		return "gclid", f.GCLID
	case f.GBRAID != "":
		return "gbraid", f.GBRAID
	case f.WBRAID != "":
		return "wbraid", f.WBRAID
	}
	return "", ""
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// micros renders revenue as the double Google expects.
func micros(m int64) float64 { return float64(m) / 1e6 }
