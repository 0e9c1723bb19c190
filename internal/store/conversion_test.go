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

// Paging ListSends with After visits every send once, in the order of one
// unpaged listing, ties on the change time included.
func TestListSendsPages(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		ids := newFunnel(t, st, "Acme", "Main", "Lead")
		now := time.Now().UTC()
		var items []*store.Item
		for _, ref := range []string{"a", "b", "c"} {
			items = append(items, item(ids[0], ref, now, 100))
		}
		if err := st.Ingest(ctx, items); err != nil {
			t.Fatal(err)
		}
		// Every send planned in one transaction: all share one change time.
		_, err := st.PlanOutbox(ctx, 100, now, func(evs []store.OutboxEvent) []store.PlannedSend {
			var out []store.PlannedSend
			for _, e := range evs {
				for _, p := range []string{"google", "meta"} {
					out = append(out, store.PlannedSend{EventID: e.Event.ID, Platform: p, ClientID: e.ClientID, StageID: e.Event.StageID,
						Status: "skipped", Reason: "no_mapping"})
				}
			}
			return out
		})
		if err != nil {
			t.Fatal(err)
		}
		all, err := st.ListSends(ctx, store.SendFilter{})
		if err != nil || len(all) != 6 {
			t.Fatalf("all sends: %d %v", len(all), err)
		}
		var paged []store.SendRow
		f := store.SendFilter{Limit: 4}
		for range 5 {
			page, err := st.ListSends(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, page...)
			if len(page) < f.Limit {
				break
			}
			c, err := store.ParseSendCursor(store.CursorOf(page[len(page)-1]).String())
			if err != nil {
				t.Fatal(err)
			}
			f.After = &c
		}
		if len(paged) != len(all) {
			t.Fatalf("pages hold %d sends, want %d", len(paged), len(all))
		}
		for i := range all {
			if paged[i].EventID != all[i].EventID || paged[i].Platform != all[i].Platform {
				t.Fatalf("send %d: paged %s/%s, listed %s/%s", i, paged[i].EventID, paged[i].Platform, all[i].EventID, all[i].Platform)
			}
		}
		for _, bad := range []string{"", "x", "1.2", "abc.e.p"} {
			if _, err := store.ParseSendCursor(bad); err == nil {
				t.Errorf("cursor %q parsed", bad)
			}
		}
	})
}
