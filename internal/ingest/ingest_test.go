package ingest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func fields(ref string) event.Fields { return event.Fields{Reference: ref} }
func key(t *testing.T) secret.Key {
	k, err := secret.Parse(pruuvtest.SecretKey)
	must(t, err)
	return k
}
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	svc   *ingest.Service
	st    *store.Store
	clk   *clock
	stage string
	tok   string
}

func setup(t *testing.T, b pruuvtest.Backend, start time.Time) fixture {
	cfg := b.Config(t)
	st, err := store.Open(context.Background(), store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
	must(t, err)
	t.Cleanup(func() { st.Close() })
	k := key(t)
	tok := token.NewWebhook()
	stage := token.NewID("stg")
	_, _, err = st.CreateFunnel(context.Background(), token.NewID("cli"), "Acme", token.NewID("fun"), "Main",
		[]store.NewStage{{ID: stage, Name: "Lead", Token: store.StageToken{ID: token.NewID("tok"), Hash: k.Hash(tok), Sealed: k.Seal(tok, "x"), Hint: "h"}}}, start)
	must(t, err)
	clk := &clock{t: start}
	svc := ingest.New(ingest.Options{Store: st, Key: k, Now: clk.Now, Log: pruuvtest.Logger(t)})
	t.Cleanup(svc.Close)
	return fixture{svc: svc, st: st, clk: clk, stage: stage, tok: tok}
}

func TestDedupWindowEdge(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
			f := setup(t, b, start)
			ctx := context.Background()
			first, err := f.svc.Ingest(ctx, f.stage, 1000, event.SourceWebhook, fields("X"))
			must(t, err)
			if first.Outcome != store.Accepted {
				t.Fatalf("first: %v", first.Outcome)
			}
			f.clk.Set(start.Add(59_999 * time.Millisecond))
			r, err := f.svc.Ingest(ctx, f.stage, 1000, event.SourceWebhook, fields("X"))
			must(t, err)
			if r.Outcome != store.Duplicate || r.EventID != first.EventID {
				t.Fatalf("+59.999 s: %v %s, want duplicate of %s", r.Outcome, r.EventID, first.EventID)
			}
			f.clk.Set(start.Add(60 * time.Second))
			r, err = f.svc.Ingest(ctx, f.stage, 1000, event.SourceWebhook, fields("X"))
			must(t, err)
			if r.Outcome != store.Accepted || r.EventID == first.EventID {
				t.Fatalf("+60.000 s: %v, want a new event", r.Outcome)
			}
			// The window now runs from the second recorded event.
			f.clk.Set(start.Add(119 * time.Second))
			r, err = f.svc.Ingest(ctx, f.stage, 1000, event.SourceWebhook, fields("X"))
			must(t, err)
			if r.Outcome != store.Duplicate {
				t.Fatalf("+119 s: %v, want duplicate of the second event", r.Outcome)
			}
		})
	}
}

func TestHourlyWindow(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
			f := setup(t, b, start)
			ctx := context.Background()
			refs := []string{"a", "b", "c"}
			for i, ref := range refs {
				f.clk.Set(start.Add(time.Duration(i) * 10 * time.Minute))
				r, err := f.svc.Ingest(ctx, f.stage, 3, event.SourceWebhook, fields(ref))
				must(t, err)
				if r.Outcome != store.Accepted || r.Used != i+1 {
					t.Fatalf("%s: %v used %d", ref, r.Outcome, r.Used)
				}
			}
			f.clk.Set(start.Add(59 * time.Minute))
			r, err := f.svc.Ingest(ctx, f.stage, 3, event.SourceWebhook, fields("d"))
			must(t, err)
			if r.Outcome != store.Limited || !r.Reset.Equal(start.Add(time.Hour)) || r.Used != 3 {
				t.Fatalf("at 59 min: %+v, want limited until the hour", r)
			}
			f.clk.Set(start.Add(time.Hour + time.Millisecond))
			r, err = f.svc.Ingest(ctx, f.stage, 3, event.SourceWebhook, fields("d"))
			must(t, err)
			if r.Outcome != store.Accepted || r.Used != 1 {
				t.Fatalf("next hour: %+v, want accepted as the first of the hour", r)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			start := time.Now()
			f := setup(t, b, start)
			ctx := context.Background()
			if _, err := f.svc.Authorize(ctx, f.stage, f.tok); err != nil {
				t.Fatalf("valid token: %v", err)
			}
			if _, err := f.svc.Authorize(ctx, "stg_nope", f.tok); !errors.Is(err, ingest.ErrStageNotFound) {
				t.Fatalf("unknown stage: %v", err)
			}
			for name, bad := range map[string]string{"empty": "", "garbage": "hello", "well-formed but unknown": token.NewWebhook(),
				"bad checksum": f.tok[:len(f.tok)-1] + "0"} {
				if _, err := f.svc.Authorize(ctx, f.stage, bad); !errors.Is(err, ingest.ErrUnauthorized) {
					t.Errorf("%s: %v", name, err)
				}
			}
			k := key(t)
			next := token.NewWebhook()
			must(t, f.st.RotateToken(ctx, f.stage, store.StageToken{ID: token.NewID("tok"), Hash: k.Hash(next), Sealed: "v1.x", Hint: "h"}, start, start.Add(time.Hour)))
			for _, tk := range []string{f.tok, next} {
				if _, err := f.svc.Authorize(ctx, f.stage, tk); err != nil {
					t.Fatalf("during overlap: %v", err)
				}
			}
			f.clk.Set(start.Add(time.Hour + time.Second))
			if _, err := f.svc.Authorize(ctx, f.stage, f.tok); !errors.Is(err, ingest.ErrUnauthorized) {
				t.Fatalf("old token after overlap: %v", err)
			}
			if _, err := f.svc.Authorize(ctx, f.stage, next); err != nil {
				t.Fatalf("new token after overlap: %v", err)
			}
			// Revoked at once (no overlap): refused once the cached copy of the
			// stage's tokens is CacheFor old.
			third := token.NewWebhook()
			now := f.clk.Now()
			must(t, f.st.RotateToken(ctx, f.stage, store.StageToken{ID: token.NewID("tok"), Hash: k.Hash(third), Sealed: "v1.x", Hint: "h"}, now, now))
			if _, err := f.svc.Authorize(ctx, f.stage, third); err != nil {
				t.Fatalf("newest token at once: %v", err)
			}
			f.clk.Set(now.Add(ingest.CacheFor))
			if _, err := f.svc.Authorize(ctx, f.stage, next); !errors.Is(err, ingest.ErrUnauthorized) {
				t.Fatalf("revoked token %s after revocation: %v", ingest.CacheFor, err)
			}
		})
	}
}

func TestCloseRefusesNewWork(t *testing.T) {
	f := setup(t, pruuvtest.Backends()[0], time.Now())
	f.svc.Close()
	if _, err := f.svc.Ingest(context.Background(), f.stage, 10, event.SourceWebhook, fields("z")); !errors.Is(err, ingest.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// IdleFor tells the planner whether events are arriving: long before any,
// short right after one (in real time, whatever the service's clock says).
func TestIdleFor(t *testing.T) {
	f := setup(t, pruuvtest.Backends()[0], time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	if d := f.svc.IdleFor(); d < time.Hour {
		t.Fatalf("idle for %v before any event", d)
	}
	_, err := f.svc.Ingest(context.Background(), f.stage, 1000, event.SourceWebhook, fields("r"))
	must(t, err)
	if d := f.svc.IdleFor(); d > time.Minute {
		t.Fatalf("idle for %v just after an event", d)
	}
}
