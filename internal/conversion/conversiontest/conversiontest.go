// Package conversiontest provides a scriptable conversion.Client that stands
// in for an ad platform in tests of the send queue. It records every request
// and answers from a per-event script. The real platform clients are tested
// against strict fakes of the platforms' APIs in their own packages.
package conversiontest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
)

// Request is one call of Send.
type Request struct {
	At    time.Time
	Conn  conversion.Connection
	Batch []conversion.Conversion
}

// Client is a test platform client. Its zero limits mean a batch of 100 and
// no pause between requests; every conversion is Sent unless scripted.
type Client struct {
	platform conversion.Platform

	mu       sync.Mutex
	batch    int
	interval time.Duration
	window   time.Duration
	now      func() time.Time
	script   map[string][]conversion.Result
	verdicts map[string]conversion.Verdict
	requests []Request
	counts   map[string]int
	onSend   func(ctx context.Context, batch []conversion.Conversion)
	onConn   func(ctx context.Context, conn conversion.Connection)
}

// New returns a client for platform p reading the time from now (used to
// stamp requests).
func New(p conversion.Platform, now func() time.Time) *Client {
	return &Client{platform: p, batch: 100, now: now, script: map[string][]conversion.Result{},
		verdicts: map[string]conversion.Verdict{}, counts: map[string]int{}}
}

// Registry returns a client for every platform, sharing one clock.
func Registry(now func() time.Time) (conversion.Registry, map[conversion.Platform]*Client) {
	reg := conversion.Registry{}
	cls := map[conversion.Platform]*Client{}
	for _, p := range conversion.Platforms {
		c := New(p, now)
		reg[p], cls[p] = c, c
	}
	return reg, cls
}

// SetLimits sets MaxBatch and MinInterval.
func (c *Client) SetLimits(batch int, interval time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batch, c.interval = batch, interval
}

// SetWindow makes Check skip a conversion as outside_window once its Time
// is more than w before the check (0: no window).
func (c *Client) SetWindow(w time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.window = w
}

// Script sets the answers for an event's successive sends; the last one
// repeats.
func (c *Client) Script(eventID string, results ...conversion.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.script[eventID] = results
}

// SetVerdict makes Check answer v for an event; the zero Verdict removes
// the override.
func (c *Client) SetVerdict(eventID string, v conversion.Verdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v == (conversion.Verdict{}) {
		delete(c.verdicts, eventID)
		return
	}
	c.verdicts[eventID] = v
}

// OnSend runs fn at the start of every Send, outside the client's lock (to
// block, cancel or count concurrent requests).
func (c *Client) OnSend(fn func(ctx context.Context, batch []conversion.Conversion)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onSend = fn
}

// OnConn runs fn at the start of every Send with the request's connection,
// outside the client's lock (to save a rotated secret as a real client
// would); nil removes it.
func (c *Client) OnConn(fn func(ctx context.Context, conn conversion.Connection)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onConn = fn
}

// Requests returns every request so far.
func (c *Client) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Request(nil), c.requests...)
}

// Count is how many times the event was sent.
func (c *Client) Count(eventID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[eventID]
}

// Counts returns the sends per event id.
func (c *Client) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Platform implements conversion.Client.
func (c *Client) Platform() conversion.Platform { return c.platform }

// Keys implements conversion.Client: a required account id, a required
// secret token and an optional label with a default.
func (c *Client) Keys() []conversion.Key {
	return []conversion.Key{
		{Name: "account_id", Required: true, Doc: "the account"},
		{Name: "access_token", Required: true, Secret: true, Doc: "the API token"},
		{Name: "label", Default: "pruuv", Doc: "a label"},
	}
}

// Validate implements conversion.Client: required keys present, account id
// all digits.
func (c *Client) Validate(settings map[string]string) error {
	var errs []error
	for _, k := range c.Keys() {
		if k.Required && settings[k.Name] == "" {
			errs = append(errs, fmt.Errorf("%s is required", k.Name))
		}
	}
	if a := settings["account_id"]; a != "" && strings.Trim(a, "0123456789") != "" {
		errs = append(errs, errors.New("account_id must be digits"))
	}
	return errors.Join(errs...)
}

// HasSignal implements conversion.Client: the platform's click ids, or an
// email hash.
func (c *Client) HasSignal(f *event.Fields) bool {
	if f.EmailSHA256 != "" {
		return true
	}
	switch c.platform {
	case conversion.Google:
		return f.GCLID != "" || f.GBRAID != "" || f.WBRAID != ""
	case conversion.Meta:
		return f.FBC != "" || f.FBP != ""
	case conversion.TikTok:
		return f.TTCLID != ""
	case conversion.Microsoft:
		return f.MSCLKID != ""
	}
	return false
}

// Check implements conversion.Client: a scripted verdict, else the window.
func (c *Client) Check(conv *conversion.Conversion, now time.Time) conversion.Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.verdicts[conv.EventID]; ok {
		return v
	}
	if c.window > 0 && now.Sub(conv.Time) > c.window {
		return conversion.Verdict{Skip: conversion.SkipOutsideWindow, Detail: "older than the test window"}
	}
	return conversion.Verdict{}
}

// MaxBatch implements conversion.Client.
func (c *Client) MaxBatch() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.batch
}

// MinInterval implements conversion.Client.
func (c *Client) MinInterval() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.interval
}

// Send implements conversion.Client from the script.
func (c *Client) Send(ctx context.Context, conn conversion.Connection, batch []conversion.Conversion) []conversion.Result {
	c.mu.Lock()
	hook, connHook := c.onSend, c.onConn
	c.mu.Unlock()
	if hook != nil {
		hook(ctx, batch)
	}
	if connHook != nil {
		connHook(ctx, conn)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, Request{At: c.now(), Conn: conn, Batch: append([]conversion.Conversion(nil), batch...)})
	out := make([]conversion.Result, len(batch))
	for i, conv := range batch {
		n := c.counts[conv.EventID]
		c.counts[conv.EventID] = n + 1
		res := conversion.Result{Outcome: conversion.Sent, HTTPStatus: 200, Message: "ok"}
		if s := c.script[conv.EventID]; len(s) > 0 {
			res = s[min(n, len(s)-1)]
		}
		out[i] = res
	}
	return out
}

// Summary implements conversion.Client.
func (c *Client) Summary(conv *conversion.Conversion) string {
	return fmt.Sprintf("%s event=%s id=%s", c.platform, conv.EventName, conv.EventID)
}

// Clock is a hand-driven clock: Sleep advances it at once.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now implements conversion.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Sleep implements conversion.Clock by advancing the clock by d.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}
