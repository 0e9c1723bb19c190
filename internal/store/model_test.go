package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/store"
)

// model is the contract in its plainest form: events considered one at a time;
// a duplicate is a reference recorded at the stage less than 60 s earlier,
// whichever quota it came through; a new event is accepted while its quota's
// UTC hour has room (the webhook's and the Pixel's quotas of a stage are
// counted apart).
type model struct {
	last  map[[2]string]int64 // stage, reference → received_at of the newest recorded event
	count map[string]int      // bucket|hour → accepted
}

func (m *model) offer(stage, bucket, ref string, at time.Time, limit int) store.Outcome {
	k := [2]string{stage, ref}
	if t, ok := m.last[k]; ok && t > at.Add(-time.Minute).UnixMilli() {
		return store.Duplicate
	}
	h := fmt.Sprint(bucket, "|", at.Truncate(time.Hour).UnixMilli())
	if m.count[h] >= limit {
		return store.Limited
	}
	m.count[h]++
	m.last[k] = at.UnixMilli()
	return store.Accepted
}

// TestIngestMatchesModel offers random batches — repeated references, several
// stages, each with its own and a Pixel quota, limits that differ per quota, a
// clock that crawls, jumps past the dedup window and crosses hour boundaries
// inside a batch — and requires the batched, set-at-a-time Ingest to give
// exactly the model's answers.
func TestIngestMatchesModel(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		stages := newFunnel(t, st, "Acme", "Model", "A", "B", "C")
		// The default bucket ("") is the stage's own; the Pixel's is kept apart.
		limits := map[string]int{stages[0]: 3, stages[1]: 7, stages[2]: 1000,
			store.PixelBucket(stages[0]): 2, store.PixelBucket(stages[1]): 1000, store.PixelBucket(stages[2]): 4}
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		rng := rand.New(rand.NewPCG(seed, 1))
		m := &model{last: map[[2]string]int64{}, count: map[string]int{}}
		now := time.Date(2026, 11, 26, 9, 58, 0, 0, time.UTC)
		stored := 0
		for round := range 150 {
			n := 1 + rng.IntN(12)
			items := make([]*store.Item, n)
			want := make([]store.Outcome, n)
			for i := range items {
				switch r := rng.IntN(10); {
				case r < 5:
					now = now.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
				case r < 6:
					now = now.Add(time.Duration(55+rng.IntN(10)) * time.Second) // around the window's edge
				}
				stage := stages[rng.IntN(len(stages))]
				ref := fmt.Sprint("r", rng.IntN(6))
				bucket := stage
				it := item(stage, ref, now, limits[bucket])
				if rng.IntN(2) == 0 {
					bucket = store.PixelBucket(stage)
					it = item(stage, ref, now, limits[bucket])
					it.Bucket = bucket
				}
				items[i] = it
				want[i] = m.offer(stage, bucket, ref, now, limits[bucket])
				if want[i] == store.Accepted {
					stored++
				}
			}
			if err := st.Ingest(ctx, items); err != nil {
				t.Fatal(err)
			}
			for i, it := range items {
				if it.Outcome != want[i] {
					t.Fatalf("round %d item %d (%s %q %s at %s): outcome %d, model says %d", round, i,
						it.Event.StageID[:8], it.Bucket, it.Event.Reference, it.Event.ReceivedAt.Format("15:04:05.000"), it.Outcome, want[i])
				}
			}
		}
		evs, err := st.ListEvents(ctx, store.EventFilter{Limit: 100000})
		if err != nil || len(evs) != stored {
			t.Fatalf("stored %d events, model accepted %d (%v)", len(evs), stored, err)
		}
	})
}
