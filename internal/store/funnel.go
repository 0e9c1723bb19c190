package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DefaultHourlyLimit is a new stage's limit of accepted events per UTC hour.
const DefaultHourlyLimit = 1000

// Client is one advertiser.
type Client struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Funnel is an ordered list of stages of one client.
type Funnel struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	ClientID string `json:"-"`
}

// Stage is one step of a funnel.
type Stage struct {
	ID          string `json:"id"`
	FunnelID    string `json:"funnel_id"`
	FunnelName  string `json:"funnel_name"`
	ClientName  string `json:"client_name"`
	Name        string `json:"name"`
	Position    int    `json:"position"`
	HourlyLimit int    `json:"hourly_limit"`
	// PixelHourlyLimit is the Pixel's own quota of the stage, counted apart
	// from the Webhook API's.
	PixelHourlyLimit int    `json:"pixel_hourly_limit"`
	TokenHint        string `json:"token_hint"`
}

// StageToken is a webhook token as stored: its keyed hash, a sealed copy and a
// hint safe to display.
type StageToken struct {
	ID     string
	Hash   []byte
	Sealed string
	Hint   string
}

// NewStage is a stage to create, with its first token.
type NewStage struct {
	ID    string
	Name  string
	Token StageToken
}

// CreateFunnel creates a funnel with its stages (positions 1, 2, …) under the
// named client, creating the client if it is new.
func (s *Store) CreateFunnel(ctx context.Context, clientID, clientName, funnelID, funnelName string, stages []NewStage, now time.Time) (Client, Funnel, error) {
	var c Client
	f := Funnel{ID: funnelID, Name: funnelName}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		ms := now.UnixMilli()
		if _, err := tx.ExecContext(ctx, "INSERT INTO clients (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
			clientID, clientName, ms); err != nil {
			return s.wrap(err, "create client")
		}
		if err := tx.QueryRowContext(ctx, "SELECT id, name FROM clients WHERE name = $1", clientName).Scan(&c.ID, &c.Name); err != nil {
			return s.wrap(err, "create client")
		}
		f.ClientID = c.ID
		if _, err := tx.ExecContext(ctx, "INSERT INTO funnels (id, client_id, name, created_at) VALUES ($1, $2, $3, $4)",
			f.ID, c.ID, f.Name, ms); err != nil {
			return s.wrap(err, fmt.Sprintf("create funnel %q", funnelName))
		}
		for i, st := range stages {
			if _, err := tx.ExecContext(ctx, "INSERT INTO stages (id, funnel_id, name, position, hourly_limit, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
				st.ID, f.ID, st.Name, i+1, DefaultHourlyLimit, ms); err != nil {
				return s.wrap(err, "create stage")
			}
			if err := insertToken(ctx, tx, s, st.ID, st.Token, ms); err != nil {
				return err
			}
		}
		return nil
	})
	return c, f, err
}

func insertToken(ctx context.Context, tx *sql.Tx, s *Store, stageID string, t StageToken, ms int64) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO stage_tokens (id, stage_id, token_hash, sealed, hint, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
		t.ID, stageID, t.Hash, t.Sealed, t.Hint, ms)
	return s.wrap(err, "store token")
}

const stageSelect = `SELECT s.id, s.funnel_id, f.name, c.name, s.name, s.position, s.hourly_limit, s.pixel_hourly_limit,
	COALESCE((SELECT t.hint FROM stage_tokens t WHERE t.stage_id = s.id AND t.expires_at IS NULL), '')
	FROM stages s JOIN funnels f ON f.id = s.funnel_id JOIN clients c ON c.id = f.client_id`

func scanStage(sc scanner) (Stage, error) {
	var st Stage
	err := sc.Scan(&st.ID, &st.FunnelID, &st.FunnelName, &st.ClientName, &st.Name, &st.Position, &st.HourlyLimit, &st.PixelHourlyLimit, &st.TokenHint)
	return st, err
}

// ListStages returns every stage, grouped by client and funnel, in position order.
func (s *Store) ListStages(ctx context.Context) ([]Stage, error) {
	return queryList(ctx, s, "list stages", scanStage, stageSelect+" ORDER BY c.name, f.name, s.position")
}

// GetStage returns one stage, or ErrNotFound.
func (s *Store) GetStage(ctx context.Context, id string) (Stage, error) {
	st, err := scanStage(s.r.QueryRowContext(ctx, stageSelect+" WHERE s.id = $1", id))
	return st, s.wrap(err, "stage "+id)
}

// RotateToken makes t the stage's current token. The token it replaces keeps
// working until oldUntil (pass now to revoke it at once); any older token still
// live stops now, so a stage never has more than two.
func (s *Store) RotateToken(ctx context.Context, stageID string, t StageToken, now, oldUntil time.Time) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1 FROM stages WHERE id = $1", stageID).Scan(&one); err != nil {
			return s.wrap(err, "stage "+stageID)
		}
		ms := now.UnixMilli()
		if _, err := tx.ExecContext(ctx, "UPDATE stage_tokens SET expires_at = $2 WHERE stage_id = $1 AND expires_at > $2",
			stageID, ms); err != nil {
			return s.wrap(err, "rotate token")
		}
		if _, err := tx.ExecContext(ctx, "UPDATE stage_tokens SET expires_at = $2 WHERE stage_id = $1 AND expires_at IS NULL",
			stageID, oldUntil.UnixMilli()); err != nil {
			return s.wrap(err, "rotate token")
		}
		return insertToken(ctx, tx, s, stageID, t, ms)
	})
}

// CurrentToken returns the sealed current token of a stage, for display.
func (s *Store) CurrentToken(ctx context.Context, stageID string) (StageToken, error) {
	var t StageToken
	err := s.r.QueryRowContext(ctx, "SELECT id, token_hash, sealed, hint FROM stage_tokens WHERE stage_id = $1 AND expires_at IS NULL",
		stageID).Scan(&t.ID, &t.Hash, &t.Sealed, &t.Hint)
	return t, s.wrap(err, "token of stage "+stageID)
}

// SetHourlyLimit changes how many events a stage accepts per UTC hour.
func (s *Store) SetHourlyLimit(ctx context.Context, stageID string, n int) error {
	return s.setLimit(ctx, "hourly_limit", stageID, n)
}

// SetPixelHourlyLimit changes how many events a stage accepts from the Pixel
// per UTC hour.
func (s *Store) SetPixelHourlyLimit(ctx context.Context, stageID string, n int) error {
	return s.setLimit(ctx, "pixel_hourly_limit", stageID, n)
}

func (s *Store) setLimit(ctx context.Context, column, stageID string, n int) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE stages SET "+column+" = $2 WHERE id = $1", stageID, n)
		if err != nil {
			return s.wrap(err, "set limit")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("stage %s: %w", stageID, ErrNotFound)
		}
		return nil
	})
}
