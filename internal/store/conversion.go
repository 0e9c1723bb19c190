package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/event"
)

// This file keeps the conversion queue's tables: connections, stage mappings,
// the outbox written by Ingest, the sends (queue and audit log) and their
// attempts. The decisions — what to send, when, what a result means — are
// the conversion package's; the store only reads and writes rows, each
// change in one transaction.

// ErrNotRetryable means a send is not in a state an operator may re-queue.
var ErrNotRetryable = errors.New("only failed or skipped sends can be retried")

// ClientByName returns the client with that name, or ErrNotFound.
func (s *Store) ClientByName(ctx context.Context, name string) (Client, error) {
	var c Client
	err := s.r.QueryRowContext(ctx, "SELECT id, name FROM clients WHERE name = $1", name).Scan(&c.ID, &c.Name)
	return c, s.wrap(err, fmt.Sprintf("client %q", name))
}

// Connection is a client's account on one platform as stored: plain settings
// in clear, secret ones sealed (bound to the row id) with a hint each.
type Connection struct {
	ID         string
	ClientID   string
	ClientName string
	Platform   string
	Settings   map[string]string // the settings that are not secret
	Sealed     string            // the secret settings as a sealed JSON object; "" when none
	Hints      map[string]string // secret setting → what may be shown of it
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

const connectionSelect = `SELECT n.id, n.client_id, c.name, n.platform, n.settings, n.sealed, n.hints, n.created_at, n.updated_at
	FROM connections n JOIN clients c ON c.id = n.client_id`

func scanConnection(sc scanner) (Connection, error) {
	var c Connection
	var settings, hints string
	var created, updated int64
	if err := sc.Scan(&c.ID, &c.ClientID, &c.ClientName, &c.Platform, &settings, &c.Sealed, &hints, &created, &updated); err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(settings), &c.Settings); err != nil {
		return c, fmt.Errorf("connection %s settings: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(hints), &c.Hints); err != nil {
		return c, fmt.Errorf("connection %s hints: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return c, nil
}

// GetConnection returns the client's connection on the platform, or ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, clientID, platform string) (Connection, error) {
	c, err := scanConnection(s.r.QueryRowContext(ctx, connectionSelect+" WHERE n.client_id = $1 AND n.platform = $2", clientID, platform))
	return c, s.wrap(err, "connection on "+platform)
}

// ConnectionByID returns one connection, or ErrNotFound.
func (s *Store) ConnectionByID(ctx context.Context, id string) (Connection, error) {
	c, err := scanConnection(s.r.QueryRowContext(ctx, connectionSelect+" WHERE n.id = $1", id))
	return c, s.wrap(err, "connection "+id)
}

// ListConnections returns every connection by client name and platform.
func (s *Store) ListConnections(ctx context.Context) ([]Connection, error) {
	return queryList(ctx, s, "list connections", scanConnection, connectionSelect+" ORDER BY c.name, n.platform")
}

// PutConnection creates the client's connection on c.Platform or replaces
// its settings. The sealed value is bound to c.ID, so a connection that
// already exists must be written under its own id: if another id holds the
// (client, platform) row — a concurrent first add — it returns ErrConflict
// and changes nothing.
func (s *Store) PutConnection(ctx context.Context, c Connection, now time.Time) error {
	settings, err := json.Marshal(nonNil(c.Settings))
	if err != nil {
		return err
	}
	hints, err := json.Marshal(nonNil(c.Hints))
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		ms := now.UnixMilli()
		res, err := tx.ExecContext(ctx, `INSERT INTO connections (id, client_id, platform, settings, sealed, hints, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
			ON CONFLICT (client_id, platform) DO UPDATE SET settings = excluded.settings, sealed = excluded.sealed,
				hints = excluded.hints, updated_at = excluded.updated_at
			WHERE connections.id = excluded.id`,
			c.ID, c.ClientID, c.Platform, string(settings), c.Sealed, string(hints), ms)
		if err != nil {
			return s.wrap(err, "save connection")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("connection on %s changed meanwhile: %w", c.Platform, ErrConflict)
		}
		return nil
	})
}

// ReplaceSealed swaps a connection's sealed settings and hints for new ones,
// but only while the row still holds the sealed value old: a change made
// meanwhile (an operator reconnecting the account, another runner saving its
// own rotation) wins, and ReplaceSealed returns ErrConflict and changes
// nothing. It is one UPDATE, so it holds the writer only briefly.
func (s *Store) ReplaceSealed(ctx context.Context, id, old, sealed string, hints map[string]string, now time.Time) error {
	h, err := json.Marshal(nonNil(hints))
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, "UPDATE connections SET sealed = $3, hints = $4, updated_at = $5 WHERE id = $1 AND sealed = $2",
		id, old, sealed, string(h), now.UnixMilli())
	if err != nil {
		return s.wrap(err, "save connection "+id)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(err, "save connection "+id)
	}
	if n == 0 {
		return fmt.Errorf("connection %s changed meanwhile: %w", id, ErrConflict)
	}
	return nil
}

// nonNil is m, or an empty map when m is nil.
func nonNil[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// Mapping is what one stage sends to one platform.
type Mapping struct {
	ClientID   string
	StageID    string
	StageName  string
	FunnelName string
	Platform   string
	EventName  string
}

// SetMapping makes the stage send eventName to the platform; an empty
// eventName removes the mapping. The stage must belong to one of the
// client's funnels, else ErrNotFound.
func (s *Store) SetMapping(ctx context.Context, clientID, stageID, platform, eventName string, now time.Time) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM stages s JOIN funnels f ON f.id = s.funnel_id WHERE s.id = $1 AND f.client_id = $2",
			stageID, clientID).Scan(&one)
		if err != nil {
			return s.wrap(err, "stage "+stageID+" of the client")
		}
		if eventName == "" {
			_, err = tx.ExecContext(ctx, "DELETE FROM stage_mappings WHERE stage_id = $1 AND platform = $2", stageID, platform)
			return s.wrap(err, "remove mapping")
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO stage_mappings (stage_id, platform, event_name, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4)
			ON CONFLICT (stage_id, platform) DO UPDATE SET event_name = excluded.event_name, updated_at = excluded.updated_at`,
			stageID, platform, eventName, now.UnixMilli())
		return s.wrap(err, "save mapping")
	})
}

// ListMappings returns every stage mapping in funnel and stage order.
func (s *Store) ListMappings(ctx context.Context) ([]Mapping, error) {
	return queryList(ctx, s, "list mappings", func(sc scanner) (Mapping, error) {
		var m Mapping
		err := sc.Scan(&m.ClientID, &m.StageID, &m.StageName, &m.FunnelName, &m.Platform, &m.EventName)
		return m, err
	}, `SELECT f.client_id, m.stage_id, s.name, f.name, m.platform, m.event_name
		FROM stage_mappings m JOIN stages s ON s.id = m.stage_id JOIN funnels f ON f.id = s.funnel_id
		ORDER BY f.client_id, f.name, s.position, m.platform`)
}

// eventCols selects a stored event's columns from alias e, in the order
// scanEvent reads them.
var eventCols = func() string {
	cols := []string{"e.id", "e.stage_id", "e.source", "e.received_at"}
	for _, fd := range event.Schema {
		cols = append(cols, "e."+fd.Column())
	}
	return strings.Join(cols, ", ")
}()

// eventScan reads an event's columns (eventCols) from a row that may carry
// other columns before or after them.
type eventScan struct {
	e     *event.Event
	src   string
	ms    int64
	texts []*string
	nums  []*int64
}

func newEventScan(e *event.Event) *eventScan {
	return &eventScan{e: e, texts: make([]*string, len(event.Schema)), nums: make([]*int64, len(event.Schema))}
}

// dest are the Scan destinations of eventCols.
func (sc *eventScan) dest() []any {
	dest := []any{&sc.e.ID, &sc.e.StageID, &sc.src, &sc.ms}
	for i, fd := range event.Schema {
		if fd.Numeric() {
			dest = append(dest, &sc.nums[i])
		} else {
			dest = append(dest, &sc.texts[i])
		}
	}
	return dest
}

// finish fills the event in once the row is scanned.
func (sc *eventScan) finish() error {
	sc.e.Source, sc.e.ReceivedAt = event.Source(sc.src), time.UnixMilli(sc.ms).UTC()
	for i, fd := range event.Schema {
		if err := fd.Scan(&sc.e.Fields, sc.texts[i], sc.nums[i]); err != nil {
			return fmt.Errorf("event %s field %s: %w", sc.e.ID, fd.Name, err)
		}
	}
	return nil
}

// OutboxEvent is an event waiting to be planned, with what planning needs
// to know about its client and stage.
type OutboxEvent struct {
	Event     event.Event
	ClientID  string
	Connected map[string]bool   // platforms the client has a connection on
	Mappings  map[string]string // platform → the stage's event name there
}

// PlannedSend is the planner's decision for one event on one platform.
type PlannedSend struct {
	EventID  string `json:"e"`
	Platform string `json:"p"`
	ClientID string `json:"c"`
	StageID  string `json:"s"`
	Status   string `json:"st"`
	Reason   string `json:"r"`
	Detail   string `json:"d"`
	// NextAttemptAt (Unix ms) is when a pending send becomes due; 0 leaves it
	// unset (skipped, or no schedule).
	NextAttemptAt int64 `json:"n,omitempty"`
}

// PlanOutbox takes up to limit outbox rows, asks decide what sends each
// event makes, records them and deletes the rows, all in one transaction.
// Sends already recorded for an (event, platform) are left alone, so planning
// twice changes nothing. On PostgreSQL the rows are claimed with SKIP LOCKED:
// processes planning at once take different events. It returns how many
// outbox rows it consumed (0 when the outbox is empty).
func (s *Store) PlanOutbox(ctx context.Context, limit int, now time.Time, decide func([]OutboxEvent) []PlannedSend) (int, error) {
	if !s.Postgres() {
		// SQLite has one writer, which the ingest path shares: read the batch
		// through the readers first, so the write transaction holds the
		// writer only for the insert and the delete. Two planners reading the
		// same rows (serve and a CLI run) record the same sends, and the
		// second one's inserts do nothing.
		ids, evs, err := s.readOutbox(ctx, s.r, limit, "")
		if err != nil || len(ids) == 0 {
			return 0, err
		}
		planned := decide(evs)
		return len(ids), s.writeTx(ctx, func(tx *sql.Tx) error { return s.recordPlan(ctx, tx, ids, planned, now) })
	}
	var n int
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		ids, evs, err := s.readOutbox(ctx, tx, limit, " FOR UPDATE SKIP LOCKED")
		if err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		return s.recordPlan(ctx, tx, ids, decide(evs), now)
	})
	return n, err
}

// readOutbox reads up to limit outbox rows, oldest first, and their events.
func (s *Store) readOutbox(ctx context.Context, q querier, limit int, lock string) ([]string, []OutboxEvent, error) {
	ids, err := queryStrings(ctx, q, "SELECT event_id FROM conversion_outbox ORDER BY event_id LIMIT $1"+lock, limit)
	if err != nil {
		return nil, nil, s.wrap(err, "read outbox")
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	evs, err := s.outboxEvents(ctx, q, ids)
	return ids, evs, err
}

// recordPlan records the planned sends and deletes their outbox rows.
func (s *Store) recordPlan(ctx context.Context, tx *sql.Tx, ids []string, planned []PlannedSend, now time.Time) error {
	if len(planned) > 0 {
		js, err := json.Marshal(planned)
		if err != nil {
			return err
		}
		ms := now.UnixMilli()
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversion_sends
			(event_id, platform, client_id, stage_id, status, reason, detail, attempts, next_attempt_at, created_at, updated_at)
			SELECT j.value ->> 'e', j.value ->> 'p', j.value ->> 'c', j.value ->> 's', j.value ->> 'st', j.value ->> 'r',
				j.value ->> 'd', 0, CAST(j.value ->> 'n' AS BIGINT), $2, $2
			FROM `+s.rows("$1")+` j WHERE true
			ON CONFLICT (event_id, platform) DO NOTHING`, string(js), ms); err != nil {
			return s.wrap(err, "record sends")
		}
	}
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "DELETE FROM conversion_outbox WHERE event_id IN (SELECT j.value ->> 0 FROM "+s.rowsOfScalars("$1")+" j)", string(idsJSON))
	return s.wrap(err, "clear outbox")
}

// rowsOfScalars is rows for an array of strings, read back as j.value ->> 0
// on both dialects by wrapping each element in a one-element array.
func (s *Store) rowsOfScalars(param string) string {
	if s.Postgres() {
		return "(SELECT json_build_array(v) AS value FROM json_array_elements_text(" + param + "::json) v)"
	}
	return "(SELECT json_array(value) AS value FROM json_each(" + param + "))"
}

// PeekOutbox returns up to limit outbox events (of one client when clientID
// is set) without claiming them: a dry run's view of what planning would do.
func (s *Store) PeekOutbox(ctx context.Context, limit int, clientID string) ([]OutboxEvent, error) {
	q := "SELECT o.event_id FROM conversion_outbox o"
	args := []any{limit}
	if clientID != "" {
		q += ` JOIN events e ON e.id = o.event_id JOIN stages s ON s.id = e.stage_id JOIN funnels f ON f.id = s.funnel_id
			WHERE f.client_id = $2`
		args = append(args, clientID)
	}
	ids, err := queryStrings(ctx, s.r, q+" ORDER BY o.event_id LIMIT $1", args...)
	if err != nil {
		return nil, s.wrap(err, "read outbox")
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return s.outboxEvents(ctx, s.r, ids)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// outboxEvents loads the events with their client's connected platforms and
// their stage's mappings: three queries for the whole set.
func (s *Store) outboxEvents(ctx context.Context, q querier, ids []string) ([]OutboxEvent, error) {
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, "SELECT "+eventCols+`, f.client_id
		FROM events e JOIN stages s ON s.id = e.stage_id JOIN funnels f ON f.id = s.funnel_id
		WHERE e.id IN (SELECT j.value ->> 0 FROM `+s.rowsOfScalars("$1")+` j) ORDER BY e.id`, string(idsJSON))
	if err != nil {
		return nil, s.wrap(err, "load outbox events")
	}
	var out []OutboxEvent
	clients, stages := map[string]bool{}, map[string]bool{}
	for rows.Next() {
		var oe OutboxEvent
		sc := newEventScan(&oe.Event)
		if err := rows.Scan(append(sc.dest(), &oe.ClientID)...); err != nil {
			rows.Close()
			return nil, s.wrap(err, "load outbox events")
		}
		if err := sc.finish(); err != nil {
			rows.Close()
			return nil, err
		}
		clients[oe.ClientID], stages[oe.Event.StageID] = true, true
		out = append(out, oe)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, s.wrap(err, "load outbox events")
	}
	connected := map[string]map[string]bool{}
	if err := eachPair(ctx, q, s, "SELECT client_id, platform, '' FROM connections WHERE client_id IN (SELECT j.value ->> 0 FROM "+s.rowsOfScalars("$1")+" j)",
		keys(clients), func(client, platform, _ string) {
			if connected[client] == nil {
				connected[client] = map[string]bool{}
			}
			connected[client][platform] = true
		}); err != nil {
		return nil, err
	}
	mapped := map[string]map[string]string{}
	if err := eachPair(ctx, q, s, "SELECT stage_id, platform, event_name FROM stage_mappings WHERE stage_id IN (SELECT j.value ->> 0 FROM "+s.rowsOfScalars("$1")+" j)",
		keys(stages), func(stage, platform, name string) {
			if mapped[stage] == nil {
				mapped[stage] = map[string]string{}
			}
			mapped[stage][platform] = name
		}); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Connected = nonNil(connected[out[i].ClientID])
		out[i].Mappings = nonNil(mapped[out[i].Event.StageID])
	}
	return out, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func eachPair(ctx context.Context, q querier, s *Store, query string, ids []string, fn func(a, b, c string)) error {
	js, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, query, string(js))
	if err != nil {
		return s.wrap(err, "load connections and mappings")
	}
	defer rows.Close()
	for rows.Next() {
		var a, b, c string
		if err := rows.Scan(&a, &b, &c); err != nil {
			return s.wrap(err, "load connections and mappings")
		}
		fn(a, b, c)
	}
	return s.wrap(rows.Err(), "load connections and mappings")
}

// OutboxDepth counts events not yet planned.
func (s *Store) OutboxDepth(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM conversion_outbox").Scan(&n)
	return n, s.wrap(err, "count outbox")
}

// AnchorPending gives pending sends planned without a due time (while the
// schedule was off) the time next, so the schedule now in force picks them up.
func (s *Store) AnchorPending(ctx context.Context, next time.Time) (int64, error) {
	var n int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE conversion_sends SET next_attempt_at = $1 WHERE status = 'pending' AND next_attempt_at IS NULL", next.UnixMilli())
		if err != nil {
			return s.wrap(err, "schedule pending sends")
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// MakeDue makes every pending and retrying send (of one client when clientID
// is set) due at now: an on-demand run sends them regardless of schedule.
func (s *Store) MakeDue(ctx context.Context, now time.Time, clientID string) (int64, error) {
	var n int64
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		q := `UPDATE conversion_sends SET next_attempt_at = $1
			WHERE status IN ('pending', 'retrying') AND (next_attempt_at IS NULL OR next_attempt_at > $1)`
		args := []any{now.UnixMilli()}
		if clientID != "" {
			q += " AND client_id = $2"
			args = append(args, clientID)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return s.wrap(err, "make sends due")
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// ClaimedSend is a send taken under a lease (or, for a dry run, just read),
// with everything needed to build its conversion.
type ClaimedSend struct {
	EventID      string
	Platform     string
	Status       string
	Attempts     int
	ClientID     string
	CreatedAt    time.Time
	Event        event.Event
	EventName    string // the stage's mapping on the platform; "" when none
	ConnectionID string // the client's connection on the platform; "" when none
}

// ClaimSends leases up to limit due sends — pending or retrying, due at now,
// not leased or with an expired lease — to owner until until, oldest due
// first, and returns them. On PostgreSQL the candidates are locked with SKIP
// LOCKED, so concurrent claimers take disjoint rows; on SQLite the single
// writer makes the statement exclusive. Owner must be unique per claim: only
// FinishSends with the same owner can write the results.
func (s *Store) ClaimSends(ctx context.Context, owner string, now, until time.Time, limit int, clientID string) ([]ClaimedSend, error) {
	var out []ClaimedSend
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		sub := `SELECT event_id, platform FROM conversion_sends
			WHERE status IN ('pending', 'retrying') AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3)`
		args := []any{owner, until.UnixMilli(), now.UnixMilli(), limit}
		if clientID != "" {
			sub += " AND client_id = $5"
			args = append(args, clientID)
		}
		sub += " ORDER BY next_attempt_at, event_id LIMIT $4"
		if s.Postgres() {
			sub += " FOR UPDATE SKIP LOCKED"
		}
		if _, err := tx.ExecContext(ctx, `UPDATE conversion_sends SET lease_owner = $1, lease_until = $2
			WHERE (event_id, platform) IN (`+sub+`)`, args...); err != nil {
			return s.wrap(err, "claim sends")
		}
		var err error
		out, err = s.loadSends(ctx, tx, "s.lease_owner = $1 ORDER BY s.next_attempt_at, s.event_id, s.platform", owner)
		return err
	})
	return out, err
}

// DueSends reads, without leasing, the pending and retrying sends (of one
// client when clientID is set), oldest first: what an on-demand run would send.
func (s *Store) DueSends(ctx context.Context, clientID string, limit int) ([]ClaimedSend, error) {
	where := "s.status IN ('pending', 'retrying')"
	args := []any{}
	if clientID != "" {
		where += " AND s.client_id = $1"
		args = append(args, clientID)
	}
	return s.loadSends(ctx, s.r, where+" ORDER BY s.next_attempt_at, s.event_id LIMIT "+strconv.Itoa(limit), args...)
}

func (s *Store) loadSends(ctx context.Context, q querier, where string, args ...any) ([]ClaimedSend, error) {
	rows, err := q.QueryContext(ctx, `SELECT s.event_id, s.platform, s.status, s.attempts, s.client_id, s.created_at,
		COALESCE(m.event_name, ''), COALESCE(n.id, ''), `+eventCols+`
		FROM conversion_sends s
		JOIN events e ON e.id = s.event_id
		LEFT JOIN stage_mappings m ON m.stage_id = s.stage_id AND m.platform = s.platform
		LEFT JOIN connections n ON n.client_id = s.client_id AND n.platform = s.platform
		WHERE `+where, args...)
	if err != nil {
		return nil, s.wrap(err, "load sends")
	}
	defer rows.Close()
	var out []ClaimedSend
	for rows.Next() {
		var c ClaimedSend
		var created int64
		sc := newEventScan(&c.Event)
		if err := rows.Scan(append([]any{&c.EventID, &c.Platform, &c.Status, &c.Attempts, &c.ClientID, &created, &c.EventName, &c.ConnectionID},
			sc.dest()...)...); err != nil {
			return nil, s.wrap(err, "load sends")
		}
		if err := sc.finish(); err != nil {
			return nil, err
		}
		c.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, c)
	}
	return out, s.wrap(rows.Err(), "load sends")
}

// SendUpdate is the new state of a leased send after an attempt (or a
// decision not to make one). Zero times and HTTP status are stored as NULL.
type SendUpdate struct {
	EventID       string `json:"e"`
	Platform      string `json:"p"`
	Status        string `json:"st"`
	Reason        string `json:"r"`
	Detail        string `json:"d"`
	Attempts      int    `json:"a"`
	HTTPStatus    int    `json:"h,omitempty"`
	Message       string `json:"m"`
	NextAttemptAt int64  `json:"n,omitempty"`
	LastAttemptAt int64  `json:"l,omitempty"` // 0 keeps the previous value
	SentAt        int64  `json:"sa,omitempty"`
}

// Release hands a leased send back untried, due again at NextAttemptAt (Unix ms).
type Release struct {
	EventID       string `json:"e"`
	Platform      string `json:"p"`
	NextAttemptAt int64  `json:"n"`
}

// Attempt is one request made for one send, for the audit log.
type Attempt struct {
	ID         string `json:"id"`
	EventID    string `json:"e"`
	Platform   string `json:"p"`
	At         int64  `json:"at"`
	Outcome    string `json:"o"` // sent, transient, permanent
	HTTPStatus int    `json:"h,omitempty"`
	Message    string `json:"m"`
	Summary    string `json:"s"`
}

// SendKey names one send.
type SendKey struct{ EventID, Platform string }

// FinishSends records attempts and writes the sends' new states, releasing
// their leases, in one transaction. A send is written only while owner still
// holds its lease; the keys of sends whose lease was lost (it expired and
// another runner took it) are returned and left alone. Attempts are recorded
// whatever happened to the lease: the request was made.
func (s *Store) FinishSends(ctx context.Context, owner string, now time.Time, updates []SendUpdate, releases []Release, attempts []Attempt) (lost []SendKey, err error) {
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		lost = nil
		ms := now.UnixMilli()
		if len(attempts) > 0 {
			js, err := json.Marshal(attempts)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO conversion_attempts (id, event_id, platform, at, outcome, http_status, message, summary, lease_owner)
				SELECT j.value ->> 'id', j.value ->> 'e', j.value ->> 'p', CAST(j.value ->> 'at' AS BIGINT), j.value ->> 'o',
					CAST(j.value ->> 'h' AS INTEGER), j.value ->> 'm', j.value ->> 's', $2
				FROM `+s.rows("$1")+` j`, string(js), owner); err != nil {
				return s.wrap(err, "record attempts")
			}
		}
		if len(updates) > 0 {
			js, err := json.Marshal(updates)
			if err != nil {
				return err
			}
			done, err := s.keyed(ctx, tx, `UPDATE conversion_sends AS s SET status = j.value ->> 'st', reason = j.value ->> 'r',
				detail = j.value ->> 'd', attempts = CAST(j.value ->> 'a' AS INTEGER), http_status = CAST(j.value ->> 'h' AS INTEGER),
				message = j.value ->> 'm', next_attempt_at = CAST(j.value ->> 'n' AS BIGINT),
				last_attempt_at = COALESCE(CAST(j.value ->> 'l' AS BIGINT), s.last_attempt_at),
				sent_at = COALESCE(CAST(j.value ->> 'sa' AS BIGINT), s.sent_at),
				lease_owner = NULL, lease_until = NULL, updated_at = $3
				FROM `+s.rows("$1")+` j
				WHERE s.event_id = j.value ->> 'e' AND s.platform = j.value ->> 'p' AND s.lease_owner = $2
				RETURNING event_id, platform`, string(js), owner, ms)
			if err != nil {
				return s.wrap(err, "record send results")
			}
			for _, u := range updates {
				if k := (SendKey{u.EventID, u.Platform}); !done[k] {
					lost = append(lost, k)
				}
			}
		}
		if len(releases) > 0 {
			js, err := json.Marshal(releases)
			if err != nil {
				return err
			}
			done, err := s.keyed(ctx, tx, `UPDATE conversion_sends AS s SET next_attempt_at = CAST(j.value ->> 'n' AS BIGINT),
				lease_owner = NULL, lease_until = NULL
				FROM `+s.rows("$1")+` j
				WHERE s.event_id = j.value ->> 'e' AND s.platform = j.value ->> 'p' AND s.lease_owner = $2
				RETURNING event_id, platform`, string(js), owner)
			if err != nil {
				return s.wrap(err, "release sends")
			}
			for _, r := range releases {
				if k := (SendKey{r.EventID, r.Platform}); !done[k] {
					lost = append(lost, k)
				}
			}
		}
		return nil
	})
	return lost, err
}

func (s *Store) keyed(ctx context.Context, tx *sql.Tx, query string, args ...any) (map[SendKey]bool, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[SendKey]bool{}
	for rows.Next() {
		var k SendKey
		if err := rows.Scan(&k.EventID, &k.Platform); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

// RetrySend re-queues an event's failed or skipped sends (only the one on
// platform when it is set): pending, due at now, attempts counted from zero
// again. The attempt history stays. It returns the platforms re-queued;
// ErrNotFound when the event has no send (on that platform), ErrNotRetryable
// when none is failed or skipped.
func (s *Store) RetrySend(ctx context.Context, eventID, platform string, now time.Time) ([]string, error) {
	var out []string
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		cond, args := "event_id = $1", []any{eventID}
		if platform != "" {
			cond += " AND platform = $2"
			args = append(args, platform)
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM conversion_sends WHERE "+cond, args...).Scan(&n); err != nil {
			return s.wrap(err, "retry send")
		}
		if n == 0 {
			return fmt.Errorf("send of event %s: %w", eventID, ErrNotFound)
		}
		ms := now.UnixMilli()
		var err error
		out, err = queryStrings(ctx, tx, `UPDATE conversion_sends SET status = 'pending', reason = '', detail = '', attempts = 0,
			http_status = NULL, message = '', next_attempt_at = `+strconv.FormatInt(ms, 10)+`, lease_owner = NULL, lease_until = NULL,
			updated_at = `+strconv.FormatInt(ms, 10)+`
			WHERE `+cond+` AND status IN ('failed', 'skipped') RETURNING platform`, args...)
		if err != nil {
			return s.wrap(err, "retry send")
		}
		if len(out) == 0 {
			return fmt.Errorf("send of event %s: %w", eventID, ErrNotRetryable)
		}
		return nil
	})
	return out, err
}

// SendRow is one send as the audit log shows it.
type SendRow struct {
	EventID       string     `json:"event_id"`
	Platform      string     `json:"platform"`
	Status        string     `json:"status"`
	Reason        string     `json:"reason"`
	Detail        string     `json:"detail"`
	Attempts      int        `json:"attempts"`
	HTTPStatus    *int       `json:"http_status"`
	Message       string     `json:"message"`
	StageID       string     `json:"stage_id"`
	ClientID      string     `json:"client_id"`
	Client        string     `json:"client"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	SentAt        *time.Time `json:"sent_at"`
}

// SendFilter narrows ListSends; empty fields match everything.
type SendFilter struct {
	Platform string
	Status   string
	ClientID string
	EventID  string
	Limit    int // at most this many (default 100)
	// After continues a listing: only sends that come after this one in
	// ListSends' order.
	After *SendCursor
}

// SendCursor is a place in ListSends' order: a send's change time and key.
type SendCursor struct {
	UpdatedAt time.Time
	EventID   string
	Platform  string
}

// CursorOf is the place of r in ListSends' order.
func CursorOf(r SendRow) SendCursor {
	return SendCursor{UpdatedAt: r.UpdatedAt, EventID: r.EventID, Platform: r.Platform}
}

// String encodes c for a URL: milliseconds, event id and platform.
func (c SendCursor) String() string {
	return strconv.FormatInt(c.UpdatedAt.UnixMilli(), 10) + "." + c.EventID + "." + c.Platform
}

// ErrBadCursor means a cursor string is not one String made.
var ErrBadCursor = errors.New("not a page cursor")

// ParseSendCursor reads what SendCursor.String wrote.
func ParseSendCursor(v string) (SendCursor, error) {
	ms, rest, ok1 := strings.Cut(v, ".")
	ev, pl, ok2 := strings.Cut(rest, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok1 || !ok2 || err != nil || ev == "" || pl == "" {
		return SendCursor{}, ErrBadCursor
	}
	return SendCursor{UpdatedAt: time.UnixMilli(n).UTC(), EventID: ev, Platform: pl}, nil
}

// ListSends returns sends, most recently changed first.
func (s *Store) ListSends(ctx context.Context, f SendFilter) ([]SendRow, error) {
	var conds []string
	var args []any
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			conds = append(conds, col+" = $"+strconv.Itoa(len(args)))
		}
	}
	add("s.platform", f.Platform)
	add("s.status", f.Status)
	add("s.client_id", f.ClientID)
	add("s.event_id", f.EventID)
	if c := f.After; c != nil {
		args = append(args, c.UpdatedAt.UnixMilli(), c.EventID, c.Platform)
		n := len(args)
		conds = append(conds, fmt.Sprintf("(s.updated_at < $%d OR (s.updated_at = $%d AND (s.event_id < $%d OR (s.event_id = $%d AND s.platform > $%d))))",
			n-2, n-2, n-1, n-1, n))
	}
	q := `SELECT s.event_id, s.platform, s.status, s.reason, s.detail, s.attempts, s.http_status, s.message, s.stage_id,
		s.client_id, COALESCE(c.name, ''), s.created_at, s.updated_at, s.next_attempt_at, s.sent_at
		FROM conversion_sends s LEFT JOIN clients c ON c.id = s.client_id`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += " ORDER BY s.updated_at DESC, s.event_id DESC, s.platform LIMIT " + strconv.Itoa(limit)
	return queryList(ctx, s, "list sends", func(sc scanner) (SendRow, error) {
		var r SendRow
		var created, updated int64
		var next, sent sql.NullInt64
		var status sql.NullInt64
		err := sc.Scan(&r.EventID, &r.Platform, &r.Status, &r.Reason, &r.Detail, &r.Attempts, &status, &r.Message, &r.StageID,
			&r.ClientID, &r.Client, &created, &updated, &next, &sent)
		r.CreatedAt, r.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		r.HTTPStatus, r.NextAttemptAt, r.SentAt = intPtr(status), timePtr(next), timePtr(sent)
		return r, err
	}, q, args...)
}

func intPtr(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	n := int(v.Int64)
	return &n
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// AttemptRow is one recorded attempt.
type AttemptRow struct {
	EventID    string    `json:"event_id"`
	Platform   string    `json:"platform"`
	At         time.Time `json:"at"`
	Outcome    string    `json:"outcome"`
	HTTPStatus *int      `json:"http_status"`
	Message    string    `json:"message"`
	Summary    string    `json:"summary"`
}

// ListAttempts returns an event's attempts (on one platform when set), oldest first.
func (s *Store) ListAttempts(ctx context.Context, eventID, platform string) ([]AttemptRow, error) {
	q, args := "SELECT event_id, platform, at, outcome, http_status, message, summary FROM conversion_attempts WHERE event_id = $1", []any{eventID}
	if platform != "" {
		q += " AND platform = $2"
		args = append(args, platform)
	}
	return queryList(ctx, s, "list attempts", func(sc scanner) (AttemptRow, error) {
		var a AttemptRow
		var at int64
		var status sql.NullInt64
		err := sc.Scan(&a.EventID, &a.Platform, &at, &a.Outcome, &status, &a.Message, &a.Summary)
		a.At, a.HTTPStatus = time.UnixMilli(at).UTC(), intPtr(status)
		return a, err
	}, q+" ORDER BY at, id", args...)
}

// QueueStat is the number of unfinished sends of one platform and status
// (pending or retrying) and when the oldest of them was planned.
type QueueStat struct {
	Platform string
	Status   string
	Count    int
	Oldest   time.Time
}

// QueueStats groups the unfinished sends by platform and status: one query
// over the due index, cheap enough to run on every metrics scrape.
func (s *Store) QueueStats(ctx context.Context) ([]QueueStat, error) {
	return queryList(ctx, s, "queue stats", func(sc scanner) (QueueStat, error) {
		var q QueueStat
		var oldest int64
		err := sc.Scan(&q.Platform, &q.Status, &q.Count, &oldest)
		q.Oldest = time.UnixMilli(oldest).UTC()
		return q, err
	}, `SELECT platform, status, COUNT(*), MIN(created_at) FROM conversion_sends
		WHERE status IN ('pending', 'retrying') GROUP BY platform, status`)
}
