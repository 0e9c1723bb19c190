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

// EventFilter narrows ListEvents. Zero values do not filter.
type EventFilter struct {
	StageID   string // empty: every stage
	Source    event.Source
	Reference string    // exact match
	From, To  time.Time // received at or after From, before To
	Before    string    // only events whose id sorts before this one (the next page)
	Limit     int       // at most this many, newest first
}

func eventColumnList() string {
	cols := []string{"id", "stage_id", "source", "received_at"}
	for _, fd := range event.Schema {
		cols = append(cols, fd.Column())
	}
	return strings.Join(cols, ", ")
}

// ListEvents returns stored events, newest first.
func (s *Store) ListEvents(ctx context.Context, f EventFilter) ([]event.Event, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.StageID != "" {
		add("stage_id = ?", f.StageID)
	}
	if f.Source != "" {
		add("source = ?", string(f.Source))
	}
	if f.Reference != "" {
		add("reference = ?", f.Reference)
	}
	if !f.From.IsZero() {
		add("received_at >= ?", f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		add("received_at < ?", f.To.UnixMilli())
	}
	if f.Before != "" {
		add("id < ?", f.Before)
	}
	q := "SELECT " + eventColumnList() + " FROM events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
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
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, s.wrap(rows.Err(), "list events")
}

// GetEvent returns one event, or ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, id string) (event.Event, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+eventColumnList()+" FROM events WHERE id = $1", id)
	if err != nil {
		return event.Event{}, s.wrap(err, "event "+id)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return event.Event{}, s.wrap(err, "event "+id)
		}
		return event.Event{}, fmt.Errorf("event %s: %w", id, ErrNotFound)
	}
	return scanEvent(rows)
}

func scanEvent(rows *sql.Rows) (event.Event, error) {
	var e event.Event
	var src string
	var ms int64
	texts := make([]*string, len(event.Schema))
	nums := make([]*int64, len(event.Schema))
	dest := []any{&e.ID, &e.StageID, &src, &ms}
	for i, fd := range event.Schema {
		if fd.Numeric() {
			dest = append(dest, &nums[i])
		} else {
			dest = append(dest, &texts[i])
		}
	}
	if err := rows.Scan(dest...); err != nil {
		return e, fmt.Errorf("read event: %w", err)
	}
	e.Source, e.ReceivedAt = event.Source(src), time.UnixMilli(ms).UTC()
	for i, fd := range event.Schema {
		if err := fd.Scan(&e.Fields, texts[i], nums[i]); err != nil {
			return e, fmt.Errorf("event %s field %s: %w", e.ID, fd.Name, err)
		}
	}
	return e, nil
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
