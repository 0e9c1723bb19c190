package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pruuv/pruuv/internal/event"
)

// Outcome is what became of one event offered for ingestion.
type Outcome int

// The outcomes of Ingest.
const (
	Accepted  Outcome = iota + 1 // stored
	Duplicate                    // same reference at the same stage within the dedup window
	Limited                      // the stage's hourly limit is used up
)

// Item is one event offered to Ingest, with the answer filled in by it.
type Item struct {
	Event       event.Event // ID and ReceivedAt set by the caller
	HourlyLimit int
	DedupSince  int64 // an event received after this (Unix ms) is a duplicate
	HourStart   int64 // start of the current UTC hour (Unix ms)
	// Bucket names the hourly counter HourlyLimit applies to; empty means the
	// stage's own (its id). Sources with a quota of their own use another key
	// of the same stage, such as PixelBucket's. Dedup and locking stay per stage.
	Bucket string

	Outcome Outcome
	EventID string // the stored event, or for a duplicate the original
	Used    int    // events accepted in this hour, after this item
}

// bucket is the hourly counter the item counts against.
func (it *Item) bucket() string {
	if it.Bucket != "" {
		return it.Bucket
	}
	return it.Event.StageID
}

// PixelBucket is the hourly counter of a stage's events from the Pixel, kept
// apart from the Webhook API's so neither can use up the other's quota.
func PixelBucket(stageID string) string { return "pixel:" + stageID }

// insertChunks are the row counts of the prepared multi-row inserts; a batch
// is written greedily in chunks of these sizes.
var insertChunks = []int{64, 16, 4, 1}

// hotStatements are the ingest path's statements, prepared once: parsing SQL
// on every request would cost more than running it.
type hotStatements struct {
	lookup, dedup, counters, setCounters *sql.Stmt
	insert                               map[int]*sql.Stmt
	// outbox records the accepted events whose conversions are still to be
	// planned: $1 is [[event_id, received_at], …], one statement per batch.
	outbox *sql.Stmt
}

// rows turns a JSON array parameter into rows with a column "value" — the
// one spelling that differs between the dialects in the batch statements.
func (s *Store) rows(param string) string {
	if s.Postgres() {
		return "json_array_elements(" + param + "::json)"
	}
	return "json_each(" + param + ")"
}

func (s *Store) dedupSQL() string {
	if s.Postgres() {
		return `SELECT j.value ->> 0, j.value ->> 1, e.id, e.received_at
			FROM json_array_elements($1::json) j
			CROSS JOIN LATERAL (SELECT id, received_at FROM events
				WHERE stage_id = (j.value ->> 0) AND reference = (j.value ->> 1) AND received_at > $2
				ORDER BY received_at DESC LIMIT 1) e`
	}
	return `SELECT e.stage_id, e.reference, e.id, e.received_at
		FROM json_each($1) j
		JOIN events e ON e.stage_id = (j.value ->> 0) AND e.reference = (j.value ->> 1)
		WHERE e.received_at > $2`
}

func (s *Store) prepareHot(ctx context.Context) error {
	stmts := []struct {
		db   *sql.DB
		dst  **sql.Stmt
		text string
	}{
		{s.r, &s.hot.lookup, `SELECT s.hourly_limit, s.pixel_hourly_limit, f.client_id, t.token_hash
			FROM stages s JOIN funnels f ON f.id = s.funnel_id
			LEFT JOIN stage_tokens t ON t.stage_id = s.id AND (t.expires_at IS NULL OR t.expires_at > $2)
			WHERE s.id = $1`},
		// $1: [[stage_id, reference], …]. The newest recent event for each key.
		// LATERAL makes PostgreSQL use the index whatever its statistics say.
		{s.w, &s.hot.dedup, s.dedupSQL()},
		// $1: [[bucket, window_start], …]. The column stage_id holds the
		// bucket: a stage id, or another key of that stage (PixelBucket).
		{s.w, &s.hot.counters, `SELECT b.stage_id, b.window_start, b.n
			FROM ` + s.rows("$1") + ` j
			JOIN rate_buckets b ON b.stage_id = (j.value ->> 0) AND b.window_start = CAST(j.value ->> 1 AS BIGINT)`},
		// $1: [[bucket, window_start, n], …]: the new absolute counts, computed
		// under the stage locks.
		{s.w, &s.hot.setCounters, `INSERT INTO rate_buckets (stage_id, window_start, n)
			SELECT j.value ->> 0, CAST(j.value ->> 1 AS BIGINT), CAST(j.value ->> 2 AS INTEGER) FROM ` + s.rows("$1") + ` j
			WHERE true
			ON CONFLICT (stage_id, window_start) DO UPDATE SET n = excluded.n`},
		{s.w, &s.hot.outbox, `INSERT INTO conversion_outbox (event_id, created_at)
			SELECT j.value ->> 0, CAST(j.value ->> 1 AS BIGINT) FROM ` + s.rows("$1") + ` j`},
	}
	for _, p := range stmts {
		st, err := p.db.PrepareContext(ctx, p.text)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", p.text[:40], err)
		}
		*p.dst = st
	}
	s.hot.insert = map[int]*sql.Stmt{}
	for _, n := range insertChunks {
		st, err := s.w.PrepareContext(ctx, insertEventSQL(n, s.Postgres()))
		if err != nil {
			return fmt.Errorf("prepare insert of %d: %w", n, err)
		}
		s.hot.insert[n] = st
	}
	return nil
}

func (h *hotStatements) close() {
	for _, st := range []*sql.Stmt{h.lookup, h.dedup, h.counters, h.setCounters, h.outbox} {
		if st != nil {
			st.Close()
		}
	}
	for _, st := range h.insert {
		st.Close()
	}
}

var eventColumns = func() []string {
	cols := []string{"id", "stage_id", "source", "received_at"}
	for _, fd := range event.Schema {
		cols = append(cols, fd.Column())
	}
	return cols
}()

// insertEventSQL writes a multi-row insert. SQLite gets anonymous "?"
// parameters: the driver looks up every numbered parameter's name by a linear
// scan, which for thousands of parameters costs more than the insert.
func insertEventSQL(rows int, numbered bool) string {
	var b strings.Builder
	b.WriteString("INSERT INTO events (" + strings.Join(eventColumns, ", ") + ") VALUES ")
	p := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range eventColumns {
			if c > 0 {
				b.WriteString(", ")
			}
			if numbered {
				b.WriteString("$" + strconv.Itoa(p))
			} else {
				b.WriteByte('?')
			}
			p++
		}
		b.WriteByte(')')
	}
	return b.String()
}

type dedupKey struct{ stage, ref string }
type hourKey struct {
	bucket string
	hour   int64
}

type recent struct {
	id string
	at int64
}

// Ingest records a batch of events in one transaction and fills in each
// item's outcome, exactly as if the items had arrived one by one in slice
// order: an event with the same reference at the same stage recorded within
// its dedup window — earlier in the batch or before, whichever bucket it came
// through — makes it a duplicate; otherwise it is accepted if its bucket's
// counter for the hour is below the limit, and stored. Nothing is
// acknowledged unless Ingest returns nil.
//
// The work is done per batch, not per event: one query finds recent events
// for every key, one reads the counters, one writes them back and a few
// multi-row inserts store the events. Correctness rests on the writer holding
// every stage of the batch exclusively: SQLite's BEGIN IMMEDIATE, or on
// PostgreSQL advisory locks taken in sorted order (so two processes cannot
// deadlock) under READ COMMITTED.
func (s *Store) Ingest(ctx context.Context, items []*Item) error {
	if len(items) == 0 {
		return nil
	}
	keys := make([][2]string, 0, len(items))
	seenKey := make(map[dedupKey]bool, len(items))
	hours := make([][2]any, 0, 4)
	seenHour := make(map[hourKey]bool, 4)
	var stages []string
	seenStage := make(map[string]bool, 4)
	since := items[0].DedupSince
	for _, it := range items {
		k := dedupKey{it.Event.StageID, it.Event.Reference}
		if !seenKey[k] {
			seenKey[k] = true
			keys = append(keys, [2]string{k.stage, k.ref})
		}
		h := hourKey{it.bucket(), it.HourStart}
		if !seenHour[h] {
			seenHour[h] = true
			hours = append(hours, [2]any{h.bucket, h.hour})
		}
		if !seenStage[k.stage] {
			seenStage[k.stage] = true
			stages = append(stages, k.stage)
		}
		since = min(since, it.DedupSince)
	}
	keysJSON, err := json.Marshal(keys)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	hoursJSON, err := json.Marshal(hours)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}

	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if s.Postgres() {
			// One round trip for all the batch's stages, locked in key order so
			// that two processes never wait on each other in a cycle.
			stagesJSON, err := json.Marshal(stages)
			if err != nil {
				return fmt.Errorf("ingest: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(k) FROM
				(SELECT DISTINCT hashtextextended(v, 0) AS k FROM json_array_elements_text($1::json) v ORDER BY 1) s`,
				string(stagesJSON)); err != nil {
				return fmt.Errorf("lock stages: %w", err)
			}
		}
		last := make(map[dedupKey]recent, len(keys))
		rows, err := tx.StmtContext(ctx, s.hot.dedup).QueryContext(ctx, string(keysJSON), since)
		if err != nil {
			return fmt.Errorf("dedup check: %w", err)
		}
		for rows.Next() {
			var k dedupKey
			var r recent
			if err := rows.Scan(&k.stage, &k.ref, &r.id, &r.at); err != nil {
				rows.Close()
				return fmt.Errorf("dedup check: %w", err)
			}
			if prev, ok := last[k]; !ok || r.at > prev.at {
				last[k] = r
			}
		}
		// Next stops at an error and closes the rows itself, so only Err
		// reports it; missing rows here would admit a duplicate.
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("dedup check: %w", err)
		}

		counts := make(map[hourKey]int, len(hours))
		rows, err = tx.StmtContext(ctx, s.hot.counters).QueryContext(ctx, string(hoursJSON))
		if err != nil {
			return fmt.Errorf("read hourly counts: %w", err)
		}
		for rows.Next() {
			var h hourKey
			var n int
			if err := rows.Scan(&h.bucket, &h.hour, &n); err != nil {
				rows.Close()
				return fmt.Errorf("read hourly counts: %w", err)
			}
			counts[h] = n
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil { // missing rows would lower a counter
			return fmt.Errorf("read hourly counts: %w", err)
		}

		changed := make(map[hourKey]bool, len(hours))
		accepted := make([]*Item, 0, len(items))
		for _, it := range items {
			e := &it.Event
			k, h := dedupKey{e.StageID, e.Reference}, hourKey{it.bucket(), it.HourStart}
			if r, ok := last[k]; ok && r.at > it.DedupSince {
				it.Outcome, it.EventID, it.Used = Duplicate, r.id, counts[h]
				continue
			}
			if counts[h] >= it.HourlyLimit {
				it.Outcome, it.EventID, it.Used = Limited, "", counts[h]
				continue
			}
			counts[h]++
			changed[h] = true
			last[k] = recent{id: e.ID, at: e.ReceivedAt.UnixMilli()}
			it.Outcome, it.EventID, it.Used = Accepted, e.ID, counts[h]
			accepted = append(accepted, it)
		}
		if len(accepted) == 0 {
			return nil
		}

		set := make([][3]any, 0, len(changed))
		for h := range changed {
			set = append(set, [3]any{h.bucket, h.hour, counts[h]})
		}
		setJSON, err := json.Marshal(set)
		if err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		if _, err := tx.StmtContext(ctx, s.hot.setCounters).ExecContext(ctx, string(setJSON)); err != nil {
			return fmt.Errorf("write hourly counts: %w", err)
		}
		if err := s.insertEvents(ctx, tx, accepted); err != nil {
			return err
		}
		return s.insertOutbox(ctx, tx, accepted)
	})
}

// insertOutbox queues the accepted events for conversion planning in the
// transaction that stores them, so an acknowledged event is never left
// without its sends being decided.
func (s *Store) insertOutbox(ctx context.Context, tx *sql.Tx, items []*Item) error {
	rows := make([][2]any, len(items))
	for i, it := range items {
		rows[i] = [2]any{it.Event.ID, it.Event.ReceivedAt.UnixMilli()}
	}
	js, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if _, err := tx.StmtContext(ctx, s.hot.outbox).ExecContext(ctx, string(js)); err != nil {
		return fmt.Errorf("queue conversions: %w", err)
	}
	return nil
}

func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, items []*Item) error {
	args := make([]any, 0, insertChunks[0]*len(eventColumns))
	for len(items) > 0 {
		n := insertChunks[len(insertChunks)-1]
		for _, c := range insertChunks {
			if c <= len(items) {
				n = c
				break
			}
		}
		args = args[:0]
		for _, it := range items[:n] {
			e := &it.Event
			args = append(args, e.ID, e.StageID, string(e.Source), e.ReceivedAt.UnixMilli())
			for _, fd := range event.Schema {
				args = append(args, fd.Value(&e.Fields))
			}
		}
		if _, err := tx.StmtContext(ctx, s.hot.insert[n]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert events: %w", err)
		}
		items = items[n:]
	}
	return nil
}
