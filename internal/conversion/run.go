package conversion

import (
	"context"
	"sort"
	"time"

	"github.com/pruuv/pruuv/internal/store"
)

// Loop runs the queue until ctx is done: every poll it plans the outbox and
// sends whatever is due. Errors are logged and the next round tries again.
func (q *Queue) Loop(ctx context.Context, poll time.Duration) {
	q.log.Info("conversion queue running", "schedule", q.schedule.String(), "poll", poll.String(), "lease_owner", q.owner)
	for {
		rep, err := q.Run(ctx, RunOptions{Paced: true})
		switch {
		case err != nil && ctx.Err() == nil:
			q.log.Error("conversion run failed", "err", err)
		case rep != (Report{}):
			q.log.Info("conversion run", "planned", rep.Planned, "requests", rep.Requests, "sent", rep.Sent, "retrying", rep.Retrying,
				"failed", rep.Failed, "skipped", rep.Skipped, "deferred", rep.Deferred)
		}
		if q.clock.Sleep(ctx, poll) != nil {
			return
		}
	}
}

// Preview is what an on-demand run would do with one send.
type Preview struct {
	EventID   string `json:"event_id"`
	Platform  string `json:"platform"`
	ClientID  string `json:"client_id"`
	StageID   string `json:"stage_id"`
	EventName string `json:"event_name"`
	// Would is send, skip, fail (out of its window after attempts) or defer
	// (too early for the platform).
	Would  string `json:"would"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
	// Batch numbers the requests on the send's connection, from 1; 0 when
	// nothing would be sent.
	Batch    int    `json:"batch"`
	Summary  string `json:"summary"`
	Attempts int    `json:"attempts"`
	// Unplanned marks an event still in the outbox: its send row does not
	// exist yet.
	Unplanned bool `json:"unplanned"`
}

// dryRunLimit bounds what a dry run reads.
const dryRunLimit = 100_000

// DryRun shows what Run with Force would do — the outbox planned, every
// pending and retrying send checked, batched and summarised — and changes
// nothing: no planning, no lease, no request.
func (q *Queue) DryRun(ctx context.Context, clientID string) ([]Preview, error) {
	now := q.clock.Now()
	var out []Preview
	type cand struct {
		send      store.ClaimedSend
		unplanned bool
		connected bool
	}
	var cands []cand
	evs, err := q.store.PeekOutbox(ctx, dryRunLimit, clientID)
	if err != nil {
		return nil, err
	}
	for _, oe := range evs {
		for _, ps := range q.decide([]store.OutboxEvent{oe}, now, 0) {
			s := store.ClaimedSend{EventID: ps.EventID, Platform: ps.Platform, Status: ps.Status, ClientID: oe.ClientID,
				Event: oe.Event, EventName: oe.Mappings[ps.Platform]}
			cands = append(cands, cand{send: s, unplanned: true, connected: oe.Connected[ps.Platform]})
		}
	}
	due, err := q.store.DueSends(ctx, clientID, dryRunLimit)
	if err != nil {
		return nil, err
	}
	for _, s := range due {
		cands = append(cands, cand{send: s, connected: s.ConnectionID != ""})
	}
	batches := map[string][2]int{} // client|platform → {batch number, conversions in it}
	for _, c := range cands {
		s := c.send
		p := Platform(s.Platform)
		conv, v := q.judge(p, &s.Event, c.connected, s.EventName, now)
		pv := Preview{EventID: s.EventID, Platform: s.Platform, ClientID: s.ClientID, StageID: s.Event.StageID, EventName: s.EventName,
			Reason: v.skip, Detail: v.detail, Attempts: s.Attempts, Unplanned: c.unplanned}
		switch {
		case v.skip == SkipOutsideWindow && s.Attempts > 0:
			pv.Would = "fail"
		case v.skip != "":
			pv.Would = "skip"
		case v.notBefore.After(now):
			pv.Would, pv.Detail = "defer", "not before "+v.notBefore.UTC().Format(time.RFC3339)
		default:
			cl := q.clients[p]
			k := s.ClientID + "|" + s.Platform
			b := batches[k]
			if b[0] == 0 || b[1] >= max(1, cl.MaxBatch()) {
				b = [2]int{b[0] + 1, 0}
			}
			b[1]++
			batches[k] = b
			pv.Would, pv.Batch, pv.Summary = "send", b[0], cl.Summary(&conv)
		}
		out = append(out, pv)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ClientID != out[j].ClientID {
			return out[i].ClientID < out[j].ClientID
		}
		return out[i].Platform < out[j].Platform
	})
	return out, nil
}
