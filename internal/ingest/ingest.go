// Package ingest records funnel events: it authenticates a stage's webhook
// token and commits events in small group-commit batches, applying the 60 s
// dedup window and the stage's hourly limit inside the same transaction.
package ingest

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// DedupWindow is how long after a recorded event the same reference at the
// same stage is answered as a duplicate.
const DedupWindow = 60 * time.Second

// Errors returned before an event is decoded.
var (
	ErrStageNotFound = errors.New("stage not found")
	ErrUnauthorized  = errors.New("unauthorized")
	ErrClosed        = errors.New("ingest: service is shut down")
)

// Result is the answer to one ingested event.
type Result struct {
	Outcome store.Outcome
	EventID string // the new event, or the original of a duplicate
	Used    int    // accepted events in the current hour
	Reset   time.Time
}

// Options configures a Service.
type Options struct {
	Store *store.Store
	Key   secret.Key
	Now   func() time.Time // defaults to time.Now
	Log   *slog.Logger
	// Writers is how many batches commit at once: 1 on SQLite, which has one
	// writer anyway; several on PostgreSQL, where commits overlap.
	Writers  int
	MaxBatch int
}

// Service authenticates and records events.
type Service struct {
	store    *store.Store
	key      secret.Key
	now      func() time.Time
	log      *slog.Logger
	maxBatch int

	stages  ttlCache[store.StageAuth]
	sites   ttlCache[store.SiteAuth] // the Pixel's site keys (site.go)
	origins ttlCache[bool]           // whether any site lists an origin (site.go)

	last atomic.Int64 // when Ingest was last called, Unix ns: see IdleFor

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	queue  chan *request
	wg     sync.WaitGroup
	stop   chan struct{} // ends the pruner
}

type request struct {
	item store.Item
	err  error
	done chan struct{}
}

// New starts a Service's writers. Close stops them.
func New(opt Options) *Service {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Writers < 1 {
		opt.Writers = 1
	}
	if opt.MaxBatch < 1 {
		opt.MaxBatch = 256
	}
	s := &Service{store: opt.Store, key: opt.Key, now: opt.Now, log: opt.Log, maxBatch: opt.MaxBatch,
		queue: make(chan *request, opt.MaxBatch*opt.Writers), stop: make(chan struct{})}
	for range opt.Writers {
		s.wg.Add(1)
		go s.writer()
	}
	s.wg.Add(1)
	go s.pruner(PruneEvery)
	return s
}

// PruneEvery is how often counters of past hours are deleted.
const PruneEvery = 10 * time.Minute

func (s *Service) pruner(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			before := hourStart(s.now()).Add(-time.Hour).UnixMilli()
			if n, err := s.store.PruneRateBuckets(context.Background(), before); err != nil {
				s.log.Warn("pruning hourly counters failed", "err", err)
			} else if n > 0 {
				s.log.Debug("pruned hourly counters", "rows", n)
			}
		}
	}
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// IdleFor is how long it has been since an event was last offered. Work that
// shares the database writer (the conversion planner) backs off while events
// are arriving.
func (s *Service) IdleFor() time.Duration {
	return time.Duration(time.Now().UnixNano() - s.last.Load())
}

// Close lets queued events commit, then stops the writers. Call it after the
// HTTP server has stopped taking requests.
func (s *Service) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func hourStart(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// CacheFor is how long a stage's tokens and limit are reused without a
// database read. A token that does not match is always checked against the
// database, so a new token works at once; a revoked one, or a new limit,
// takes effect within this time.
const CacheFor = time.Second

const maxCached = 100_000

// ttlCache keeps values for CacheFor; it is emptied when it holds maxCached.
type ttlCache[V any] struct {
	mu sync.Mutex
	m  map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v  V
	at time.Time
}

// get returns key's value if it was put less than CacheFor before now.
func (c *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	c.mu.Lock()
	e, hit := c.m[key]
	c.mu.Unlock()
	if !hit || now.Sub(e.at) >= CacheFor {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V, now time.Time) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[string]ttlEntry[V]{}
	}
	c.m[key] = ttlEntry[V]{v: v, at: now}
	c.mu.Unlock()
}

// Authorize finds the stage and checks the bearer token against its live
// tokens. It returns ErrStageNotFound or ErrUnauthorized.
func (s *Service) Authorize(ctx context.Context, stageID, bearer string) (store.StageAuth, error) {
	now := s.now()
	auth, cached := s.stages.get(stageID, now)
	if !cached {
		var err error
		if auth, err = s.lookup(ctx, stageID, now); err != nil {
			return auth, err
		}
	}
	if !token.IsWebhook(bearer) {
		return auth, ErrUnauthorized
	}
	h := s.key.Hash(bearer)
	if cached && !matches(h, auth.TokenHashes) {
		// Perhaps a token rotated in since the cache was filled: ask the database.
		var err error
		if auth, err = s.lookup(ctx, stageID, now); err != nil {
			return auth, err
		}
	}
	if !matches(h, auth.TokenHashes) {
		return auth, ErrUnauthorized
	}
	return auth, nil
}

func (s *Service) lookup(ctx context.Context, stageID string, now time.Time) (store.StageAuth, error) {
	auth, err := s.store.LookupStage(ctx, stageID, now)
	if errors.Is(err, store.ErrNotFound) {
		return auth, ErrStageNotFound
	}
	if err != nil {
		return auth, err
	}
	s.stages.put(stageID, auth, now)
	return auth, nil
}

func matches(h []byte, hashes [][]byte) bool {
	ok := 0
	for _, want := range hashes {
		ok |= subtle.ConstantTimeCompare(h, want) // equal-length digests: constant time
	}
	return ok == 1
}

// HourlyUse reports how much of the stage's current hour is used, for the
// rate-limit headers of answers that store nothing.
func (s *Service) HourlyUse(ctx context.Context, stageID string) (used int, reset time.Time, err error) {
	now := s.now()
	hour := hourStart(now)
	used, err = s.store.HourlyUse(ctx, stageID, hour.UnixMilli())
	return used, hour.Add(time.Hour), err
}

// Ingest records f at the stage and reports whether it was accepted, a
// duplicate or over the limit. A nil error with Accepted means committed.
// Events from the Pixel count against the stage's Pixel quota, the rest
// against its own; duplicates are found across both.
func (s *Service) Ingest(ctx context.Context, stageID string, limit int, source event.Source, f event.Fields) (Result, error) {
	s.last.Store(time.Now().UnixNano())
	now := s.now()
	hour := hourStart(now)
	r := &request{done: make(chan struct{}), item: store.Item{
		Event:       event.Event{ID: token.NewEventID(now), StageID: stageID, Source: source, ReceivedAt: now, Fields: f},
		HourlyLimit: limit,
		DedupSince:  now.Add(-DedupWindow).UnixMilli(),
		HourStart:   hour.UnixMilli(),
		Bucket:      bucket(stageID, source),
	}}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return Result{}, ErrClosed
	}
	select {
	case s.queue <- r:
	case <-ctx.Done():
		s.mu.RUnlock()
		return Result{}, ctx.Err()
	}
	s.mu.RUnlock()
	<-r.done // once queued the event may commit: wait for the truth, whatever ctx says
	if r.err != nil {
		return Result{}, r.err
	}
	return Result{Outcome: r.item.Outcome, EventID: r.item.EventID, Used: r.item.Used, Reset: hour.Add(time.Hour)}, nil
}

func (s *Service) writer() {
	defer s.wg.Done()
	batch := make([]*request, 0, s.maxBatch)
	items := make([]*store.Item, 0, s.maxBatch)
	for first := range s.queue {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		items = items[:0]
		for _, r := range batch {
			items = append(items, &r.item)
		}
		// A batch is committed whole or not at all; it is not cancelled when one
		// client goes away, since the others still wait for their answer.
		err := s.store.Ingest(context.Background(), items)
		if err != nil {
			err = fmt.Errorf("ingest batch of %d: %w", len(batch), err)
			s.log.Error("ingest failed", "err", err, "batch", len(batch))
		}
		for _, r := range batch {
			r.err = err
			close(r.done)
		}
	}
}
