// Package auth is who may use the dashboard and the admin API: users and
// their argon2id passwords, database-backed sessions with per-session CSRF
// tokens, the login limiter, admin API keys, and the audit trail of admin
// actions.
package auth

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// Errors of the auth domain; only the HTTP layer turns them into statuses.
var (
	// ErrBadCredentials means the email or password is wrong; which one is
	// never said.
	ErrBadCredentials = errors.New("auth: wrong email or password")
	// ErrThrottled means too many login attempts for the account or address.
	ErrThrottled = errors.New("auth: too many login attempts")
	// ErrNoSession means the cookie names no live session.
	ErrNoSession = errors.New("auth: no session")
	// ErrUnauthorized means an API key is missing, malformed, unknown or revoked.
	ErrUnauthorized = errors.New("auth: unauthorized")
)

// InvalidError is input that breaks a rule, named by field.
type InvalidError struct{ Field, Message string }

func (e *InvalidError) Error() string { return e.Field + " " + e.Message }

// Defaults of Options.
const (
	DefaultIdleTimeout = 12 * time.Hour
	DefaultMaxAge      = 7 * 24 * time.Hour
	LoginWindow        = 15 * time.Minute
	DefaultEmailLimit  = 10  // attempts per email per window
	DefaultIPLimit     = 100 // attempts per client address per window
)

// touchEvery is how stale a session's last_seen_at may get before a request
// writes it: the idle expiry is exact to this, and a page view is not a write.
const touchEvery = time.Minute

// Options configures a Service. Zero values take the defaults.
type Options struct {
	Store       *store.Store
	Key         secret.Key
	Log         *slog.Logger
	Now         func() time.Time
	IdleTimeout time.Duration // a session unused this long ends
	MaxAge      time.Duration // a session ends this long after login, used or not
	EmailLimit  int
	IPLimit     int
}

// Service authenticates users and API keys.
type Service struct {
	st         *store.Store
	key        secret.Key
	log        *slog.Logger
	now        func() time.Time
	idle, max  time.Duration
	emailLimit int
	ipLimit    int
	slots      chan struct{}
	dummyOnce  sync.Once
	dummyHash  string
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{st: o.Store, key: o.Key, log: o.Log, now: o.Now, idle: o.IdleTimeout, max: o.MaxAge,
		emailLimit: o.EmailLimit, ipLimit: o.IPLimit, slots: make(chan struct{}, hashSlots)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.idle <= 0 {
		s.idle = DefaultIdleTimeout
	}
	if s.max <= 0 {
		s.max = DefaultMaxAge
	}
	if s.emailLimit <= 0 {
		s.emailLimit = DefaultEmailLimit
	}
	if s.ipLimit <= 0 {
		s.ipLimit = DefaultIPLimit
	}
	return s
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

// IdleTimeout and MaxAge are the session lifetimes in force.
func (s *Service) IdleTimeout() time.Duration { return s.idle }

// MaxAge is how long a session lasts at most.
func (s *Service) MaxAge() time.Duration { return s.max }

// NormalizeEmail trims and lower-cases an address and checks its shape.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	at := strings.IndexByte(e, '@')
	if at < 1 || at != strings.LastIndexByte(e, '@') || !strings.Contains(e[at:], ".") || len(e) > 254 ||
		strings.ContainsAny(e, " \t\r\n") {
		return "", &InvalidError{Field: "email", Message: "must be an email address"}
	}
	return e, nil
}

// CreateUser adds a dashboard user; store.ErrConflict if the email is taken.
func (s *Service) CreateUser(ctx context.Context, email, password string) (store.User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return store.User{}, err
	}
	if err := ValidatePassword(password); err != nil {
		return store.User{}, err
	}
	u := store.User{ID: token.NewID("usr"), Email: e, PasswordHash: HashPassword(password)}
	if err := s.st.CreateUser(ctx, u, s.now()); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// SetPassword gives a user a new password and ends their sessions.
func (s *Service) SetPassword(ctx context.Context, email, password string) error {
	e, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	if err := ValidatePassword(password); err != nil {
		return err
	}
	return s.st.SetPassword(ctx, e, HashPassword(password))
}

// dummy is a hash that no password matches, checked for unknown emails so
// that their failure takes as long as a wrong password.
func (s *Service) dummy() string {
	s.dummyOnce.Do(func() {
		s.dummyHash = HashPassword(token.Opaque(24))
	})
	return s.dummyHash
}

// ipKey is the limiter's key for a client address: IPv4 as is, IPv6 by its
// /64, which one host usually holds whole.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// Throttled carries when a throttled login may be tried again.
type Throttled struct{ RetryAt time.Time }

func (t *Throttled) Error() string { return ErrThrottled.Error() }

// Unwrap makes errors.Is(err, ErrThrottled) hold.
func (t *Throttled) Unwrap() error { return ErrThrottled }

// Login checks an email and password and returns a new session's cookie
// value. Every attempt counts against the address's and the email's limits
// before the password is checked (an atomic counter in the database, so the
// limits are exact across processes); a success clears the email's count.
func (s *Service) Login(ctx context.Context, email, password, clientIP string) (string, store.User, error) {
	now := s.now()
	window := now.Truncate(LoginWindow)
	prune := window.Add(-LoginWindow)
	e := strings.ToLower(strings.TrimSpace(email))
	if len(e) > 254 {
		e = e[:254]
	}
	n, err := s.st.CountLoginAttempt(ctx, "ip", ipKey(clientIP), window, prune)
	if err != nil {
		return "", store.User{}, err
	}
	if n > s.ipLimit {
		return "", store.User{}, &Throttled{RetryAt: window.Add(LoginWindow)}
	}
	n, err = s.st.CountLoginAttempt(ctx, "email", e, window, prune)
	if err != nil {
		return "", store.User{}, err
	}
	if n > s.emailLimit {
		return "", store.User{}, &Throttled{RetryAt: window.Add(LoginWindow)}
	}
	u, err := s.st.UserByEmail(ctx, e)
	hash := u.PasswordHash
	if errors.Is(err, store.ErrNotFound) {
		hash = s.dummy()
	} else if err != nil {
		return "", store.User{}, err
	}
	// No stored password is longer than MaxPassword, so a longer attempt is
	// wrong; it is still hashed (cut to size) so that it costs the same.
	tooLong := len(password) > MaxPassword
	if tooLong {
		password = password[:MaxPassword]
	}
	ok, herr := s.checkPassword(ctx, hash, password)
	if err != nil || !ok || tooLong {
		switch {
		case herr == nil || err != nil:
		case ctx.Err() != nil:
			return "", store.User{}, ctx.Err() // gave up waiting for a hashing slot
		default:
			s.log.Error("stored password hash is unreadable", "user_id", u.ID, "err", herr)
		}
		return "", store.User{}, ErrBadCredentials
	}
	if err := s.st.ClearLoginAttempts(ctx, "email", e); err != nil {
		return "", store.User{}, err
	}
	sid, err := s.newSession(ctx, u.ID, now)
	if err != nil {
		return "", store.User{}, err
	}
	// Logins are rare: a good moment to drop sessions that have ended.
	if err := s.st.PruneSessions(ctx, now, now.Add(-s.idle)); err != nil {
		s.log.Warn("prune sessions", "err", err)
	}
	return sid, u, nil
}

func (s *Service) newSession(ctx context.Context, userID string, now time.Time) (string, error) {
	sid := token.Opaque(32)
	if err := s.st.CreateSession(ctx, s.sessionHash(sid), userID, now, now.Add(s.max)); err != nil {
		return "", err
	}
	return sid, nil
}

func (s *Service) sessionHash(sid string) []byte { return s.key.Hash("session:" + sid) }

// Session returns the live session named by a cookie value, recording the
// activity; an expired one is deleted and ErrNoSession returned.
func (s *Service) Session(ctx context.Context, sid string) (store.Session, error) {
	if len(sid) != 43 {
		return store.Session{}, ErrNoSession
	}
	h := s.sessionHash(sid)
	ss, err := s.st.SessionByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return ss, ErrNoSession
	} else if err != nil {
		return ss, err
	}
	now := s.now()
	if !now.Before(ss.ExpiresAt) || now.Sub(ss.LastSeenAt) >= s.idle {
		if err := s.st.DeleteSession(ctx, h); err != nil {
			s.log.Warn("delete expired session", "err", err)
		}
		return ss, ErrNoSession
	}
	if now.Sub(ss.LastSeenAt) >= touchEvery {
		if err := s.st.TouchSession(ctx, h, now); err != nil {
			return ss, err
		}
	}
	return ss, nil
}

// Logout ends the session named by a cookie value.
func (s *Service) Logout(ctx context.Context, sid string) error {
	return s.st.DeleteSession(ctx, s.sessionHash(sid))
}

// PruneSessions deletes expired sessions.
func (s *Service) PruneSessions(ctx context.Context) error {
	now := s.now()
	return s.st.PruneSessions(ctx, now, now.Add(-s.idle))
}

// CSRFToken is the synchronizer token of a session: a keyed hash of its id,
// so it is fixed for the session's life, differs between sessions and does
// not reveal the id.
func (s *Service) CSRFToken(sid string) string {
	return base64.RawURLEncoding.EncodeToString(s.key.Hash("csrf:" + sid))
}

// CheckCSRF reports whether tok is the session's token, in constant time.
func (s *Service) CheckCSRF(sid, tok string) bool {
	return sid != "" && hmac.Equal([]byte(tok), []byte(s.CSRFToken(sid)))
}

// LoginFormToken protects the login form, before any session exists: a keyed
// hash of a random pre-session cookie (double submit, signed).
func (s *Service) LoginFormToken(pre string) string {
	return base64.RawURLEncoding.EncodeToString(s.key.Hash("login-csrf:" + pre))
}

// CheckLoginFormToken reports whether tok matches the pre-session cookie.
func (s *Service) CheckLoginFormToken(pre, tok string) bool {
	return len(pre) >= 22 && hmac.Equal([]byte(tok), []byte(s.LoginFormToken(pre)))
}

// CreateAPIKey makes a new admin API key and returns it in clear, once.
func (s *Service) CreateAPIKey(ctx context.Context, name, createdBy string) (string, store.APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", store.APIKey{}, &InvalidError{Field: "name", Message: "must be 1 to 200 bytes"}
	}
	plain := token.NewAPIKey()
	k := store.APIKey{ID: token.NewID("key"), Name: name, Hash: s.key.Hash(plain), Hint: token.APIKeyHint(plain),
		CreatedBy: createdBy, CreatedAt: s.now().UTC()}
	if err := s.st.CreateAPIKey(ctx, k); err != nil {
		return "", store.APIKey{}, err
	}
	s.Audit(ctx, createdBy, "api_key.create", k.ID)
	return plain, k, nil
}

// RevokeAPIKey stops a key at once.
func (s *Service) RevokeAPIKey(ctx context.Context, id, actor string) error {
	if err := s.st.RevokeAPIKey(ctx, id, s.now()); err != nil {
		return err
	}
	s.Audit(ctx, actor, "api_key.revoke", id)
	return nil
}

// APIKey returns the live key a bearer value names, or ErrUnauthorized.
// Malformed values are refused without a database read.
func (s *Service) APIKey(ctx context.Context, bearer string) (store.APIKey, error) {
	if !token.IsAPIKey(bearer) {
		return store.APIKey{}, ErrUnauthorized
	}
	k, err := s.st.APIKeyByHash(ctx, s.key.Hash(bearer))
	if errors.Is(err, store.ErrNotFound) {
		return k, ErrUnauthorized
	} else if err != nil {
		return k, err
	}
	now := s.now()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= touchEvery {
		if err := s.st.TouchAPIKey(ctx, k.ID, now); err != nil {
			s.log.Warn("record api key use", "api_key_id", k.ID, "err", err)
		}
	}
	return k, nil
}

// Audit records an admin action in the database and the log. A failure to
// record is logged, not returned: the action itself has happened.
func (s *Service) Audit(ctx context.Context, actor, action, target string) {
	now := s.now()
	e := store.AuditEntry{ID: token.NewEventID(now), At: now, Actor: actor, Action: action, Target: target}
	s.log.Info("admin action", "actor", actor, "action", action, "target", target)
	if err := s.st.Audit(ctx, e); err != nil {
		s.log.Error("record admin action", "action", action, "err", fmt.Errorf("audit: %w", err))
	}
}
