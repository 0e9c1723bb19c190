package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/store"
)

// ingestAll ingests the batches from 16 goroutines released together,
// alternating between the stores as separate processes would. Sixteen keeps
// the PostgreSQL connections this test holds well inside max_connections when
// other test packages share the server.
func ingestAll(t *testing.T, stores []*store.Store, batches [][]*store.Item) {
	t.Helper()
	next := make(chan int, len(batches))
	for i := range batches {
		next <- i
	}
	close(next)
	start := make(chan struct{})
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			<-start
			for i := range next {
				errs[i] = stores[i%len(stores)].Ingest(context.Background(), batches[i])
			}
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
}

// storedRefs counts a stage's stored events by reference.
func storedRefs(t *testing.T, st *store.Store, stageID string) map[string]int {
	t.Helper()
	evs, err := st.ListEvents(context.Background(), store.EventFilter{StageID: stageID})
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]int{}
	for _, e := range evs {
		refs[e.Reference]++
	}
	return refs
}

// Many batches at once, each carrying the same (stage, reference) twice on
// each of two stages, plus a reference of its own: exactly one copy per stage
// is accepted and every other names it as the original. Batches span both
// stages in random order, so on PostgreSQL they also take two stage locks.
func TestIngestSameReferenceConcurrently(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		stores := []*store.Store{open(), open()}
		stages := newFunnel(t, stores[0], "Acme", "Main", "A", "B")
		const rounds, batches = 8, 24
		now := time.Now().UTC()
		for round := range rounds {
			ref := fmt.Sprintf("SAME-%d", round)
			var all [][]*store.Item
			for g := range batches {
				b := []*store.Item{
					item(stages[0], ref, now, 1000), item(stages[1], ref, now, 1000),
					item(stages[0], ref, now, 1000), item(stages[1], ref, now, 1000),
					item(stages[g%2], fmt.Sprintf("OWN-%d-%d", round, g), now, 1000),
				}
				rand.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
				all = append(all, b)
			}
			ingestAll(t, stores, all)
			first := map[string]string{} // stage → accepted event of ref
			for _, b := range all {
				for _, it := range b {
					if it.Event.Reference != ref {
						if it.Outcome != store.Accepted {
							t.Errorf("round %d: %s outcome %d, want accepted", round, it.Event.Reference, it.Outcome)
						}
						continue
					}
					if it.Outcome == store.Accepted {
						if prev, ok := first[it.Event.StageID]; ok {
							t.Fatalf("round %d: %s accepted twice on one stage: %s and %s", round, ref, prev, it.EventID)
						}
						first[it.Event.StageID] = it.EventID
					}
				}
			}
			if len(first) != 2 {
				t.Fatalf("round %d: %s accepted on %d stages, want both", round, ref, len(first))
			}
			for _, b := range all {
				for _, it := range b {
					if it.Event.Reference == ref && it.Outcome != store.Accepted && (it.Outcome != store.Duplicate || it.EventID != first[it.Event.StageID]) {
						t.Errorf("round %d: a copy of %s has outcome %d naming %q, want duplicate of %q", round, ref, it.Outcome, it.EventID, first[it.Event.StageID])
					}
				}
			}
		}
		for i, stage := range stages {
			refs := storedRefs(t, stores[1], stage)
			n := 0
			for ref, c := range refs {
				if c != 1 {
					t.Errorf("stage %d holds %s %d times", i, ref, c)
				}
				n += c
			}
			if want := rounds * (1 + batches/2); n != want {
				t.Errorf("stage %d holds %d events, want %d", i, n, want)
			}
		}
	})
}

// ingestUpToLimit offers n unique references to one stage with the given
// limit from n concurrent single-item batches and checks exactly limit are
// accepted, each leaving a different count 1..limit. It returns the accepted
// items.
func ingestUpToLimit(t *testing.T, stores []*store.Store, stage string, limit, n int, now time.Time) []*store.Item {
	t.Helper()
	var all [][]*store.Item
	for i := range n {
		all = append(all, []*store.Item{item(stage, fmt.Sprintf("U-%03d", i), now, limit)})
	}
	ingestAll(t, stores, all)
	var accepted []*store.Item
	used := map[int]bool{}
	for _, b := range all {
		it := b[0]
		switch it.Outcome {
		case store.Accepted:
			accepted = append(accepted, it)
			if it.Used < 1 || it.Used > limit || used[it.Used] {
				t.Errorf("%s accepted with count %d: counts must be distinct within 1..%d", it.Event.Reference, it.Used, limit)
			}
			used[it.Used] = true
		case store.Limited:
			if it.Used != limit {
				t.Errorf("%s limited with count %d, want %d", it.Event.Reference, it.Used, limit)
			}
		default:
			t.Errorf("%s: outcome %d", it.Event.Reference, it.Outcome)
		}
	}
	if len(accepted) != limit {
		t.Fatalf("%d concurrent unique events at limit %d: %d accepted, want exactly %d", n, limit, len(accepted), limit)
	}
	if refs := storedRefs(t, stores[0], stage); len(refs) != limit {
		t.Fatalf("stage holds %d references, want %d", len(refs), limit)
	}
	return accepted
}

// The hourly counter is exact under concurrent writers, and at the limit an
// accepted reference is still answered as a duplicate, not limited (D7).
func TestIngestLimitExact(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		stores := []*store.Store{open(), open()}
		stage := newFunnel(t, stores[0], "Acme", "Main", "Lead")[0]
		const limit = 25
		now := time.Now().UTC()
		accepted := ingestUpToLimit(t, stores, stage, limit, 80, now)
		retry := item(stage, accepted[0].Event.Reference, now, limit)
		if err := stores[1].Ingest(context.Background(), []*store.Item{retry}); err != nil {
			t.Fatal(err)
		}
		if retry.Outcome != store.Duplicate || retry.EventID != accepted[0].EventID || retry.Used != limit {
			t.Errorf("retry at the limit: outcome %d, event %q, count %d; want duplicate of %q at %d",
				retry.Outcome, retry.EventID, retry.Used, accepted[0].EventID, limit)
		}
	})
}

// PostgreSQL: the ingest transaction runs at READ COMMITTED even where the
// server's default is REPEATABLE READ, whose snapshot would predate the stage
// lock and let the counter over-accept (reliability.md §1.3, L2).
func TestIngestReadCommittedUnderRepeatableReadDefault(t *testing.T) {
	cfg := pruuvtest.Postgres(t)
	dsn := cfg.DatabaseURL + "&default_transaction_isolation=repeatable%20read"
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var def string
	if err := db.QueryRowContext(ctx, "SHOW default_transaction_isolation").Scan(&def); err != nil || def != "repeatable read" {
		t.Fatalf("default_transaction_isolation = %q, %v; the URL parameter did not take", def, err)
	}
	var stores []*store.Store
	for range 2 {
		st, err := store.Open(ctx, store.Options{DatabaseURL: dsn, Logger: pruuvtest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
	}
	// Record the isolation level of every transaction that inserts an event.
	for _, q := range []string{
		"CREATE TABLE ingest_isolation (level TEXT NOT NULL)",
		`CREATE FUNCTION note_isolation() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO ingest_isolation (level) VALUES (current_setting('transaction_isolation'));
			RETURN NEW;
		END $$`,
		"CREATE TRIGGER note_isolation BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION note_isolation()",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	stage := newFunnel(t, stores[0], "Acme", "Main", "Lead")[0]
	const limit = 20
	ingestUpToLimit(t, stores, stage, limit, 60, time.Now().UTC())
	levels := map[string]int{}
	rows, err := db.QueryContext(ctx, "SELECT level FROM ingest_isolation")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		levels[l]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(levels) != 1 || levels["read committed"] != limit {
		t.Errorf("isolation of the %d inserting transactions: %v, want all read committed", limit, levels)
	}
}
