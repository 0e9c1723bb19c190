// Package fakekit is the scaffolding the platform fakes (metafake,
// tiktokfake, googlefake, microsoftfake) share: a queue of failures a test
// tells a fake to answer with, and a log of what a fake received. What a fake
// checks and how it answers stays in the fake.
package fakekit

import "sync"

// Failures is a queue of injected failures, safe for concurrent use. The zero
// value is an empty queue.
type Failures[K comparable] struct {
	mu sync.Mutex
	q  []K
}

// Add queues k for the next n requests.
func (f *Failures[K]) Add(n int, k K) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.q = append(f.q, k)
	}
}

// Next takes the failure for this request: the zero K when none is queued.
func (f *Failures[K]) Next() K {
	f.mu.Lock()
	defer f.mu.Unlock()
	var k K
	if len(f.q) > 0 {
		k, f.q = f.q[0], f.q[1:]
	}
	return k
}

// Log records what a fake received, in order, safe for concurrent use. The
// zero value is an empty log.
type Log[T any] struct {
	mu    sync.Mutex
	items []T
}

// Add records v.
func (l *Log[T]) Add(v T) {
	l.mu.Lock()
	l.items = append(l.items, v)
	l.mu.Unlock()
}

// All returns a copy of everything recorded so far.
func (l *Log[T]) All() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.items...)
}
