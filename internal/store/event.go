package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/event"
)

// StageAuth is what the ingest path needs to know about a stage before it
// decodes a body: the live token hashes, the hourly limit and how much of the
// current hour is used.
type StageAuth struct {
	TokenHashes [][]byte
	HourlyLimit int
	Used        int
}

// LookupStage loads a stage's live tokens, limit and use in the hour starting
// at hourStart, or returns ErrNotFound.
func (s *Store) LookupStage(ctx context.Context, stageID string, now time.Time, hourStart int64) (StageAuth, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT s.hourly_limit, COALESCE(b.n, 0), t.token_hash
		FROM stages s
		LEFT JOIN rate_buckets b ON b.stage_id = s.id AND b.window_start = $2
		LEFT JOIN stage_tokens t ON t.stage_id = s.id AND (t.expires_at IS NULL OR t.expires_at > $3)
		WHERE s.id = $1`, stageID, hourStart, now.UnixMilli())
	if err != nil {
		return StageAuth{}, s.wrap(err, "look up stage")
	}
	defer rows.Close()
	var a StageAuth
	found := false
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&a.HourlyLimit, &a.Used, &h); err != nil {
			return StageAuth{}, s.wrap(err, "look up stage")
		}
		found = true
		if h != nil {
			a.TokenHashes = append(a.TokenHashes, h)
		}
	}
	if err := rows.Err(); err != nil {
		return StageAuth{}, s.wrap(err, "look up stage")
	}
	if !found {
		return StageAuth{}, fmt.Errorf("stage %s: %w", stageID, ErrNotFound)
	}
	return a, nil
}

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

	Outcome Outcome
	EventID string // the stored event, or for a duplicate the original
	Used    int    // events accepted in this hour after this item
}

var insertEventSQL = func() string {
	cols := []string{"id", "stage_id", "source", "received_at"}
	for _, fd := range event.Schema {
		cols = append(cols, fd.Column())
	}
	ph := make([]string, len(cols))
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return "INSERT INTO events (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ")"
}()

// Ingest records a batch of events in one transaction: for each, in order, a
// duplicate check, then the hourly counter, then the insert. Nothing is
// acknowledged unless Ingest returns nil, and then every item has its outcome.
// Items are handled in stage order (the slice itself is left as it is) so that on PostgreSQL two processes taking
// several stage locks always take them in the same order.
func (s *Store) Ingest(ctx context.Context, items []*Item) error {
	ordered := slices.Clone(items)
	slices.SortStableFunc(ordered, func(a, b *Item) int { return strings.Compare(a.Event.StageID, b.Event.StageID) })
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		args := make([]any, 0, 4+len(event.Schema))
		locked := ""
		for _, it := range ordered {
			e := &it.Event
			if s.dialect.lockStage != "" && e.StageID != locked {
				if _, err := tx.ExecContext(ctx, s.dialect.lockStage, e.StageID); err != nil {
					return fmt.Errorf("lock stage: %w", err)
				}
				locked = e.StageID
			}
			var orig string
			err := tx.QueryRowContext(ctx, `SELECT id FROM events WHERE stage_id = $1 AND reference = $2 AND received_at > $3
				ORDER BY received_at DESC LIMIT 1`, e.StageID, e.Reference, it.DedupSince).Scan(&orig)
			switch {
			case err == nil:
				it.Outcome, it.EventID = Duplicate, orig
				if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM rate_buckets WHERE stage_id = $1 AND window_start = $2",
					e.StageID, it.HourStart).Scan(&it.Used); err != nil {
					return fmt.Errorf("read hourly count: %w", err)
				}
				continue
			case err != sql.ErrNoRows:
				return fmt.Errorf("dedup check: %w", err)
			}
			err = tx.QueryRowContext(ctx, `INSERT INTO rate_buckets (stage_id, window_start, n) VALUES ($1, $2, 1)
				ON CONFLICT (stage_id, window_start) DO UPDATE SET n = rate_buckets.n + 1 WHERE rate_buckets.n < $3
				RETURNING n`, e.StageID, it.HourStart, it.HourlyLimit).Scan(&it.Used)
			switch {
			case err == sql.ErrNoRows:
				it.Outcome, it.Used = Limited, it.HourlyLimit
				continue
			case err != nil:
				return fmt.Errorf("hourly count: %w", err)
			case it.Used > it.HourlyLimit: // a first row inserted while the limit is below 1
				return fmt.Errorf("hourly limit %d is below 1", it.HourlyLimit)
			}
			args = append(args[:0], e.ID, e.StageID, string(e.Source), e.ReceivedAt.UnixMilli())
			for _, fd := range event.Schema {
				args = append(args, fd.Value(&e.Fields))
			}
			if _, err := tx.ExecContext(ctx, insertEventSQL, args...); err != nil {
				return fmt.Errorf("insert event: %w", err)
			}
			it.Outcome, it.EventID = Accepted, e.ID
		}
		return nil
	})
}

// EventFilter narrows ListEvents.
type EventFilter struct {
	StageID string // empty: every stage
	Limit   int    // at most this many, newest first
}

// ListEvents returns stored events, newest first.
func (s *Store) ListEvents(ctx context.Context, f EventFilter) ([]event.Event, error) {
	cols := []string{"id", "stage_id", "source", "received_at"}
	for _, fd := range event.Schema {
		cols = append(cols, fd.Column())
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM events"
	var args []any
	if f.StageID != "" {
		q += " WHERE stage_id = $1"
		args = append(args, f.StageID)
	}
	q += " ORDER BY received_at DESC, id DESC"
	if f.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(err, "list events")
	}
	defer rows.Close()
	var out []event.Event
	texts := make([]*string, len(event.Schema))
	nums := make([]*int64, len(event.Schema))
	for rows.Next() {
		var e event.Event
		var src string
		var ms int64
		dest := []any{&e.ID, &e.StageID, &src, &ms}
		for i, fd := range event.Schema {
			if fd.Numeric() {
				dest = append(dest, &nums[i])
			} else {
				dest = append(dest, &texts[i])
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, s.wrap(err, "list events")
		}
		e.Source, e.ReceivedAt = event.Source(src), time.UnixMilli(ms).UTC()
		for i, fd := range event.Schema {
			if err := fd.Scan(&e.Fields, texts[i], nums[i]); err != nil {
				return nil, fmt.Errorf("event %s field %s: %w", e.ID, fd.Name, err)
			}
		}
		out = append(out, e)
	}
	return out, s.wrap(rows.Err(), "list events")
}

// PruneRateBuckets deletes hourly counters of windows that started before
// before (Unix ms); only the current hour's counter is ever read.
func (s *Store) PruneRateBuckets(ctx context.Context, before int64) (int64, error) {
	var n int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM rate_buckets WHERE window_start < $1", before)
		if err != nil {
			return s.wrap(err, "prune rate buckets")
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}
