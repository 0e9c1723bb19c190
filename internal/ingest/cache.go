package ingest

import (
	"sync"
	"time"
)

// CacheFor is how long a stage's tokens and limits, a site and an origin's
// listing are reused without a database read. A token that does not match is
// always checked against the database, so a new token works at once; a
// revoked one, a new limit or a removed origin takes effect within this time.
const CacheFor = time.Second

// maxCached bounds each cache; a full one is emptied rather than evicted
// from, since every entry expires within CacheFor anyway.
const maxCached = 100_000

// ttlCache is what ingestion reads from the database and reuses for
// CacheFor: stages, sites and origins each keep one.
type ttlCache[V any] struct {
	mu sync.Mutex
	m  map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v  V
	at time.Time
}

// get returns the value stored under k and whether it is still fresh at now.
// A stale value is returned too: a caller may still use what it knew.
func (c *ttlCache[V]) get(k string, now time.Time) (V, bool) {
	c.mu.Lock()
	e, hit := c.m[k]
	c.mu.Unlock()
	return e.v, hit && now.Sub(e.at) < CacheFor
}

func (c *ttlCache[V]) put(k string, v V, now time.Time) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[string]ttlEntry[V]{}
	}
	c.m[k] = ttlEntry[V]{v: v, at: now}
	c.mu.Unlock()
}
