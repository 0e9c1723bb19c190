package conversion_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/store"
)

// Two runners on two store handles (as two processes would be), claiming a
// few sends at a time, race over many sends: every conversion is sent exactly
// once. On PostgreSQL the claims run truly at once (SKIP LOCKED); on SQLite
// the single writer orders them.
func TestRunnersNeverSendTwice(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.connect(conversion.Meta)
		e.connect(conversion.Google)
		e.mapStage(0, conversion.Meta, "Lead")
		e.mapStage(0, conversion.Google, "customers/1/conversionActions/2")
		var fields []event.Fields
		for range 150 {
			fields = append(fields, event.Fields{FBC: "fb.1.1.x", GCLID: "g"})
		}
		ids := e.ingest(0, fields...)
		// A request in flight: overlap with the other runner is likely.
		var inFlight, overlapped atomic.Int32
		for _, p := range []conversion.Platform{conversion.Meta, conversion.Google} {
			e.cls[p].SetLimits(3, 0)
			e.cls[p].OnSend(func(ctx context.Context, batch []conversion.Conversion) {
				if inFlight.Add(1) > 1 {
					overlapped.Add(1)
				}
				time.Sleep(time.Millisecond)
				inFlight.Add(-1)
			})
		}
		runners := []*conversion.Queue{
			e.queueOn(e.open(), func(o *conversion.Options) { o.Claim, o.Owner = 7, "runner-a" }),
			e.queueOn(e.open(), func(o *conversion.Options) { o.Claim, o.Owner = 7, "runner-b" }),
		}
		// Plan first, so both runners race over the same due sends.
		if n, err := runners[0].Plan(context.Background()); err != nil || n != len(ids) {
			t.Fatalf("plan = %d, %v", n, err)
		}
		var wg sync.WaitGroup
		reps := make([]conversion.Report, len(runners))
		errs := make([]error, len(runners))
		startGate := make(chan struct{})
		for i, q := range runners {
			wg.Go(func() {
				<-startGate
				reps[i], errs[i] = q.Run(context.Background(), conversion.RunOptions{Force: true})
			})
		}
		close(startGate)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("runner %d: %v", i, err)
			}
		}
		for _, p := range []conversion.Platform{conversion.Meta, conversion.Google} {
			counts := e.cls[p].Counts()
			for _, id := range ids {
				if counts[id] != 1 {
					t.Errorf("%s: event %s sent %d times", p, id, counts[id])
				}
			}
			if len(counts) != len(ids) {
				t.Errorf("%s: %d events sent, want %d", p, len(counts), len(ids))
			}
		}
		if total := reps[0].Sent + reps[1].Sent; total != 2*len(ids) {
			t.Errorf("runners report %d + %d sent, want %d", reps[0].Sent, reps[1].Sent, 2*len(ids))
		}
		for k, r := range e.sends() {
			if r.Status != "sent" || r.Attempts != 1 {
				t.Errorf("%v: %s after %d attempts", k, r.Status, r.Attempts)
			}
		}
		t.Logf("runner a sent %d, runner b sent %d; requests overlapped %d times", reps[0].Sent, reps[1].Sent, overlapped.Load())
	})
}

// A runner that claimed sends and died mid-request leaves its lease to run
// out; then another runner sends exactly those again, with the same event id
// (the platform's dedup key), and nothing else. The dead runner's late write
// finds its lease gone and changes nothing.
func TestExpiredLeaseIsResent(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.connect(conversion.Meta)
		e.mapStage(0, conversion.Meta, "Lead")
		meta := e.cls[conversion.Meta]
		done := e.ingest(0, event.Fields{FBC: "fb.1.1.done"})
		q := e.queue(func(o *conversion.Options) { o.Owner = "survivor" })
		e.run(q, true)
		crashed := e.ingest(0, event.Fields{FBC: "fb.1.1.a"}, event.Fields{FBC: "fb.1.1.b"})
		if _, err := q.Plan(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.MakeDue(ctx, e.clock.Now(), ""); err != nil {
			t.Fatal(err)
		}
		// The doomed runner claims both and gets as far as the request.
		now := e.clock.Now()
		claimed, err := e.open().ClaimSends(ctx, "doomed/1", now, now.Add(conversion.DefaultLease), 100, "")
		if err != nil || len(claimed) != 2 {
			t.Fatalf("claim = %d, %v", len(claimed), err)
		}
		var convs []conversion.Conversion
		for _, c := range claimed {
			convs = append(convs, conversion.Conversion{EventID: c.EventID, EventName: c.EventName})
		}
		meta.Send(ctx, conversion.Connection{}, convs)

		// While the lease holds, nobody else sends them.
		e.clock.Advance(conversion.DefaultLease - time.Second)
		if rep := e.run(q, true); rep.Requests != 0 {
			t.Fatalf("leased sends were taken: %+v", rep)
		}
		e.clock.Advance(2 * time.Second)
		rep := e.run(q, true)
		if rep.Sent != 2 || rep.Requests != 1 {
			t.Fatalf("after lease expiry: %+v", rep)
		}
		for _, id := range crashed {
			if meta.Count(id) != 2 {
				t.Errorf("event %s sent %d times, want 2 (once by the dead runner, once after its lease ran out)", id, meta.Count(id))
			}
		}
		if meta.Count(done[0]) != 1 {
			t.Errorf("an already sent event was sent again")
		}
		// Both requests for an event carried the same event id.
		reqs := meta.Requests()
		last := reqs[len(reqs)-1]
		seen := map[string]bool{}
		for _, c := range reqs[len(reqs)-2].Batch {
			seen[c.EventID] = true
		}
		for _, c := range last.Batch {
			if !seen[c.EventID] {
				t.Errorf("the re-send carried %s, not an id of the first request", c.EventID)
			}
		}
		// The dead runner's result, arriving late, is refused.
		upd := []store.SendUpdate{{EventID: crashed[0], Platform: "meta", Status: "failed", Reason: "rejected", Attempts: 1}}
		lost, err := e.st.FinishSends(ctx, "doomed/1", e.clock.Now(), upd, nil, nil)
		if err != nil || len(lost) != 1 {
			t.Fatalf("late write: lost %v, %v", lost, err)
		}
		e.expect(e.sends(), sendKey{crashed[0], conversion.Meta}, want{conversion.StatusSent, "", 1})
	})
}

// A lease shorter than the 2-minute margin (PRUUV_CONVERSIONS_LEASE in tests)
// still lets requests start: the margin shrinks to a fifth of the lease.
func TestShortLeaseSends(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.connect(conversion.Meta)
		e.mapStage(0, conversion.Meta, "Lead")
		ids := e.ingest(0, event.Fields{FBC: "fb.1.1.short"})
		q := e.queue(func(o *conversion.Options) { o.Lease = 5 * time.Second })
		// Were every claim handed back, the run would claim again for ever.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if rep, err := q.Run(ctx, conversion.RunOptions{Force: true}); err != nil || rep.Sent != 1 || rep.Requests != 1 || rep.Deferred != 0 {
			t.Fatalf("with a 5 s lease: %+v, %v", rep, err)
		}
		e.expect(e.sends(), sendKey{ids[0], conversion.Meta}, want{conversion.StatusSent, "", 1})
	})
}

// A request never outlives its lease: the client gets a context whose deadline
// comes before the lease ends, with room left to write the results, so no other
// runner can claim the sends while it is still running.
func TestSendEndsWithinLease(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.connect(conversion.Meta)
		e.mapStage(0, conversion.Meta, "Lead")
		e.ingest(0, event.Fields{FBC: "fb.1.1.x"})
		const lease = 5 * time.Minute
		var left time.Duration
		var hasDeadline bool
		e.cls[conversion.Meta].OnSend(func(ctx context.Context, _ []conversion.Conversion) {
			var d time.Time
			d, hasDeadline = ctx.Deadline()
			left = time.Until(d)
		})
		q := e.queueOn(e.open(), func(o *conversion.Options) { o.Lease = lease })
		if _, err := q.Run(context.Background(), conversion.RunOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		// The margin for a 5-minute lease is a fifth, 1 minute; the request
		// gets the lease less half of that.
		if !hasDeadline || left > lease-30*time.Second || left < lease-2*time.Minute {
			t.Errorf("send context: deadline %v, %v left; want about %v", hasDeadline, left, lease-30*time.Second)
		}
	})
}
