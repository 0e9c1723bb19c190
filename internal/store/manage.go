package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ClientDetail is a client with its settings and how many funnels it has.
type ClientDetail struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	TimeZone string `json:"time_zone"`
	Currency string `json:"currency"`
	Funnels  int    `json:"funnels"`
}

// CreateClient adds a client; ErrConflict if the name is taken.
func (s *Store) CreateClient(ctx context.Context, c ClientDetail, now time.Time) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO clients (id, name, time_zone, currency, created_at) VALUES ($1, $2, $3, $4, $5)",
		c.ID, c.Name, c.TimeZone, c.Currency, now.UnixMilli())
	return s.wrap(err, fmt.Sprintf("create client %q", c.Name))
}

const clientSelect = `SELECT c.id, c.name, c.time_zone, c.currency,
	(SELECT COUNT(*) FROM funnels f WHERE f.client_id = c.id) FROM clients c`

func scanClient(sc scanner) (ClientDetail, error) {
	var c ClientDetail
	err := sc.Scan(&c.ID, &c.Name, &c.TimeZone, &c.Currency, &c.Funnels)
	return c, err
}

// ListClients returns every client by name.
func (s *Store) ListClients(ctx context.Context) ([]ClientDetail, error) {
	return queryList(ctx, s, "list clients", scanClient, clientSelect+" ORDER BY c.name")
}

// GetClient returns one client, or ErrNotFound.
func (s *Store) GetClient(ctx context.Context, id string) (ClientDetail, error) {
	c, err := scanClient(s.r.QueryRowContext(ctx, clientSelect+" WHERE c.id = $1", id))
	return c, s.wrap(err, "client "+id)
}

// SetClientSettings sets a client's time zone and default currency, or
// returns ErrNotFound.
func (s *Store) SetClientSettings(ctx context.Context, id, timeZone, currency string) error {
	return s.updateOne(ctx, "client "+id, "UPDATE clients SET time_zone = $2, currency = $3 WHERE id = $1", id, timeZone, currency)
}

// FunnelSummary is a funnel with its client and number of stages.
type FunnelSummary struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name"`
	Stages     int    `json:"stages"`
}

const funnelSelect = `SELECT f.id, f.name, c.id, c.name, (SELECT COUNT(*) FROM stages s WHERE s.funnel_id = f.id)
	FROM funnels f JOIN clients c ON c.id = f.client_id`

func scanFunnel(sc scanner) (FunnelSummary, error) {
	var f FunnelSummary
	err := sc.Scan(&f.ID, &f.Name, &f.ClientID, &f.ClientName, &f.Stages)
	return f, err
}

// ListFunnels returns every funnel by client and name.
func (s *Store) ListFunnels(ctx context.Context) ([]FunnelSummary, error) {
	return queryList(ctx, s, "list funnels", scanFunnel, funnelSelect+" ORDER BY c.name, f.name")
}

// GetFunnel returns one funnel, or ErrNotFound.
func (s *Store) GetFunnel(ctx context.Context, id string) (FunnelSummary, error) {
	f, err := scanFunnel(s.r.QueryRowContext(ctx, funnelSelect+" WHERE f.id = $1", id))
	return f, s.wrap(err, "funnel "+id)
}

// FunnelStages returns a funnel's stages in position order.
func (s *Store) FunnelStages(ctx context.Context, funnelID string) ([]Stage, error) {
	return queryList(ctx, s, "list stages", scanStage, stageSelect+" WHERE s.funnel_id = $1 ORDER BY s.position", funnelID)
}

func (s *Store) updateOne(ctx context.Context, what, q string, args ...any) error {
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return s.wrap(err, what)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// RenameFunnel renames a funnel; ErrConflict if its client has one of that name.
func (s *Store) RenameFunnel(ctx context.Context, id, name string) error {
	return s.updateOne(ctx, "funnel "+id, "UPDATE funnels SET name = $2 WHERE id = $1", id, name)
}

// RenameStage renames a stage.
func (s *Store) RenameStage(ctx context.Context, id, name string) error {
	return s.updateOne(ctx, "stage "+id, "UPDATE stages SET name = $2 WHERE id = $1", id, name)
}

// MoveStage puts a stage at position pos (1-based, clamped to the funnel's
// stages) and shifts the others, keeping positions 1…n.
func (s *Store) MoveStage(ctx context.Context, id string, pos int) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		var funnelID string
		if err := tx.QueryRowContext(ctx, "SELECT funnel_id FROM stages WHERE id = $1", id).Scan(&funnelID); err != nil {
			return s.wrap(err, "stage "+id)
		}
		if s.Postgres() { // two moves in one funnel at once must not interleave
			if _, err := tx.ExecContext(ctx, "SELECT id FROM funnels WHERE id = $1 FOR UPDATE", funnelID); err != nil {
				return s.wrap(err, "lock funnel")
			}
		}
		order, err := queryStrings(ctx, tx, "SELECT id FROM stages WHERE funnel_id = $1 AND id <> $2 ORDER BY position", funnelID, id)
		if err != nil {
			return s.wrap(err, "move stage")
		}
		pos = min(max(pos, 1), len(order)+1)
		order = append(order[:pos-1], append([]string{id}, order[pos-1:]...)...)
		// UNIQUE (funnel_id, position) holds after every statement, so park
		// each stage at a negative position first.
		for i, sid := range order {
			if _, err := tx.ExecContext(ctx, "UPDATE stages SET position = $2 WHERE id = $1", sid, -(i + 1)); err != nil {
				return s.wrap(err, "move stage")
			}
		}
		for i, sid := range order {
			if _, err := tx.ExecContext(ctx, "UPDATE stages SET position = $2 WHERE id = $1", sid, i+1); err != nil {
				return s.wrap(err, "move stage")
			}
		}
		return nil
	})
}

// AddStage appends a stage, with its first token, to a funnel and returns its
// position.
func (s *Store) AddStage(ctx context.Context, funnelID string, st NewStage, now time.Time) (int, error) {
	var pos int
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if s.Postgres() {
			if _, err := tx.ExecContext(ctx, "SELECT id FROM funnels WHERE id = $1 FOR UPDATE", funnelID); err != nil {
				return s.wrap(err, "lock funnel")
			}
		}
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM funnels WHERE id = $1", funnelID).Scan(&one); err != nil {
			return s.wrap(err, "funnel "+funnelID)
		}
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(position), 0) + 1 FROM stages WHERE funnel_id = $1", funnelID).Scan(&pos); err != nil {
			return s.wrap(err, "add stage")
		}
		ms := now.UnixMilli()
		if _, err := tx.ExecContext(ctx, "INSERT INTO stages (id, funnel_id, name, position, hourly_limit, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
			st.ID, funnelID, st.Name, pos, DefaultHourlyLimit, ms); err != nil {
			return s.wrap(err, "add stage")
		}
		return insertToken(ctx, tx, s, st.ID, st.Token, ms)
	})
	return pos, err
}
