package store

import (
	"context"
	"database/sql"
	"time"
)

// User is a dashboard user.
type User struct {
	ID           string
	Email        string
	PasswordHash string
}

// CreateUser adds a user; ErrConflict if the email is taken.
func (s *Store) CreateUser(ctx context.Context, u User, now time.Time) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
		u.ID, u.Email, u.PasswordHash, now.UnixMilli())
	return s.wrap(err, "create user "+u.Email)
}

// UserByEmail returns the user with that (normalised) email, or ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	var u User
	err := s.r.QueryRowContext(ctx, "SELECT id, email, password_hash FROM users WHERE email = $1", email).
		Scan(&u.ID, &u.Email, &u.PasswordHash)
	return u, s.wrap(err, "user "+email)
}

// CountUsers says how many users exist; the login page explains the first run
// when there are none.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n)
	return n, s.wrap(err, "count users")
}

// SetPassword replaces a user's password hash and ends all their sessions.
func (s *Store) SetPassword(ctx context.Context, email, hash string) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		var id string
		if err := tx.QueryRowContext(ctx, "UPDATE users SET password_hash = $2 WHERE email = $1 RETURNING id", email, hash).Scan(&id); err != nil {
			return s.wrap(err, "user "+email)
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = $1", id)
		return s.wrap(err, "end sessions")
	})
}

// Session is a logged-in user's session as stored (its id only as a hash).
type Session struct {
	IDHash     []byte
	User       User
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute expiry
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, idHash []byte, userID string, now, expires time.Time) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $3, $4)",
		idHash, userID, now.UnixMilli(), expires.UnixMilli())
	return s.wrap(err, "create session")
}

// SessionByHash returns a session and its user, or ErrNotFound. Expiry is the
// caller's to judge.
func (s *Store) SessionByHash(ctx context.Context, idHash []byte) (Session, error) {
	var ss Session
	var created, seen, expires int64
	err := s.r.QueryRowContext(ctx, `SELECT u.id, u.email, u.password_hash, s.created_at, s.last_seen_at, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1`, idHash).
		Scan(&ss.User.ID, &ss.User.Email, &ss.User.PasswordHash, &created, &seen, &expires)
	if err != nil {
		return ss, s.wrap(err, "session")
	}
	ss.IDHash = idHash
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = time.UnixMilli(created), time.UnixMilli(seen), time.UnixMilli(expires)
	return ss, nil
}

// TouchSession records activity on a session (for the idle expiry).
func (s *Store) TouchSession(ctx context.Context, idHash []byte, now time.Time) error {
	_, err := s.w.ExecContext(ctx, "UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1", idHash, now.UnixMilli())
	return s.wrap(err, "touch session")
}

// DeleteSession ends a session (logout, expiry).
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	_, err := s.w.ExecContext(ctx, "DELETE FROM sessions WHERE id_hash = $1", idHash)
	return s.wrap(err, "delete session")
}

// PruneSessions deletes sessions past their absolute expiry or idle since
// idleBefore.
func (s *Store) PruneSessions(ctx context.Context, now, idleBefore time.Time) error {
	_, err := s.w.ExecContext(ctx, "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2", now.UnixMilli(), idleBefore.UnixMilli())
	return s.wrap(err, "prune sessions")
}

// CountLoginAttempt adds one attempt to the counter of (scope, key) in the
// window starting at window and returns the count including it. The increment
// is one atomic statement, so concurrent attempts in several processes never
// read the same count. Windows before prune are deleted on the way.
func (s *Store) CountLoginAttempt(ctx context.Context, scope, key string, window, prune time.Time) (int, error) {
	var n int
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM login_attempts WHERE window_start < $1", prune.UnixMilli()); err != nil {
			return s.wrap(err, "prune login attempts")
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO login_attempts (scope, key, window_start, n) VALUES ($1, $2, $3, 1)
			ON CONFLICT (scope, key, window_start) DO UPDATE SET n = login_attempts.n + 1 RETURNING n`,
			scope, key, window.UnixMilli()).Scan(&n)
		return s.wrap(err, "count login attempt")
	})
	return n, err
}

// ClearLoginAttempts forgets the attempts of (scope, key), after a success.
func (s *Store) ClearLoginAttempts(ctx context.Context, scope, key string) error {
	_, err := s.w.ExecContext(ctx, "DELETE FROM login_attempts WHERE scope = $1 AND key = $2", scope, key)
	return s.wrap(err, "clear login attempts")
}

// AuditEntry is one admin action: who did what to which object.
type AuditEntry struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
}

// Audit records an admin action.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	_, err := s.w.ExecContext(ctx, "INSERT INTO admin_audit (id, at, actor, action, target) VALUES ($1, $2, $3, $4, $5)",
		e.ID, e.At.UnixMilli(), e.Actor, e.Action, e.Target)
	return s.wrap(err, "audit "+e.Action)
}

// ListAudit returns the newest admin actions first.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	return queryList(ctx, s, "list audit", scanAudit, "SELECT id, at, actor, action, target FROM admin_audit ORDER BY id DESC LIMIT $1", limit)
}

func scanAudit(sc scanner) (AuditEntry, error) {
	var e AuditEntry
	var at int64
	err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target)
	e.At = time.UnixMilli(at).UTC()
	return e, err
}
