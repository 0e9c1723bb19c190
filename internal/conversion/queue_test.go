package conversion_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/conversion/conversiontest"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// start is the tests' clock start: 10:00 UTC, so the default schedule's
// next run is 03:00 the next day.
var start = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type env struct {
	t        *testing.T
	st       *store.Store
	open     func() *store.Store
	key      secret.Key
	clock    *conversiontest.Clock
	reg      conversion.Registry
	cls      map[conversion.Platform]*conversiontest.Client
	clientID string
	stages   []string
	refs     int
}

func eachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			open := func() *store.Store {
				st, err := store.Open(context.Background(), store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: pruuvtest.Logger(t)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			key, err := secret.Parse(pruuvtest.SecretKey)
			if err != nil {
				t.Fatal(err)
			}
			e := &env{t: t, st: open(), open: open, key: key, clock: conversiontest.NewClock(start)}
			e.reg, e.cls = conversiontest.Registry(e.clock.Now)
			var ns []store.NewStage
			for _, name := range []string{"Lead", "Won"} {
				id := token.NewID("stg")
				ns = append(ns, store.NewStage{ID: id, Name: name, Token: store.StageToken{ID: token.NewID("tok"),
					Hash: []byte("hash-" + id), Sealed: "v1.x", Hint: "…"}})
				e.stages = append(e.stages, id)
			}
			c, _, err := e.st.CreateFunnel(context.Background(), token.NewID("cli"), "Acme", token.NewID("fun"), "Main", ns, start)
			if err != nil {
				t.Fatal(err)
			}
			e.clientID = c.ID
			fn(t, e)
		})
	}
}

// connect gives the client a connection on p with a secret token.
func (e *env) connect(p conversion.Platform) {
	e.t.Helper()
	c := store.Connection{ID: token.NewID("con"), ClientID: e.clientID, Platform: string(p)}
	settings := map[string]string{"account_id": "123", "access_token": "secret-token-" + string(p) + "-0123456789"}
	if err := conversion.SealSettings(e.key, e.reg[p].Keys(), &c, settings); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.PutConnection(context.Background(), c, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) mapStage(stage int, p conversion.Platform, name string) {
	e.t.Helper()
	if err := e.st.SetMapping(context.Background(), e.clientID, e.stages[stage], string(p), name, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
}

// ingest stores events at the stage now and returns their ids.
func (e *env) ingest(stage int, fields ...event.Fields) []string {
	e.t.Helper()
	now := e.clock.Now()
	var items []*store.Item
	for i, f := range fields {
		if f.Reference == "" {
			e.refs++
			f.Reference = fmt.Sprintf("ref-%d-%d", e.refs, i)
		}
		items = append(items, &store.Item{
			Event:       event.Event{ID: token.NewEventID(now), StageID: e.stages[stage], Source: event.SourceWebhook, ReceivedAt: now, Fields: f},
			HourlyLimit: 100000, DedupSince: now.Add(-time.Minute).UnixMilli(), HourStart: now.Truncate(time.Hour).UnixMilli(),
		})
	}
	if err := e.st.Ingest(context.Background(), items); err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, it := range items {
		if it.Outcome != store.Accepted {
			e.t.Fatalf("event %s not accepted", it.Event.Reference)
		}
		ids = append(ids, it.Event.ID)
	}
	return ids
}

func (e *env) queue(mod ...func(*conversion.Options)) *conversion.Queue {
	e.t.Helper()
	return e.queueOn(e.st, mod...)
}

func (e *env) queueOn(st *store.Store, mod ...func(*conversion.Options)) *conversion.Queue {
	e.t.Helper()
	opt := conversion.Options{Store: st, Key: e.key, Clients: e.reg, Clock: e.clock, Rand: func() float64 { return 0.5 },
		Log: pruuvtest.Logger(e.t)}
	for _, m := range mod {
		m(&opt)
	}
	q, err := conversion.New(opt)
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

type sendKey struct {
	event    string
	platform conversion.Platform
}

func (e *env) sends() map[sendKey]store.SendRow {
	e.t.Helper()
	rows, err := e.st.ListSends(context.Background(), store.SendFilter{Limit: 100000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[sendKey]store.SendRow{}
	for _, r := range rows {
		out[sendKey{r.EventID, conversion.Platform(r.Platform)}] = r
	}
	return out
}

func (e *env) run(q *conversion.Queue, force bool) conversion.Report {
	e.t.Helper()
	rep, err := q.Run(context.Background(), conversion.RunOptions{Force: force})
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

type want struct {
	status   conversion.Status
	reason   string
	attempts int
}

func (e *env) expect(got map[sendKey]store.SendRow, k sendKey, w want) store.SendRow {
	e.t.Helper()
	r, ok := got[k]
	if !ok {
		e.t.Fatalf("no send for %s on %s", k.event, k.platform)
	}
	if r.Status != string(w.status) || r.Reason != w.reason || r.Attempts != w.attempts {
		e.t.Fatalf("send %s on %s: status %s reason %q attempts %d (%s); want %s %q %d", k.event, k.platform, r.Status, r.Reason,
			r.Attempts, r.Message, w.status, w.reason, w.attempts)
	}
	return r
}

func TestScheduleNext(t *testing.T) {
	daily := conversion.MustSchedule(conversion.DefaultSchedule)
	for _, c := range []struct{ now, want time.Time }{
		{start, time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 1, 2, 59, 0, 0, time.UTC), time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)},
		// Another zone: still 03:00 UTC.
		{time.Date(2026, 3, 1, 1, 0, 0, 0, time.FixedZone("X", -5*3600)), time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC).Add(24 * time.Hour)},
	} {
		got, ok := daily.Next(c.now)
		if !ok || !got.Equal(c.want) {
			t.Errorf("daily.Next(%s) = %s, %v; want %s", c.now, got, ok, c.want)
		}
	}
	every15, err := conversion.ParseSchedule("*/15 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := every15.Next(start.Add(time.Minute)); !got.Equal(start.Add(15 * time.Minute)) {
		t.Errorf("*/15 next = %s", got)
	}
	imm := conversion.MustSchedule("immediate")
	if got, ok := imm.Next(start); !ok || !got.Equal(start) {
		t.Errorf("immediate next = %s, %v", got, ok)
	}
	if _, ok := conversion.MustSchedule("off").Next(start); ok {
		t.Error("off has a next run")
	}
	for _, bad := range []string{"", "0 3 * *", "61 3 * * *", "daily", "CRON_TZ=Europe/London 0 3 * * *", "0 0 3 * * *"} {
		if _, err := conversion.ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) accepted", bad)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	b := conversion.Backoff{Base: time.Minute, Cap: time.Hour, MaxAttempts: 8}
	for n := 1; n <= 10; n++ {
		ceiling := min(time.Hour, time.Minute<<(n-1))
		if got := b.Delay(n, 0); got != 0 {
			t.Errorf("Delay(%d, 0) = %s", n, got)
		}
		if got := b.Delay(n, 0.999999); got > ceiling || got < ceiling*99/100 {
			t.Errorf("Delay(%d, ~1) = %s, want just under %s", n, got, ceiling)
		}
	}
	// The default schedule stays well inside Meta's 7-day window even at
	// the top of every draw.
	var total time.Duration
	for n := 1; n < conversion.DefaultBackoff.MaxAttempts; n++ {
		total += conversion.DefaultBackoff.Delay(n, 1)
	}
	if total > 2*24*time.Hour {
		t.Errorf("default backoff spans up to %s", total)
	}
}

func TestPlanningRules(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.connect(conversion.Meta)
		e.connect(conversion.Google) // connected, but the stage maps nothing there
		e.mapStage(0, conversion.Meta, "Lead")
		e.mapStage(0, conversion.TikTok, "SubmitForm") // mapped, but no connection
		ids := e.ingest(0,
			event.Fields{FBC: "fb.1.1.abc", GCLID: "g-1", TTCLID: "tt-1"}, // 0
			event.Fields{UTMSource: "newsletter"},                         // 1: no click id at all
			event.Fields{FBP: "fb.1.1.x"},                                 // 2: Check says outside the window
			event.Fields{FBP: "fb.1.1.y"},                                 // 3: Check says not before tomorrow 12:00
			event.Fields{MSCLKID: "ms-1"},                                 // 4: only Microsoft's click id
		)
		meta := e.cls[conversion.Meta]
		meta.SetVerdict(ids[2], conversion.Verdict{Skip: conversion.SkipOutsideWindow, Detail: "too old"})
		later := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
		meta.SetVerdict(ids[3], conversion.Verdict{NotBefore: later})

		q := e.queue()
		if n, err := q.Plan(ctx); err != nil || n != 5 {
			t.Fatalf("Plan = %d, %v; want 5 events", n, err)
		}
		got := e.sends()
		next := time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC)
		r := e.expect(got, sendKey{ids[0], conversion.Meta}, want{conversion.StatusPending, "", 0})
		if r.NextAttemptAt == nil || !r.NextAttemptAt.Equal(next) {
			t.Errorf("pending send due at %v, want the next 03:00 UTC %s", r.NextAttemptAt, next)
		}
		e.expect(got, sendKey{ids[0], conversion.Google}, want{conversion.StatusSkipped, conversion.SkipNoMapping, 0})
		e.expect(got, sendKey{ids[0], conversion.TikTok}, want{conversion.StatusSkipped, conversion.SkipNoConnection, 0})
		e.expect(got, sendKey{ids[1], conversion.Meta}, want{conversion.StatusSkipped, conversion.SkipNoClickID, 0})
		e.expect(got, sendKey{ids[1], conversion.Google}, want{conversion.StatusSkipped, conversion.SkipNoMapping, 0})
		e.expect(got, sendKey{ids[2], conversion.Meta}, want{conversion.StatusSkipped, conversion.SkipOutsideWindow, 0})
		r = e.expect(got, sendKey{ids[3], conversion.Meta}, want{conversion.StatusPending, "", 0})
		if r.NextAttemptAt == nil || !r.NextAttemptAt.Equal(later) {
			t.Errorf("send held by Check due at %v, want %s", r.NextAttemptAt, later)
		}
		e.expect(got, sendKey{ids[4], conversion.Microsoft}, want{conversion.StatusSkipped, conversion.SkipNoConnection, 0})
		// Rows exist only where there is a connection or the platform's click id.
		for _, k := range []sendKey{{ids[1], conversion.TikTok}, {ids[1], conversion.Microsoft}, {ids[0], conversion.Microsoft}, {ids[4], conversion.TikTok}} {
			if _, ok := got[k]; ok {
				t.Errorf("unexpected send row for %s on %s", k.event, k.platform)
			}
		}
		// Google is connected, so every event has a Google row: no mapping.
		for _, id := range ids {
			e.expect(got, sendKey{id, conversion.Google}, want{conversion.StatusSkipped, conversion.SkipNoMapping, 0})
		}
		if len(got) != 12 {
			t.Errorf("%d send rows, want 12", len(got))
		}
		// Planning again finds an empty outbox and changes nothing.
		if n, err := q.Plan(ctx); err != nil || n != 0 {
			t.Fatalf("second Plan = %d, %v", n, err)
		}
		if d, _ := e.st.OutboxDepth(ctx); d != 0 {
			t.Fatalf("outbox depth %d after planning", d)
		}
		// Nothing is due before 03:00: a scheduled run sends nothing.
		if rep := e.run(q, false); rep.Requests != 0 {
			t.Fatalf("run before the schedule made %d requests", rep.Requests)
		}
		// At 03:00 the pending send goes; the one held by Check waits on.
		e.clock.Set(next)
		rep := e.run(q, false)
		if rep.Sent != 1 || meta.Count(ids[0]) != 1 || meta.Count(ids[3]) != 0 {
			t.Fatalf("03:00 run %+v; sends %v", rep, meta.Counts())
		}
	})
}

func TestImmediateAndOffSchedules(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.connect(conversion.Meta)
		e.mapStage(0, conversion.Meta, "Lead")
		off := e.queue(func(o *conversion.Options) { o.Schedule = conversion.MustSchedule("off") })
		a := e.ingest(0, event.Fields{FBC: "fb.1.1.a"})[0]
		e.run(off, false)
		if r := e.sends()[sendKey{a, conversion.Meta}]; r.Status != "pending" || r.NextAttemptAt != nil {
			t.Fatalf("off: %+v, want pending with no due time", r)
		}
		e.clock.Advance(48 * time.Hour)
		if rep := e.run(off, false); rep.Requests != 0 {
			t.Fatal("off schedule sent by itself")
		}
		imm := e.queue(func(o *conversion.Options) { o.Schedule = conversion.MustSchedule("immediate") })
		b := e.ingest(0, event.Fields{FBC: "fb.1.1.b"})[0]
		rep := e.run(imm, false)
		// Immediate sends the new one and the one planned while off.
		if rep.Sent != 2 || e.cls[conversion.Meta].Count(a) != 1 || e.cls[conversion.Meta].Count(b) != 1 {
			t.Fatalf("immediate run %+v", rep)
		}
	})
}

func TestSendOutcomes(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.connect(conversion.Meta)
		e.mapStage(0, conversion.Meta, "Lead")
		meta := e.cls[conversion.Meta]
		ids := e.ingest(0,
			event.Fields{FBC: "fb.1.1.ok", DataTimestamp: start.Add(-time.Hour)},
			event.Fields{FBC: "fb.1.1.retry"},
			event.Fields{FBC: "fb.1.1.bad"},
			event.Fields{FBC: "fb.1.1.partial-bad"},
			event.Fields{FBC: "fb.1.1.partial-other"},
		)
		meta.Script(ids[1], conversion.Result{Outcome: conversion.Transient, HTTPStatus: 503, Message: "unavailable"},
			conversion.Result{Outcome: conversion.Sent, HTTPStatus: 200, Message: "ok"})
		meta.Script(ids[2], conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 400, Message: "invalid fbc"})
		// One bad conversion refuses the request: it is Permanent, the others
		// of its batch Transient, and they go again without it.
		meta.Script(ids[3], conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 400, Message: "event 3 invalid"})
		meta.Script(ids[4], conversion.Result{Outcome: conversion.Transient, HTTPStatus: 400, Message: "batch refused for event 3"},
			conversion.Result{Outcome: conversion.Sent, HTTPStatus: 200})
		base := 20 * time.Minute
		q := e.queue(func(o *conversion.Options) {
			o.Backoff = conversion.Backoff{Base: base, Cap: 4 * time.Hour, MaxAttempts: 8}
			o.Rand = func() float64 { return 0.75 }
		})
		rep := e.run(q, true)
		if rep.Requests != 1 || rep.Sent != 1 || rep.Retrying != 2 || rep.Failed != 2 {
			t.Fatalf("first run %+v", rep)
		}
		got := e.sends()
		r := e.expect(got, sendKey{ids[0], conversion.Meta}, want{conversion.StatusSent, "", 1})
		if r.SentAt == nil || r.HTTPStatus == nil || *r.HTTPStatus != 200 {
			t.Errorf("sent row %+v", r)
		}
		r = e.expect(got, sendKey{ids[1], conversion.Meta}, want{conversion.StatusRetrying, conversion.ReasonTransient, 1})
		if r.NextAttemptAt == nil || r.NextAttemptAt.Before(start) || r.NextAttemptAt.After(start.Add(base)) {
			t.Errorf("first retry due %v, want within [now, now+%s]", r.NextAttemptAt, base)
		}
		if !r.NextAttemptAt.Equal(start.Add(base * 3 / 4)) {
			t.Errorf("first retry due %v, want the jitter draw 0.75 × %s", r.NextAttemptAt, base)
		}
		if r.Message != "unavailable" || *r.HTTPStatus != 503 {
			t.Errorf("retrying row keeps the platform's answer: %+v", r)
		}
		e.expect(got, sendKey{ids[2], conversion.Meta}, want{conversion.StatusFailed, conversion.ReasonRejected, 1})
		e.expect(got, sendKey{ids[3], conversion.Meta}, want{conversion.StatusFailed, conversion.ReasonRejected, 1})
		e.expect(got, sendKey{ids[4], conversion.Meta}, want{conversion.StatusRetrying, conversion.ReasonTransient, 1})

		// The request carried the opened credentials, the default label and
		// the conversion's time: data_timestamp when given.
		req := meta.Requests()[0]
		if req.Conn.Settings["access_token"] != "secret-token-meta-0123456789" || req.Conn.Settings["label"] != "pruuv" {
			t.Errorf("connection sent with %v", req.Conn.Settings)
		}
		byID := map[string]conversion.Conversion{}
		for _, c := range req.Batch {
			byID[c.EventID] = c
		}
		if c := byID[ids[0]]; !c.Time.Equal(start.Add(-time.Hour)) || c.EventName != "Lead" || !c.ReceivedAt.Equal(start) {
			t.Errorf("conversion with data_timestamp: %+v", c)
		}
		if c := byID[ids[1]]; !c.Time.Equal(start) {
			t.Errorf("conversion without data_timestamp at %s, want when received", c.Time)
		}

		// Before the backoff runs out a scheduled run leaves them alone.
		e.clock.Advance(base / 2)
		if rep := e.run(q, false); rep.Requests != 0 {
			t.Fatalf("run during backoff: %+v", rep)
		}
		// Past the second retry's time both go again and are sent.
		e.clock.Advance(base)
		rep = e.run(q, false)
		if rep.Requests != 1 || rep.Sent != 2 {
			t.Fatalf("second run %+v", rep)
		}
		got = e.sends()
		e.expect(got, sendKey{ids[1], conversion.Meta}, want{conversion.StatusSent, "", 2})
		e.expect(got, sendKey{ids[4], conversion.Meta}, want{conversion.StatusSent, "", 2})
		for id, n := range map[string]int{ids[0]: 1, ids[1]: 2, ids[2]: 1, ids[3]: 1, ids[4]: 2} {
			if meta.Count(id) != n {
				t.Errorf("event %s sent %d times, want %d", id, meta.Count(id), n)
			}
		}
		// Every attempt is in the log, with the client's summary.
		atts, err := e.st.ListAttempts(context.Background(), ids[1], "")
		if err != nil {
			t.Fatal(err)
		}
		if len(atts) != 2 || atts[0].Outcome != "transient" || atts[1].Outcome != "sent" || atts[0].Summary != "meta event=Lead id="+ids[1] {
			t.Fatalf("attempts %+v", atts)
		}
		// Nothing is left: another forced run makes no request.
		if rep := e.run(q, true); rep.Requests != 0 {
			t.Fatalf("forced run after everything finished: %+v", rep)
		}
	})
}

func TestRateLimitPausesConnection(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.connect(conversion.Meta)
		e.connect(conversion.TikTok)
		e.mapStage(0, conversion.Meta, "Lead")
		e.mapStage(0, conversion.TikTok, "SubmitForm")
		meta, tiktok := e.cls[conversion.Meta], e.cls[conversion.TikTok]
		meta.SetLimits(1, 0)
		ids := e.ingest(0, event.Fields{FBC: "fb.1.1.a", TTCLID: "t-a"}, event.Fields{FBC: "fb.1.1.b"}, event.Fields{FBC: "fb.1.1.c"})
		wait := 30 * time.Minute
		// Sends go in event id order: the first request is throttled.
		first := slices.Min(ids)
		meta.Script(first, conversion.Result{Outcome: conversion.Transient, HTTPStatus: 429, Message: "slow down", RetryAfter: wait},
			conversion.Result{Outcome: conversion.Sent, HTTPStatus: 200})
		q := e.queue(func(o *conversion.Options) { o.Workers = 1 })
		rep := e.run(q, true)
		if n := len(meta.Requests()); n != 1 {
			t.Fatalf("%d meta requests after a 429, want 1 (the connection pauses for the rest of the run)", n)
		}
		if len(tiktok.Requests()) != 1 {
			t.Fatal("another connection was paused too")
		}
		if rep.Retrying != 1 || rep.Deferred != 2 {
			t.Fatalf("run %+v", rep)
		}
		got := e.sends()
		throttled := meta.Requests()[0].Batch[0].EventID
		if throttled != first {
			t.Fatalf("first request carried %s, want the lowest event id %s", throttled, first)
		}
		for _, id := range ids {
			r := got[sendKey{id, conversion.Meta}]
			if r.NextAttemptAt == nil || r.NextAttemptAt.Before(start.Add(wait)) {
				t.Errorf("send %s due %v, want not before Retry-After (%s)", id, r.NextAttemptAt, start.Add(wait))
			}
			wantAttempts := 0
			if id == throttled {
				wantAttempts = 1
				if r.Reason != conversion.ReasonRateLimited || r.Status != "retrying" {
					t.Errorf("throttled send %+v", r)
				}
			}
			if r.Attempts != wantAttempts {
				t.Errorf("send %s attempts %d, want %d", id, r.Attempts, wantAttempts)
			}
		}
		// Within the pause a scheduled run sends nothing; after it, all go.
		e.clock.Advance(wait - time.Minute)
		if rep := e.run(q, false); rep.Requests != 0 {
			t.Fatalf("run within Retry-After: %+v", rep)
		}
		e.clock.Advance(2 * time.Minute)
		if rep := e.run(q, false); rep.Sent != 3 {
			t.Fatalf("run after Retry-After: %+v", rep)
		}
	})
}

func TestPacingAndBatches(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.connect(conversion.Google)
		e.mapStage(0, conversion.Google, "customers/1/conversionActions/2")
		g := e.cls[conversion.Google]
		g.SetLimits(2, 10*time.Second)
		e.ingest(0, event.Fields{GCLID: "a"}, event.Fields{GCLID: "b"}, event.Fields{GCLID: "c"}, event.Fields{GCLID: "d"}, event.Fields{GCLID: "e"})
		e.run(e.queue(), true)
		reqs := g.Requests()
		if len(reqs) != 3 || len(reqs[0].Batch) != 2 || len(reqs[1].Batch) != 2 || len(reqs[2].Batch) != 1 {
			t.Fatalf("%d requests; want batches of 2, 2, 1", len(reqs))
		}
		for i := 1; i < len(reqs); i++ {
			if gap := reqs[i].At.Sub(reqs[i-1].At); gap < 10*time.Second {
				t.Errorf("request %d came %s after the previous, want ≥ 10s", i, gap)
			}
		}
	})
}

func TestMaxAttemptsAndWindow(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.connect(conversion.Meta)
		e.mapStage(0, conversion.Meta, "Lead")
		meta := e.cls[conversion.Meta]
		flaky := e.ingest(0, event.Fields{FBC: "fb.1.1.flaky"})[0]
		meta.Script(flaky, conversion.Result{Outcome: conversion.Transient, Message: "timeout"})
		q := e.queue(func(o *conversion.Options) {
			o.Backoff = conversion.Backoff{Base: time.Minute, Cap: time.Hour, MaxAttempts: 3}
		})
		for range 3 {
			e.run(q, true)
		}
		got := e.sends()
		r := e.expect(got, sendKey{flaky, conversion.Meta}, want{conversion.StatusFailed, conversion.ReasonMaxAttempts, 3})
		if r.HTTPStatus != nil {
			t.Errorf("http_status %v for an answer without HTTP", *r.HTTPStatus)
		}
		if e.run(q, true).Requests != 0 || meta.Count(flaky) != 3 {
			t.Fatal("a failed send was tried again")
		}

		// A platform window of 2 h: a retry is never planned past it, and a
		// send that runs out of time fails; one never tried is skipped.
		meta.SetWindow(2 * time.Hour)
		slow := e.ingest(0, event.Fields{FBC: "fb.1.1.slow"})[0]
		e.clock.Advance(time.Hour)
		late := e.ingest(0, event.Fields{FBC: "fb.1.1.late"})[0]
		meta.Script(slow, conversion.Result{Outcome: conversion.Transient, HTTPStatus: 502})
		meta.SetVerdict(late, conversion.Verdict{NotBefore: e.clock.Now().Add(5 * time.Hour)})
		wide := e.queue(func(o *conversion.Options) {
			o.Backoff = conversion.Backoff{Base: 4 * time.Hour, Cap: 4 * time.Hour, MaxAttempts: 8}
			o.Rand = func() float64 { return 0.99 }
		})
		e.run(wide, true)
		r = e.sends()[sendKey{slow, conversion.Meta}]
		edge := start.Add(2 * time.Hour) // slow's conversion time + the window
		if r.Status != "retrying" || r.NextAttemptAt == nil || r.NextAttemptAt.After(edge) || r.NextAttemptAt.Before(edge.Add(-2*time.Second)) {
			t.Fatalf("retry of slow due %v (%s), want capped just inside the window at %s", r.NextAttemptAt, r.Status, edge)
		}
		meta.SetVerdict(late, conversion.Verdict{}) // the hold lifts, but too late
		e.clock.Set(start.Add(4 * time.Hour))
		e.run(wide, true)
		got = e.sends()
		e.expect(got, sendKey{slow, conversion.Meta}, want{conversion.StatusFailed, conversion.SkipOutsideWindow, 1})
		e.expect(got, sendKey{late, conversion.Meta}, want{conversion.StatusSkipped, conversion.SkipOutsideWindow, 0})
		if meta.Count(late) != 0 || meta.Count(slow) != 1 {
			t.Fatalf("sends %v", meta.Counts())
		}
	})
}

func TestDryRunChangesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.connect(conversion.Meta)
		e.mapStage(0, conversion.Meta, "Lead")
		e.cls[conversion.Meta].SetLimits(2, 0)
		q := e.queue()
		planned := e.ingest(0, event.Fields{FBC: "fb.1.1.a"}, event.Fields{FBC: "fb.1.1.b"})
		if _, err := q.Plan(ctx); err != nil {
			t.Fatal(err)
		}
		fresh := e.ingest(0, event.Fields{FBC: "fb.1.1.c"}, event.Fields{TTCLID: "t"})
		before := e.sends()
		pv, err := q.DryRun(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		would := map[string]conversion.Preview{}
		for _, p := range pv {
			would[p.EventID+"/"+p.Platform] = p
		}
		for _, id := range append(planned, fresh[0]) {
			p := would[id+"/meta"]
			if p.Would != "send" || p.Summary == "" || p.Batch < 1 || p.Batch > 2 {
				t.Errorf("preview of %s: %+v", id, p)
			}
		}
		if p := would[fresh[0]+"/meta"]; !p.Unplanned {
			t.Errorf("the outbox event is not marked unplanned: %+v", p)
		}
		if p := would[fresh[1]+"/tiktok"]; p.Would != "skip" || p.Reason != conversion.SkipNoConnection {
			t.Errorf("preview of the TikTok click: %+v", p)
		}
		after := e.sends()
		if len(after) != len(before) {
			t.Fatalf("dry run changed the sends: %d → %d", len(before), len(after))
		}
		for k, r := range before {
			if after[k] != r && (after[k].Status != r.Status || after[k].Attempts != r.Attempts || !after[k].UpdatedAt.Equal(r.UpdatedAt)) {
				t.Errorf("dry run changed %v", k)
			}
		}
		if d, _ := e.st.OutboxDepth(ctx); d != 2 {
			t.Errorf("outbox depth %d after a dry run, want 2", d)
		}
		if n := len(e.cls[conversion.Meta].Requests()); n != 0 {
			t.Errorf("dry run made %d requests", n)
		}
	})
}

func TestRetryFailedSend(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.connect(conversion.Meta)
		e.mapStage(0, conversion.Meta, "Lead")
		meta := e.cls[conversion.Meta]
		id := e.ingest(0, event.Fields{FBC: "fb.1.1.a"})[0]
		meta.Script(id, conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 401, Message: "bad token"},
			conversion.Result{Outcome: conversion.Sent, HTTPStatus: 200})
		q := e.queue()
		e.run(q, true)
		if _, err := e.st.RetrySend(ctx, "no-such-event", "", e.clock.Now()); !errorsIs(err, store.ErrNotFound) {
			t.Fatalf("retry of an unknown event: %v", err)
		}
		ps, err := e.st.RetrySend(ctx, id, "meta", e.clock.Now())
		if err != nil || len(ps) != 1 || ps[0] != "meta" {
			t.Fatalf("retry = %v, %v", ps, err)
		}
		e.expect(e.sends(), sendKey{id, conversion.Meta}, want{conversion.StatusPending, "", 0})
		e.run(q, false) // due at once
		e.expect(e.sends(), sendKey{id, conversion.Meta}, want{conversion.StatusSent, "", 1})
		if _, err := e.st.RetrySend(ctx, id, "", e.clock.Now()); !errorsIs(err, store.ErrNotRetryable) {
			t.Fatalf("retry of a sent send: %v", err)
		}
		if atts, _ := e.st.ListAttempts(ctx, id, "meta"); len(atts) != 2 {
			t.Fatalf("%d attempts recorded, want both", len(atts))
		}
	})
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// TestRotatedSecretSaved: a secret a client saves through the connection
// outlives the run, sealed like the one the operator gave.
func TestRotatedSecretSaved(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.connect(conversion.Microsoft)
		e.mapStage(0, conversion.Microsoft, "Goal")
		ms := e.cls[conversion.Microsoft]
		before, err := e.st.GetConnection(ctx, e.clientID, string(conversion.Microsoft))
		if err != nil {
			t.Fatal(err)
		}
		const rotated = "rotated-token-ABCDEFGHIJKLMNOP"
		var saveErr, notSecret, empty error
		var hasSaver bool
		ms.OnConn(func(ctx context.Context, conn conversion.Connection) {
			if hasSaver = conn.SaveSecret != nil; !hasSaver {
				return
			}
			notSecret = conn.SaveSecret(ctx, "account_id", "456")
			empty = conn.SaveSecret(ctx, "access_token", "")
			saveErr = conn.SaveSecret(ctx, "access_token", rotated)
		})
		e.ingest(0, event.Fields{MSCLKID: "ms-1"})
		if rep := e.run(e.queue(), true); rep.Sent != 1 {
			t.Fatalf("first run %+v", rep)
		}
		if !hasSaver || saveErr != nil {
			t.Fatalf("SaveSecret set %v, error %v", hasSaver, saveErr)
		}
		if notSecret == nil || empty == nil {
			t.Errorf("saving a plain setting (%v) or an empty value (%v) was accepted", notSecret, empty)
		}

		// Another process loads the connection afresh.
		ms.OnConn(nil)
		e.ingest(0, event.Fields{MSCLKID: "ms-2"})
		other := e.open()
		if rep := e.run(e.queueOn(other), true); rep.Sent != 1 {
			t.Fatalf("second run %+v", rep)
		}
		reqs := ms.Requests()
		got := reqs[len(reqs)-1].Conn.Settings
		if got["access_token"] != rotated || got["account_id"] != "123" || got["label"] != "pruuv" {
			t.Fatalf("the next load sends with %v, want the saved token and the other settings unchanged", got)
		}

		// At rest: sealed, bound to the row, shown only as a hint.
		row, err := other.ConnectionByID(ctx, before.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw := fmt.Sprint(row.Settings, row.Sealed, row.Hints)
		if strings.Contains(raw, rotated) || strings.Contains(raw, "ABCDEFGHIJKL") {
			t.Errorf("the stored row holds the saved secret in clear: %s", raw)
		}
		if row.Sealed == before.Sealed || row.Hints["access_token"] != conversion.Hint(rotated) || row.Settings["account_id"] != "123" {
			t.Errorf("stored row %+v, want a new sealed value and hint %q", row, conversion.Hint(rotated))
		}
		moved := row
		moved.ID = token.NewID("con")
		if _, err := conversion.OpenSettings(e.key, moved); err == nil {
			t.Error("the saved sealed value opens on another row")
		}
		conns, err := other.ListConnections(ctx)
		if err != nil || len(conns) != 1 {
			t.Fatalf("%d connections, %v", len(conns), err)
		}
		v := conversion.ViewOf(conns[0], nil)
		if v.Settings["access_token"] != conversion.Hint(rotated) || !slices.Equal(v.SecretKeys, []string{"access_token"}) {
			t.Errorf("connection list shows %v (secret keys %v), want only the hint", v.Settings, v.SecretKeys)
		}
	})
}

// TestRotatedSecretLosesToAChange: an operator's change made while a run
// holds the connection is kept; the client's save is refused.
func TestRotatedSecretLosesToAChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.connect(conversion.Microsoft)
		e.mapStage(0, conversion.Microsoft, "Goal")
		admin := &conversion.Admin{Store: e.st, Key: e.key, Clients: e.reg, Now: e.clock.Now}
		const reconnected = "reconnected-token-0123456789"
		var saveErr error
		e.cls[conversion.Microsoft].OnConn(func(ctx context.Context, conn conversion.Connection) {
			if _, err := admin.SaveConnection(ctx, e.clientID, conversion.Microsoft, map[string]string{"access_token": reconnected}, "admin"); err != nil {
				t.Error(err)
			}
			saveErr = conn.SaveSecret(ctx, "access_token", "rotated-token-0123456789")
		})
		e.ingest(0, event.Fields{MSCLKID: "ms-1"})
		if rep := e.run(e.queue(), true); rep.Sent != 1 {
			t.Fatalf("run %+v", rep)
		}
		if !errors.Is(saveErr, store.ErrConflict) {
			t.Fatalf("save over a changed connection: %v, want ErrConflict", saveErr)
		}
		row, err := e.st.GetConnection(ctx, e.clientID, string(conversion.Microsoft))
		if err != nil {
			t.Fatal(err)
		}
		s, err := conversion.OpenSettings(e.key, row)
		if err != nil || s["access_token"] != reconnected {
			t.Fatalf("stored token %q (%v), want the operator's", s["access_token"], err)
		}
	})
}
