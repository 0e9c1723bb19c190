package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// eachBackend runs the storage suite on SQLite and PostgreSQL alike.
func eachBackend(t *testing.T, fn func(t *testing.T, open func() *store.Store)) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			fn(t, func() *store.Store {
				st, err := store.Open(context.Background(), store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: pruuvtest.Logger(t)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			})
		})
	}
}

func tok(id string) store.StageToken {
	return store.StageToken{ID: id, Hash: []byte("hash-" + id + "-0123456789abcdef0123"), Sealed: "v1.x", Hint: "…" + id}
}

func newFunnel(t *testing.T, st *store.Store, client, name string, stages ...string) []string {
	t.Helper()
	var ns []store.NewStage
	var ids []string
	for _, s := range stages {
		id := token.NewID("stg")
		ns = append(ns, store.NewStage{ID: id, Name: s, Token: tok(token.NewID("tok"))})
		ids = append(ids, id)
	}
	if _, _, err := st.CreateFunnel(context.Background(), token.NewID("cli"), client, token.NewID("fun"), name, ns, time.Now()); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestMigrationsAndSecret(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		a := open()
		b := open() // a second open finds the schema current and changes nothing
		if a.SchemaVersion() < 1 || a.SchemaVersion() != b.SchemaVersion() {
			t.Fatalf("schema versions %d, %d", a.SchemaVersion(), b.SchemaVersion())
		}
		if err := a.CheckSecret(ctx, "one"); err != nil {
			t.Fatal(err)
		}
		if err := b.CheckSecret(ctx, "one"); err != nil {
			t.Fatal(err)
		}
		if err := b.CheckSecret(ctx, "two"); !errors.Is(err, store.ErrSecretMismatch) {
			t.Fatalf("other key: %v", err)
		}
	})
}

func TestSchemaAheadIsRefused(t *testing.T) {
	for _, bk := range pruuvtest.Backends() {
		t.Run(bk.Name, func(t *testing.T) {
			cfg := bk.Config(t)
			opt := store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir}
			st, err := store.Open(context.Background(), opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.ExecForTest(context.Background(), fmt.Sprintf("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'future.sql', 0)", st.SchemaVersion()+1)); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if _, err := store.Open(context.Background(), opt); err == nil {
				t.Fatal("opened a database whose schema is newer than the binary")
			}
		})
	}
}

func TestFunnelsAndStages(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		ids := newFunnel(t, st, "Acme", "Main", "Lead", "Qualified", "Won")
		newFunnel(t, st, "Acme", "Partners", "Lead") // same client, reused
		_, _, err := st.CreateFunnel(ctx, "cli_x", "Acme", "fun_x", "Main", nil, time.Now())
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate funnel name: %v", err)
		}
		all, err := st.ListStages(ctx)
		if err != nil || len(all) != 4 {
			t.Fatalf("ListStages = %d stages, %v", len(all), err)
		}
		got, err := st.GetStage(ctx, ids[1])
		if err != nil || got.Name != "Qualified" || got.Position != 2 || got.ClientName != "Acme" || got.FunnelName != "Main" || got.HourlyLimit != store.DefaultHourlyLimit {
			t.Fatalf("GetStage = %+v, %v", got, err)
		}
		if _, err := st.GetStage(ctx, "stg_missing"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing stage: %v", err)
		}
		if err := st.SetHourlyLimit(ctx, ids[1], 5); err != nil {
			t.Fatal(err)
		}
		if err := st.SetHourlyLimit(ctx, "stg_missing", 5); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("limit on missing stage: %v", err)
		}
		if got, _ := st.GetStage(ctx, ids[1]); got.HourlyLimit != 5 {
			t.Fatalf("limit = %d", got.HourlyLimit)
		}
	})
}

func TestTokenRotation(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		id := newFunnel(t, st, "Acme", "Main", "Lead")[0]
		now := time.Now()
		live := func(at time.Time) int {
			a, err := st.LookupStage(ctx, id, at)
			if err != nil {
				t.Fatal(err)
			}
			return len(a.TokenHashes)
		}
		if n := live(now); n != 1 {
			t.Fatalf("%d live tokens at start", n)
		}
		if err := st.RotateToken(ctx, id, tok("second"), now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := live(now); n != 2 {
			t.Fatalf("%d live tokens during overlap, want 2", n)
		}
		if n := live(now.Add(2 * time.Hour)); n != 1 {
			t.Fatalf("%d live tokens after overlap, want 1", n)
		}
		if err := st.RotateToken(ctx, id, tok("third"), now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := live(now.Add(time.Millisecond)); n != 2 {
			t.Fatalf("%d live tokens after second rotation, want 2 (never more)", n)
		}
		cur, err := st.CurrentToken(ctx, id)
		if err != nil || cur.ID != "third" {
			t.Fatalf("current token %q, %v", cur.ID, err)
		}
		if err := st.RotateToken(ctx, id, tok("fourth"), now, now); err != nil { // no overlap: revoke
			t.Fatal(err)
		}
		if n := live(now.Add(time.Millisecond)); n != 1 {
			t.Fatalf("%d live tokens after revoking rotation, want 1", n)
		}
		if err := st.RotateToken(ctx, "stg_missing", tok("x"), now, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rotate on missing stage: %v", err)
		}
	})
}

func item(stage, ref string, now time.Time, limit int) *store.Item {
	return &store.Item{
		Event:       event.Event{ID: token.NewEventID(now), StageID: stage, Source: event.SourceWebhook, ReceivedAt: now, Fields: event.Fields{Reference: ref}},
		HourlyLimit: limit,
		DedupSince:  now.Add(-time.Minute).UnixMilli(),
		HourStart:   now.Truncate(time.Hour).UnixMilli(),
	}
}

func TestIngestOutcomes(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		ids := newFunnel(t, st, "Acme", "Main", "Lead", "Won")
		now := time.Now().UTC()
		// One batch: two refs, a repeat of the first, then over the limit of 2,
		// and the same ref on another stage.
		items := []*store.Item{item(ids[0], "a", now, 2), item(ids[0], "b", now, 2), item(ids[0], "a", now, 2), item(ids[0], "c", now, 2), item(ids[1], "a", now, 2)}
		if err := st.Ingest(ctx, items); err != nil {
			t.Fatal(err)
		}
		want := []store.Outcome{store.Accepted, store.Accepted, store.Duplicate, store.Limited, store.Accepted}
		for i, it := range items {
			if it.Outcome != want[i] {
				t.Errorf("item %d (%s/%s): outcome %d, want %d", i, it.Event.StageID[:6], it.Event.Reference, it.Outcome, want[i])
			}
		}
		// Ingest sorts the batch by stage, so find items by content.
		var first, dup *store.Item
		for _, it := range items {
			if it.Event.StageID == ids[0] && it.Event.Reference == "a" {
				if it.Outcome == store.Accepted {
					first = it
				} else {
					dup = it
				}
			}
		}
		if first == nil || dup == nil || dup.EventID != first.EventID || dup.Used != 2 {
			t.Fatalf("duplicate should name the original and report use 2: %+v %+v", first, dup)
		}
		used, err := st.HourlyUse(ctx, ids[0], now.Truncate(time.Hour).UnixMilli())
		if err != nil || used != 2 {
			t.Fatalf("used = %d, %v", used, err)
		}
		evs, err := st.ListEvents(ctx, store.EventFilter{StageID: ids[0]})
		if err != nil || len(evs) != 2 {
			t.Fatalf("stored %d events, %v", len(evs), err)
		}
	})
}

func TestEventRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		id := newFunnel(t, st, "Acme", "Main", "Lead")[0]
		now := time.Now().UTC()
		body := `{"reference":"R-1","item_reference":"DEAL-9","utm_source":"google","utm_medium":"cpc","utm_campaign":"brand",
			"utm_content":"ad-42","utm_term":"shoes","gclid":"g1","wbraid":"w1","gbraid":"b1","ttclid":"t1","msclkid":"m1",
			"fbc":"fb.1.1700000000000.abc","fbp":"fb.1.1700000000000.123","click_timestamp":"2026-11-20T10:00:00.123+01:00",
			"revenue_value":1234.56,"currency":"eur","data_timestamp":"2026-11-21T09:30:00Z","gender":"female","age_range":"25-34",
			"location_country":"GB","location_region":"London","job_title":"CTO","company_size":"11-50","industry":"Retail",
			"client_ip_address":"2001:db8::1","client_user_agent":"Mozilla/5.0","event_source_url":"https://shop.example/thanks",
			"email":"Jane.Doe@example.com","phone":"+1 415 555 0123"}`
		f, err := event.Decode([]byte(body), now)
		if err != nil {
			t.Fatal(err)
		}
		it := item(id, "R-1", now, 10)
		it.Event.Fields = f
		if err := st.Ingest(ctx, []*store.Item{it}); err != nil {
			t.Fatal(err)
		}
		evs, err := st.ListEvents(ctx, store.EventFilter{StageID: id, Limit: 10})
		if err != nil || len(evs) != 1 {
			t.Fatalf("%d events, %v", len(evs), err)
		}
		got := evs[0]
		if got.ID != it.Event.ID || got.Source != event.SourceWebhook || !got.ReceivedAt.Equal(now.Truncate(time.Millisecond)) {
			t.Errorf("envelope %+v", got)
		}
		for _, fd := range event.Schema {
			if fd.Value(&f) == nil {
				t.Errorf("%s: the test body does not set it", fd.Name)
			}
			if g, w := fd.Value(&got.Fields), fd.Value(&f); g != w {
				t.Errorf("%s: stored %v, sent %v", fd.Name, g, w)
			}
		}
		if got.ClickTimestamp.Format(time.RFC3339Nano) != "2026-11-20T10:00:00.123+01:00" || got.RevenueMicros != 1_234_560_000 || got.Currency != "EUR" {
			t.Errorf("click %s revenue %d currency %s", got.ClickTimestamp, got.RevenueMicros, got.Currency)
		}
	})
}

func TestPruneRateBuckets(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		id := newFunnel(t, st, "Acme", "Main", "Lead")[0]
		hour := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
		for i, h := range []time.Time{hour.Add(-2 * time.Hour), hour.Add(-time.Hour), hour} {
			if err := st.Ingest(ctx, []*store.Item{item(id, fmt.Sprint("r", i), h, 10)}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := st.PruneRateBuckets(ctx, hour.Add(-time.Hour).UnixMilli())
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v; want the one counter older than an hour", n, err)
		}
		used, err := st.HourlyUse(ctx, id, hour.UnixMilli())
		if err != nil || used != 1 {
			t.Fatalf("current hour's counter: %d, %v", used, err)
		}
	})
}
