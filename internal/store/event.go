package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/event"
)

// StageAuth is what the ingest path needs to know about a stage before it
// decodes a body: the live token hashes and the hourly limit; for the Pixel,
// the stage's client and its own hourly limit.
type StageAuth struct {
	TokenHashes      [][]byte
	HourlyLimit      int
	PixelHourlyLimit int
	ClientID         string
}

// LookupStage loads a stage's live tokens and limits, or returns ErrNotFound.
func (s *Store) LookupStage(ctx context.Context, stageID string, now time.Time) (StageAuth, error) {
	rows, err := s.hot.lookup.QueryContext(ctx, stageID, now.UnixMilli())
	if err != nil {
		return StageAuth{}, s.wrap(err, "look up stage")
	}
	defer rows.Close()
	var a StageAuth
	found := false
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&a.HourlyLimit, &a.PixelHourlyLimit, &a.ClientID, &h); err != nil {
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

// HourlyUse returns how many events the stage accepted in the hour starting
// at hourStart (Unix ms).
func (s *Store) HourlyUse(ctx context.Context, stageID string, hourStart int64) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM rate_buckets WHERE stage_id = $1 AND window_start = $2",
		stageID, hourStart).Scan(&n)
	return n, s.wrap(err, "read hourly use")
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
	// Event ids are UUIDv7: the primary key is already in arrival order.
	q += " ORDER BY id DESC"
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
