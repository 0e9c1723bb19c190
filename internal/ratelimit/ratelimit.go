// Package ratelimit caps how fast each of many callers may go, in memory:
// one token bucket per key (a client's IP address), with the number of keys
// bounded so that a flood of new callers cannot exhaust memory.
package ratelimit

import (
	"sync"
	"time"
)

// Keyed is a token bucket per key: each holds up to burst tokens and gains
// rate tokens per second; a request takes one. It is safe for concurrent use.
type Keyed[K comparable] struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int

	mu      sync.Mutex
	buckets map[K]bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// New returns a limiter letting each key make perMinute (at least 1)
// requests a minute on average and burst at once, tracking at most maxKeys
// keys.
func New[K comparable](perMinute, burst, maxKeys int) *Keyed[K] {
	return &Keyed[K]{rate: float64(max(perMinute, 1)) / 60, burst: float64(burst), maxKeys: max(maxKeys, 2), buckets: map[K]bucket{}}
}

// Allow takes a token from key's bucket at now. When there is none it takes
// nothing and says how long until there will be one.
func (l *Keyed[K]) Allow(key K, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	switch {
	case !found:
		if len(l.buckets) >= l.maxKeys {
			l.evict(now)
		}
		b = bucket{tokens: l.burst, at: now}
	case now.After(b.at):
		b = bucket{tokens: l.refill(b, now), at: now}
	}
	if b.tokens < 1 {
		l.buckets[key] = b
		return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	l.buckets[key] = b
	return true, 0
}

func (l *Keyed[K]) refill(b bucket, now time.Time) float64 {
	elapsed := now.Sub(b.at).Seconds()
	if elapsed <= 0 {
		return b.tokens
	}
	return min(l.burst, b.tokens+elapsed*l.rate)
}

// evict makes room for new keys. A bucket that has refilled to the brim is
// no different from one never seen, so those go first at no loss. If that is
// not enough — more callers within one refill time than maxKeys — arbitrary
// buckets go too, down to half the bound, so the sweep's cost is shared by
// the many insertions before the next one. Those callers start afresh: the
// cap weakens under such a flood, memory stays bounded.
func (l *Keyed[K]) evict(now time.Time) {
	for k, b := range l.buckets {
		if l.refill(b, now) >= l.burst {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) <= l.maxKeys/2 {
			break
		}
		delete(l.buckets, k)
	}
}

// Len is how many keys are tracked.
func (l *Keyed[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
