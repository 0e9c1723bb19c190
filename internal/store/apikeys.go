package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// APIKey is an admin API key as stored: a keyed hash of the key and a hint
// safe to display.
type APIKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Hash       []byte     `json:"-"`
	Hint       string     `json:"hint"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// CreateAPIKey stores a new key.
func (s *Store) CreateAPIKey(ctx context.Context, k APIKey) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO api_keys (id, name, key_hash, hint, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
		k.ID, k.Name, k.Hash, k.Hint, k.CreatedBy, k.CreatedAt.UnixMilli())
	return s.wrap(err, "create api key")
}

const apiKeySelect = "SELECT id, name, key_hash, hint, created_by, created_at, last_used_at, revoked_at FROM api_keys"

func scanAPIKey(sc scanner) (APIKey, error) {
	var k APIKey
	var created int64
	var used, revoked sql.NullInt64
	if err := sc.Scan(&k.ID, &k.Name, &k.Hash, &k.Hint, &k.CreatedBy, &created, &used, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt = time.UnixMilli(created).UTC()
	if used.Valid {
		t := time.UnixMilli(used.Int64).UTC()
		k.LastUsedAt = &t
	}
	if revoked.Valid {
		t := time.UnixMilli(revoked.Int64).UTC()
		k.RevokedAt = &t
	}
	return k, nil
}

// APIKeyByHash returns the live (unrevoked) key with that hash, or ErrNotFound.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error) {
	k, err := scanAPIKey(s.r.QueryRowContext(ctx, apiKeySelect+" WHERE key_hash = $1 AND revoked_at IS NULL", hash))
	return k, s.wrap(err, "api key")
}

// ListAPIKeys returns every key, revoked ones included, newest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	return queryList(ctx, s, "list api keys", scanAPIKey, apiKeySelect+" ORDER BY created_at DESC, id")
}

// RevokeAPIKey stops a key at once; revoking a revoked key changes nothing.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1", id, now.UnixMilli())
	if err != nil {
		return s.wrap(err, "revoke api key")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("api key %s: %w", id, ErrNotFound)
	}
	return nil
}

// TouchAPIKey records that a key was used.
func (s *Store) TouchAPIKey(ctx context.Context, id string, now time.Time) error {
	_, err := s.w.ExecContext(ctx, "UPDATE api_keys SET last_used_at = $2 WHERE id = $1", id, now.UnixMilli())
	return s.wrap(err, "touch api key")
}
