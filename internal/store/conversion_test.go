package store_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/store"
)

// Accepted events get an outbox row in their own transaction; duplicates
// and events over the limit get none.
func TestIngestWritesOutboxForAcceptedOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		ids := newFunnel(t, st, "Acme", "Main", "Lead")
		now := time.Now().UTC()
		items := []*store.Item{item(ids[0], "a", now, 2), item(ids[0], "a", now, 2), item(ids[0], "b", now, 2), item(ids[0], "c", now, 2)}
		if err := st.Ingest(ctx, items); err != nil {
			t.Fatal(err)
		}
		// A later batch: a duplicate of a, and c still over the limit.
		again := []*store.Item{item(ids[0], "a", now, 2), item(ids[0], "c", now, 2)}
		if err := st.Ingest(ctx, again); err != nil {
			t.Fatal(err)
		}
		if n, err := st.OutboxDepth(ctx); err != nil || n != 2 {
			t.Fatalf("outbox depth %d (%v), want 2", n, err)
		}
		evs, err := st.PeekOutbox(ctx, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Event.ID)
		}
		want := []string{items[0].Event.ID, items[2].Event.ID}
		sort.Strings(want)
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("outbox holds %v, want %v", got, want)
		}
		if evs[0].ClientID == "" || evs[0].Event.Reference == "" {
			t.Fatalf("outbox event loaded without client or fields: %+v", evs[0])
		}
	})
}
