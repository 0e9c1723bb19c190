package conversion

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// Registry holds the platform clients by platform.
type Registry map[Platform]Client

// Reasons the queue gives beside the skip reasons.
const (
	ReasonTransient   = "transient"    // retrying: no definite answer, try again
	ReasonRateLimited = "rate_limited" // retrying: the platform asked to slow down (429)
	ReasonRejected    = "rejected"     // failed: the platform refused it
	ReasonMaxAttempts = "max_attempts" // failed: transient failures until the attempts ran out
)

// Backoff is the retry policy for transient failures: the n-th retry waits a
// random time between 0 and min(Cap, Base·2^(n-1)) ("full jitter"), at least
// the platform's Retry-After, and never past the platform's window.
type Backoff struct {
	Base        time.Duration
	Cap         time.Duration
	MaxAttempts int // attempts before a send that keeps failing transiently is failed
}

// DefaultBackoff spreads eight attempts over up to about 21 hours.
var DefaultBackoff = Backoff{Base: 10 * time.Minute, Cap: 12 * time.Hour, MaxAttempts: 8}

// Delay is the wait before the retry that follows attempt number attempts
// (1 after the first attempt), for a jitter draw u in [0, 1).
func (b Backoff) Delay(attempts int, u float64) time.Duration {
	ceiling := b.Cap
	if attempts-1 < 32 {
		if d := b.Base << (attempts - 1); d > 0 && d < b.Cap {
			ceiling = d
		}
	}
	return time.Duration(u * float64(ceiling))
}

// Clock is the queue's time: tests drive it by hand.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DefaultLease is how long a claimed send stays reserved for its runner. It
// is far longer than any request (platform clients time out in seconds):
// only a runner that died mid-send leaves a lease to run out, and its sends
// are then taken again, with the same event id as dedup key.
const DefaultLease = 10 * time.Minute

// leaseMargin is the least lease time left for a request to start; with less,
// the rest of the claim is handed back rather than risk a second runner
// taking a send whose request is still in flight. A lease shorter than five
// margins (tests, PRUUV_CONVERSIONS_LEASE) keeps a fifth of itself instead,
// so a short lease still lets requests start.
const leaseMargin = 2 * time.Minute

// Options configures a Queue.
type Options struct {
	Store    *store.Store
	Key      secret.Key
	Clients  Registry
	Schedule Schedule // zero: DefaultSchedule
	Clock    Clock    // nil: the real clock
	Rand     func() float64
	Log      *slog.Logger
	Metrics  *Metrics
	Backoff  Backoff       // zero: DefaultBackoff
	Lease    time.Duration // zero: DefaultLease
	Claim    int           // sends claimed at a time (default 1000)
	Workers  int           // connections served at once (default 4)
	Owner    string        // names this runner in leases; default host, pid and a random tag
	// Busy, when set, says whether events are arriving right now (ingestion
	// shares SQLite's one writer with the planner). The paced planner rests
	// longer while it is.
	Busy func() bool
}

// Queue plans and sends conversions. Every state lives in the database, so
// any number of Queues, in any number of processes, may run on one database.
type Queue struct {
	busy     func() bool
	store    *store.Store
	key      secret.Key
	clients  Registry
	schedule Schedule
	clock    Clock
	rand     func() float64
	log      *slog.Logger
	metrics  *Metrics
	backoff  Backoff
	lease    time.Duration
	claim    int
	workers  int
	owner    string
	seq      atomic.Int64
}

// ErrNoClients means the registry lacks a platform's client.
var ErrNoClients = errors.New("conversion: a platform has no client registered")

// New checks the registry covers every platform and returns a Queue.
func New(opt Options) (*Queue, error) {
	for _, p := range Platforms {
		if c, ok := opt.Clients[p]; !ok || c == nil {
			return nil, fmt.Errorf("%w: %s", ErrNoClients, p)
		}
	}
	q := &Queue{store: opt.Store, key: opt.Key, clients: opt.Clients, schedule: opt.Schedule, clock: opt.Clock, rand: opt.Rand,
		log: opt.Log, metrics: opt.Metrics, backoff: opt.Backoff, lease: opt.Lease, claim: opt.Claim, workers: opt.Workers, owner: opt.Owner,
		busy: opt.Busy}
	if q.schedule.text == "" {
		q.schedule = MustSchedule(DefaultSchedule)
	}
	if q.clock == nil {
		q.clock = realClock{}
	}
	if q.rand == nil {
		q.rand = mrand.Float64
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.backoff == (Backoff{}) {
		q.backoff = DefaultBackoff
	}
	if q.lease <= 0 {
		q.lease = DefaultLease
	}
	if q.claim <= 0 {
		q.claim = 1000
	}
	if q.workers <= 0 {
		q.workers = 4
	}
	if q.owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		cryptorand(b)
		q.owner = host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b)
	}
	return q, nil
}

func cryptorand(b []byte) { crand.Read(b) }

// hasClickID reports whether f carries p's own click id: then a send row is
// recorded even when the client has no connection on p, so the audit log
// shows the conversion that could have been sent.
func hasClickID(p Platform, f *event.Fields) bool {
	switch p {
	case Google:
		return f.GCLID != "" || f.GBRAID != "" || f.WBRAID != ""
	case Meta:
		return f.FBC != "" || f.FBP != ""
	case TikTok:
		return f.TTCLID != ""
	case Microsoft:
		return f.MSCLKID != ""
	}
	return false
}

// conversionOf is the conversion an event makes on a platform mapped to name.
func conversionOf(e *event.Event, name string) Conversion {
	t := e.ReceivedAt
	if !e.DataTimestamp.IsZero() {
		t = e.DataTimestamp
	}
	return Conversion{EventID: e.ID, StageID: e.StageID, EventName: name, Time: t, ReceivedAt: e.ReceivedAt, Fields: e.Fields}
}

// verdict is what may be said of a send before it is attempted: a skip
// reason, or the time it may go (zero: now).
type verdict struct {
	skip, detail string
	notBefore    time.Time
}

// judge applies the planning rules to one event on one platform.
func (q *Queue) judge(p Platform, e *event.Event, connected bool, mapping string, now time.Time) (Conversion, verdict) {
	c := conversionOf(e, mapping)
	switch {
	case !connected:
		return c, verdict{skip: SkipNoConnection, detail: "the client has no " + string(p) + " connection"}
	case mapping == "":
		return c, verdict{skip: SkipNoMapping, detail: "the stage has no " + string(p) + " event mapped"}
	}
	cl := q.clients[p]
	if !cl.HasSignal(&e.Fields) {
		return c, verdict{skip: SkipNoClickID, detail: "nothing " + string(p) + " can match on"}
	}
	v := cl.Check(&c, now)
	if v.Skip != "" {
		return c, verdict{skip: v.Skip, detail: v.Detail}
	}
	return c, verdict{notBefore: v.NotBefore}
}

// How long the paced planner rests after a batch, in multiples of the time
// the batch took: while events are arriving it takes at most a tenth of the
// writer's time, so a burst of traffic is planned after it rather than slowed
// by it; otherwise a third.
const (
	restIdle = 2
	restBusy = 10
)

// planBatch is how many outbox rows one planning transaction takes.
const planBatch = 100

// Plan turns every outbox row into send rows, in transactions of planBatch
// events. For each event and platform P a send row is recorded when the
// client has a connection on P or the event carries P's click id; it is
// skipped (no_connection, no_mapping, no_click_id, or the client's Check
// verdict) or pending, due at the schedule's next run. It returns the number
// of events planned.
func (q *Queue) Plan(ctx context.Context) (int, error) {
	n, _, err := q.plan(ctx, false)
	return n, err
}

// plan is Plan, also counting the sends it recorded as skipped.
func (q *Queue) plan(ctx context.Context, paced bool) (planned, skips int, err error) {
	for {
		began := time.Now()
		now := q.clock.Now()
		var next int64
		if t, ok := q.schedule.Next(now); ok {
			next = t.UnixMilli()
		}
		var skipped []store.PlannedSend
		n, err := q.store.PlanOutbox(ctx, planBatch, now, func(evs []store.OutboxEvent) []store.PlannedSend {
			out := q.decide(evs, now, next)
			skipped = skipped[:0]
			for _, p := range out {
				if p.Status == string(StatusSkipped) {
					skipped = append(skipped, p)
				}
			}
			return out
		})
		if err != nil {
			return planned, skips, err
		}
		for _, p := range skipped {
			q.metrics.count(p.Platform, StatusSkipped)
		}
		planned += n
		skips += len(skipped)
		if n < planBatch {
			return planned, skips, nil
		}
		if paced {
			// Real time, not q.clock: this shares the machine, not the
			// schedule.
			rest := restIdle * time.Since(began)
			if q.busy != nil && q.busy() {
				rest = restBusy * time.Since(began)
			}
			t := time.NewTimer(rest)
			select {
			case <-ctx.Done():
				t.Stop()
				return planned, skips, ctx.Err()
			case <-t.C:
			}
		}
	}
}

func (q *Queue) decide(evs []store.OutboxEvent, now time.Time, next int64) []store.PlannedSend {
	var out []store.PlannedSend
	for i := range evs {
		oe := &evs[i]
		for _, p := range Platforms {
			connected := oe.Connected[string(p)]
			if !connected && !hasClickID(p, &oe.Event.Fields) {
				continue
			}
			_, v := q.judge(p, &oe.Event, connected, oe.Mappings[string(p)], now)
			ps := store.PlannedSend{EventID: oe.Event.ID, Platform: string(p), ClientID: oe.ClientID, StageID: oe.Event.StageID}
			if v.skip != "" {
				ps.Status, ps.Reason, ps.Detail = string(StatusSkipped), v.skip, v.detail
			} else {
				ps.Status, ps.NextAttemptAt = string(StatusPending), next
				if next != 0 && v.notBefore.UnixMilli() > next {
					ps.NextAttemptAt = v.notBefore.UnixMilli()
				}
			}
			out = append(out, ps)
		}
	}
	return out
}

// RunOptions narrows a send run.
type RunOptions struct {
	// Force makes every pending and retrying send due now, whatever the
	// schedule and backoff say (pruuv conversions send).
	Force    bool
	ClientID string // only this client's sends; "" for all
	// Paced spaces the planning transactions out, so that a backlog of
	// outbox rows does not take the database's writer in one burst and hold
	// back the Webhook API's commits: after each batch the planner rests
	// twice as long as the batch took (the serve loop; on-demand runs plan
	// at full speed).
	Paced bool
}

// Report counts what a run did.
type Report struct {
	Planned  int `json:"planned"`  // outbox events planned
	Requests int `json:"requests"` // requests made to the platforms
	Sent     int `json:"sent"`
	Retrying int `json:"retrying"`
	Failed   int `json:"failed"`
	Skipped  int `json:"skipped"`  // when planned or when judged again before sending
	Deferred int `json:"deferred"` // handed back untried: too early for the platform, or its connection paused
}

func (r *Report) add(o Report) {
	r.Requests += o.Requests
	r.Sent += o.Sent
	r.Retrying += o.Retrying
	r.Failed += o.Failed
	r.Skipped += o.Skipped
	r.Deferred += o.Deferred
}

// Run plans the outbox, then claims and sends every due send until none is
// left. A transient failure is rescheduled into the future and a paused
// connection's sends are handed back with a later due time, so a run ends.
func (q *Queue) Run(ctx context.Context, opt RunOptions) (Report, error) {
	var rep Report
	var err error
	rep.Planned, rep.Skipped, err = q.plan(ctx, opt.Paced)
	if err != nil {
		return rep, err
	}
	now := q.clock.Now()
	if next, ok := q.schedule.Next(now); ok {
		if _, err := q.store.AnchorPending(ctx, next); err != nil {
			return rep, err
		}
	}
	if opt.Force {
		if _, err := q.store.MakeDue(ctx, now, opt.ClientID); err != nil {
			return rep, err
		}
	}
	r := &run{q: q, paused: map[string]time.Time{}, last: map[string]time.Time{}, conns: map[string]*Connection{}}
	for ctx.Err() == nil {
		now := q.clock.Now()
		owner := q.owner + "/" + strconv.FormatInt(q.seq.Add(1), 10)
		until := now.Add(q.lease)
		claimed, err := q.store.ClaimSends(ctx, owner, now, until, q.claim, opt.ClientID)
		if err != nil {
			return rep, err
		}
		if len(claimed) == 0 {
			break
		}
		got, err := r.process(ctx, owner, until, claimed)
		rep.add(got)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// run is the state of one send run: connections paused by a 429 stay paused
// to its end, and requests on one connection are paced.
type run struct {
	q      *Queue
	mu     sync.Mutex
	paused map[string]time.Time   // connection id → paused until
	last   map[string]time.Time   // connection id → start of its last request
	conns  map[string]*Connection // decrypted, by id
}

// item is one claimed send on its way.
type item struct {
	send store.ClaimedSend
	conv Conversion
}

// outcome collects the writes of one group of sends.
type outcome struct {
	updates  []store.SendUpdate
	releases []store.Release
	attempts []store.Attempt
	rep      Report
}

func (o *outcome) final(s store.ClaimedSend, st Status, reason, detail string, now time.Time) {
	o.updates = append(o.updates, store.SendUpdate{EventID: s.EventID, Platform: s.Platform, Status: string(st), Reason: reason,
		Detail: detail, Attempts: s.Attempts})
	switch st {
	case StatusSkipped:
		o.rep.Skipped++
	case StatusFailed:
		o.rep.Failed++
	}
}

func (o *outcome) release(s store.ClaimedSend, at time.Time) {
	o.releases = append(o.releases, store.Release{EventID: s.EventID, Platform: s.Platform, NextAttemptAt: at.UnixMilli()})
	o.rep.Deferred++
}

// process judges each claimed send again (connections, mappings and rules
// may have changed since planning, and time has passed), then sends the
// sendable ones, connection by connection, a few connections at once.
func (r *run) process(ctx context.Context, owner string, leaseUntil time.Time, claimed []store.ClaimedSend) (Report, error) {
	q := r.q
	now := q.clock.Now()
	var pre outcome
	groups := map[string][]item{}
	var order []string
	for _, s := range claimed {
		p := Platform(s.Platform)
		if _, ok := q.clients[p]; !ok {
			return Report{}, fmt.Errorf("%w: %s (send of event %s)", ErrNoClients, p, s.EventID)
		}
		c, v := q.judge(p, &s.Event, s.ConnectionID != "", s.EventName, now)
		switch {
		case v.skip == SkipOutsideWindow && s.Attempts > 0:
			// It was tried and ran out of time: a failure, not a skip.
			pre.final(s, StatusFailed, v.skip, v.detail, now)
		case v.skip != "":
			pre.final(s, StatusSkipped, v.skip, v.detail, now)
		case v.notBefore.After(now):
			pre.release(s, v.notBefore)
		default:
			if _, ok := groups[s.ConnectionID]; !ok {
				order = append(order, s.ConnectionID)
			}
			groups[s.ConnectionID] = append(groups[s.ConnectionID], item{send: s, conv: c})
		}
	}
	rep, err := r.write(ctx, owner, &pre)
	if err != nil {
		return rep, err
	}
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, q.workers)
	for _, id := range order {
		items := groups[id]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			got, err := r.sendConnection(ctx, owner, leaseUntil, id, items)
			errMu.Lock()
			defer errMu.Unlock()
			rep.add(got)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return rep, firstErr
}

// write records an outcome. The writes must happen even when ctx is done —
// the requests were made — so they run without its cancellation.
func (r *run) write(ctx context.Context, owner string, o *outcome) (Report, error) {
	if len(o.updates) == 0 && len(o.releases) == 0 && len(o.attempts) == 0 {
		return o.rep, nil
	}
	lost, err := r.q.store.FinishSends(context.WithoutCancel(ctx), owner, r.q.clock.Now(), o.updates, o.releases, o.attempts)
	if err != nil {
		return Report{}, err
	}
	gone := map[store.SendKey]bool{}
	for _, k := range lost {
		gone[k] = true
		r.q.log.Warn("conversion send lease lost before its result was written", "event_id", k.EventID, "platform", k.Platform, "lease_owner", owner)
	}
	for _, u := range o.updates {
		if !gone[store.SendKey{EventID: u.EventID, Platform: u.Platform}] {
			r.q.metrics.count(u.Platform, Status(u.Status))
		}
	}
	return o.rep, nil
}

// connection returns a connection with its secrets opened, once per run.
func (r *run) connection(ctx context.Context, id string) (*Connection, error) {
	r.mu.Lock()
	c, ok := r.conns[id]
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	row, err := r.q.store.ConnectionByID(ctx, id)
	if err != nil {
		return nil, err
	}
	keys := r.q.clients[Platform(row.Platform)].Keys()
	conn, err := OpenConnection(r.q.key, row, keys)
	if err != nil {
		return nil, err
	}
	saver := &secretSaver{id: row.ID, store: r.q.store, key: r.q.key, keys: keys, now: r.q.clock.Now, log: r.q.log, row: row}
	conn.SaveSecret = saver.save
	r.mu.Lock()
	r.conns[id] = &conn
	r.mu.Unlock()
	return &conn, nil
}

// sendConnection sends one connection's items in batches of the client's
// MaxBatch, paced by its MinInterval, writing each batch's results before the
// next request so a crash re-sends at most one batch.
func (r *run) sendConnection(ctx context.Context, owner string, leaseUntil time.Time, connID string, items []item) (Report, error) {
	q := r.q
	var rep Report
	p := Platform(items[0].send.Platform)
	cl := q.clients[p]
	handBack := func(rest []item, at time.Time) error {
		var o outcome
		for _, it := range rest {
			o.release(it.send, at)
		}
		got, err := r.write(ctx, owner, &o)
		rep.add(got)
		return err
	}
	conn, err := r.connection(ctx, connID)
	if err != nil {
		// Unreadable credentials are the operator's to fix; the sends wait.
		q.log.Error("conversion connection unusable", "connection_id", connID, "platform", string(p), "err", err)
		return rep, handBack(items, q.clock.Now().Add(q.backoff.Base))
	}
	size := max(1, cl.MaxBatch())
	for len(items) > 0 {
		n := min(size, len(items))
		batch, rest := items[:n], items[n:]
		r.mu.Lock()
		pausedUntil, last := r.paused[connID], r.last[connID]
		r.mu.Unlock()
		now := q.clock.Now()
		if !pausedUntil.IsZero() {
			return rep, handBack(items, maxTime(pausedUntil, now))
		}
		if ctx.Err() != nil {
			return rep, handBack(items, now)
		}
		if wait := last.Add(cl.MinInterval()).Sub(now); !last.IsZero() && wait > 0 {
			if err := q.clock.Sleep(ctx, wait); err != nil {
				return rep, handBack(items, q.clock.Now())
			}
			now = q.clock.Now()
		}
		if leaseUntil.Sub(now) < min(leaseMargin, q.lease/5) {
			// Too little lease left to be sure no one else takes these
			// sends while the request runs: hand them back, due at once.
			return rep, handBack(items, now)
		}
		r.mu.Lock()
		r.last[connID] = now
		r.mu.Unlock()
		convs := make([]Conversion, n)
		for i := range batch {
			convs[i] = batch[i].conv
		}
		// The request must end while the lease still holds, or another
		// runner could claim and send the same conversions meanwhile: give
		// it the lease left, less half the margin for writing the results.
		// (A duration on q.clock, applied in real time.)
		sendCtx, cancel := context.WithTimeout(ctx, leaseUntil.Sub(now)-min(leaseMargin, q.lease/5)/2)
		results := cl.Send(sendCtx, *conn, convs)
		cancel()
		rep.Requests++
		o := r.results(batch, results, connID)
		got, err := r.write(ctx, owner, &o)
		rep.add(got)
		if err != nil {
			return rep, err
		}
		items = rest
	}
	return rep, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// results turns one request's answers into attempt rows and new states.
func (r *run) results(batch []item, results []Result, connID string) outcome {
	q := r.q
	now := q.clock.Now()
	var o outcome
	var pause time.Duration
	for i, it := range batch {
		var res Result
		if i < len(results) {
			res = results[i]
		} else {
			res = Result{Outcome: Transient, Message: fmt.Sprintf("the client answered %d results for %d conversions", len(results), len(batch))}
		}
		s := it.send
		attempts := s.Attempts + 1
		o.attempts = append(o.attempts, store.Attempt{ID: token.NewID("att"), EventID: s.EventID, Platform: s.Platform, At: now.UnixMilli(),
			Outcome: outcomeName(res.Outcome), HTTPStatus: res.HTTPStatus, Message: res.Message, Summary: q.clients[Platform(s.Platform)].Summary(&it.conv)})
		u := store.SendUpdate{EventID: s.EventID, Platform: s.Platform, Attempts: attempts, HTTPStatus: res.HTTPStatus,
			Message: res.Message, LastAttemptAt: now.UnixMilli()}
		switch res.Outcome {
		case Sent:
			u.Status, u.SentAt = string(StatusSent), now.UnixMilli()
			o.rep.Sent++
		case Permanent:
			u.Status, u.Reason = string(StatusFailed), ReasonRejected
			o.rep.Failed++
		default: // Transient, and anything a client should not have answered
			limited := res.RetryAfter > 0 || res.HTTPStatus == 429
			if limited {
				pause = max(pause, res.RetryAfter, time.Second)
			}
			if attempts >= q.backoff.MaxAttempts {
				u.Status, u.Reason = string(StatusFailed), ReasonMaxAttempts
				u.Detail = fmt.Sprintf("%d attempts failed", attempts)
				o.rep.Failed++
				break
			}
			u.Status, u.Reason = string(StatusRetrying), ReasonTransient
			if limited {
				u.Reason = ReasonRateLimited
			}
			u.NextAttemptAt = q.retryAt(Platform(s.Platform), &it.conv, attempts, res.RetryAfter, now).UnixMilli()
			o.rep.Retrying++
		}
		o.updates = append(o.updates, u)
	}
	if pause > 0 {
		r.mu.Lock()
		r.paused[connID] = now.Add(pause)
		r.mu.Unlock()
	}
	return o
}

// retryAt is when a send that failed transiently goes again: the backoff
// delay, at least retryAfter, but no later than the last moment the
// platform's Check still accepts it, so a retry is never planned outside the
// window.
func (q *Queue) retryAt(p Platform, c *Conversion, attempts int, retryAfter time.Duration, now time.Time) time.Time {
	next := now.Add(max(q.backoff.Delay(attempts, q.rand()), retryAfter))
	cl := q.clients[p]
	if cl.Check(c, next).Skip != SkipOutsideWindow {
		return next
	}
	// The window closes between now (where Check passed) and next: find
	// its edge to the second.
	lo, hi := now, next
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		if cl.Check(c, mid).Skip == SkipOutsideWindow {
			hi = mid
		} else {
			lo = mid
		}
	}
	return lo
}

func outcomeName(o Outcome) string {
	switch o {
	case Sent:
		return "sent"
	case Permanent:
		return "permanent"
	}
	return "transient"
}
