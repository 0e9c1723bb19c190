package ratelimit

import (
	"testing"
	"time"
)

func TestBurstThenRate(t *testing.T) {
	l := New[string](60, 3, 100) // one a second, three at once
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		if ok, _ := l.Allow("a", t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a", t0)
	if ok || wait != time.Second {
		t.Fatalf("fourth at once: %v, wait %s; want refused for 1s", ok, wait)
	}
	if ok, _ := l.Allow("b", t0); !ok {
		t.Fatal("another key shares the first one's bucket")
	}
	if ok, wait := l.Allow("a", t0.Add(400*time.Millisecond)); ok || wait != 600*time.Millisecond {
		t.Fatalf("after 0.4 s: %v, wait %s; want refused for 0.6s", ok, wait)
	}
	if ok, _ := l.Allow("a", t0.Add(time.Second)); !ok {
		t.Fatal("a token a second: refused after one second")
	}
	if ok, _ := l.Allow("a", t0.Add(time.Second)); ok {
		t.Fatal("took a second token that had not come")
	}
	// A long pause refills to the burst, not beyond.
	t1 := t0.Add(time.Hour)
	n := 0
	for {
		if ok, _ := l.Allow("a", t1); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("after an hour %d at once, want the burst of 3", n)
	}
	// A clock that steps back does not mint tokens.
	if ok, _ := l.Allow("a", t1.Add(-time.Minute)); ok {
		t.Fatal("a step back in time refilled the bucket")
	}
}

func TestBoundedKeys(t *testing.T) {
	l := New[int](60, 2, 10)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	// Key 0 is spent; keys 1..9 used once each.
	l.Allow(0, t0)
	l.Allow(0, t0)
	for k := 1; k < 10; k++ {
		l.Allow(k, t0)
	}
	if l.Len() != 10 {
		t.Fatalf("%d keys", l.Len())
	}
	// Two seconds on, keys 1..9 are full again (forgettable at no loss), key 0
	// is not: a new key evicts the full ones and keeps key 0's state.
	t1 := t0.Add(1500 * time.Millisecond)
	if ok, _ := l.Allow(10, t1); !ok {
		t.Fatal("new key refused")
	}
	if l.Len() != 2 {
		t.Fatalf("%d keys after eviction, want key 0 and the new one", l.Len())
	}
	if ok, _ := l.Allow(0, t1); !ok {
		t.Fatal("key 0 should have 1.5 tokens")
	}
	if ok, _ := l.Allow(0, t1); ok {
		t.Fatal("key 0 was forgotten: its spent bucket started afresh")
	}
	// A flood of keys that never refill stays within the bound.
	for k := 100; k < 1000; k++ {
		l.Allow(k, t1)
		if l.Len() > 10 {
			t.Fatalf("%d keys tracked, bound 10", l.Len())
		}
	}
}
