package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

func TestPasswordRoundTrip(t *testing.T) {
	h := auth.HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id with the documented parameters", h)
	}
	if ok, err := auth.CheckPassword(h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("right password: %v, %v", ok, err)
	}
	for _, wrong := range []string{"", "correct horse batter", "Correct horse battery", "correct horse battery "} {
		if ok, err := auth.CheckPassword(h, wrong); ok || err != nil {
			t.Errorf("wrong password %q: %v, %v", wrong, ok, err)
		}
	}
	if h == auth.HashPassword("correct horse battery") {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := auth.CheckPassword(bad, "x"); !errors.Is(err, auth.ErrBadHash) {
			t.Errorf("CheckPassword(%q) = %v, want ErrBadHash", bad, err)
		}
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 11, 26, 12, 0, 30, 0, time.UTC)} }
func key(t *testing.T) secret.Key {
	k, err := secret.Parse(pruuvtest.SecretKey)
	must(t, err)
	return k
}
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func eachBackend(t *testing.T, fn func(t *testing.T, open func() *store.Store)) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			fn(t, func() *store.Store {
				st, err := store.Open(context.Background(), store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: pruuvtest.Logger(t)})
				must(t, err)
				t.Cleanup(func() { st.Close() })
				return st
			})
		})
	}
}

func TestLoginSessionsAndExpiry(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		clk := newClock()
		a := auth.New(auth.Options{Store: open(), Key: key(t), Now: clk.now, IdleTimeout: time.Hour, MaxAge: 3 * time.Hour})
		if _, err := a.CreateUser(ctx, " Ann@Example.com ", "short"); err == nil {
			t.Fatal("a 5-character password was accepted")
		}
		u, err := a.CreateUser(ctx, " Ann@Example.com ", "correct horse battery")
		must(t, err)
		if u.Email != "ann@example.com" {
			t.Fatalf("email stored as %q", u.Email)
		}
		if _, err := a.CreateUser(ctx, "ann@example.com", "another long password"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second user with the same email: %v", err)
		}
		if _, _, err := a.Login(ctx, "ann@example.com", "wrong password!", "192.0.2.1"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
		if _, _, err := a.Login(ctx, "nobody@example.com", "correct horse battery", "192.0.2.1"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("unknown email: %v", err)
		}
		// A password of the longest length allowed, and an attempt that
		// starts with it but goes on: the longer one is wrong, not cut.
		long := strings.Repeat("x", auth.MaxPassword)
		_, err = a.CreateUser(ctx, "long@example.com", long)
		must(t, err)
		if _, _, err := a.Login(ctx, "long@example.com", long+"tail", "192.0.2.9"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("a longer password that starts with the right one: %v", err)
		}
		if _, _, err := a.Login(ctx, "long@example.com", long, "192.0.2.9"); err != nil {
			t.Fatalf("the longest password: %v", err)
		}
		sid, _, err := a.Login(ctx, "ANN@example.com", "correct horse battery", "192.0.2.1")
		must(t, err)

		// A second process sharing the database sees the session.
		other := auth.New(auth.Options{Store: open(), Key: key(t), Now: clk.now, IdleTimeout: time.Hour, MaxAge: 3 * time.Hour})
		if ss, err := other.Session(ctx, sid); err != nil || ss.User.Email != "ann@example.com" {
			t.Fatalf("session in another process: %+v, %v", ss, err)
		}
		if _, err := a.Session(ctx, sid[:42]+"x"); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("altered session id: %v", err)
		}
		// Activity within the idle timeout keeps it alive up to the absolute expiry.
		for range 3 {
			clk.add(50 * time.Minute)
			if _, err := a.Session(ctx, sid); err != nil {
				t.Fatalf("active session ended at %s: %v", clk.now(), err)
			}
		}
		clk.add(40 * time.Minute) // 3h10 after login, active 40 minutes ago
		if _, err := a.Session(ctx, sid); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("session past its absolute expiry: %v", err)
		}

		sid2, _, err := a.Login(ctx, "ann@example.com", "correct horse battery", "192.0.2.1")
		must(t, err)
		clk.add(59 * time.Minute)
		_, err = a.Session(ctx, sid2)
		must(t, err)
		clk.add(60 * time.Minute)
		if _, err := a.Session(ctx, sid2); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("session idle for an hour: %v", err)
		}

		sid3, _, err := a.Login(ctx, "ann@example.com", "correct horse battery", "192.0.2.1")
		must(t, err)
		must(t, a.Logout(ctx, sid3))
		if _, err := other.Session(ctx, sid3); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("session after logout: %v", err)
		}

		// A new password ends every session.
		sid4, _, err := a.Login(ctx, "ann@example.com", "correct horse battery", "192.0.2.1")
		must(t, err)
		must(t, a.SetPassword(ctx, "ann@example.com", "a brand new password"))
		if _, err := a.Session(ctx, sid4); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("session after a password change: %v", err)
		}
		if _, _, err := a.Login(ctx, "ann@example.com", "a brand new password", "192.0.2.1"); err != nil {
			t.Fatalf("new password: %v", err)
		}
	})
}

func TestCSRFTokensArePerSession(t *testing.T) {
	a := auth.New(auth.Options{Key: key(t)})
	s1, s2 := strings.Repeat("a", 43), strings.Repeat("b", 43)
	t1 := a.CSRFToken(s1)
	if !a.CheckCSRF(s1, t1) || a.CheckCSRF(s2, t1) || a.CheckCSRF(s1, "") || a.CheckCSRF("", a.CSRFToken("")) {
		t.Fatal("a session's CSRF token must pass for it and fail for any other")
	}
	if strings.Contains(t1, s1) || a.CSRFToken(s2) == t1 {
		t.Fatal("CSRF tokens must differ between sessions and not contain the id")
	}
	pre := strings.Repeat("p", 32)
	if !a.CheckLoginFormToken(pre, a.LoginFormToken(pre)) || a.CheckLoginFormToken(pre, t1) || a.CheckLoginFormToken("short", a.LoginFormToken("short")) {
		t.Fatal("login form token check")
	}
}

func TestLoginLimiter(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		clk := newClock()
		st := open()
		opts := auth.Options{Store: st, Key: key(t), Now: clk.now, EmailLimit: 3, IPLimit: 5}
		a := auth.New(opts)
		_, err := a.CreateUser(ctx, "ann@example.com", "correct horse battery")
		must(t, err)
		// Two "processes" on one database share the counters.
		opts.Store = open()
		b := auth.New(opts)
		for i, s := range []*auth.Service{a, b, a} {
			if _, _, err := s.Login(ctx, "ann@example.com", "wrong password!", "192.0.2.1"); !errors.Is(err, auth.ErrBadCredentials) {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		// The fourth attempt on the account is refused even with the right password.
		_, _, err = b.Login(ctx, "ann@example.com", "correct horse battery", "192.0.2.2")
		var th *auth.Throttled
		if !errors.As(err, &th) || !th.RetryAt.Equal(time.Date(2026, 11, 26, 12, 15, 0, 0, time.UTC)) {
			t.Fatalf("fourth attempt: %v", err)
		}
		// Another account from the same address still works until the address's limit.
		if _, _, err := a.Login(ctx, "bob@example.com", "wrong password!", "192.0.2.1"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("other account: %v", err)
		}
		// 192.0.2.1 has made 4 attempts; the 5th is allowed, the 6th is not.
		if _, _, err := a.Login(ctx, "carol@example.com", "wrong password!", "192.0.2.1"); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("5th from the address: %v", err)
		}
		if _, _, err := a.Login(ctx, "dave@example.com", "wrong password!", "192.0.2.1"); !errors.Is(err, auth.ErrThrottled) {
			t.Fatalf("6th from the address: %v", err)
		}
		// IPv6 addresses count by /64.
		for i := range 5 {
			a.Login(ctx, "v6@example.com", "wrong password!", "2001:db8::"+string(rune('1'+i)))
		}
		if _, _, err := a.Login(ctx, "v6b@example.com", "wrong password!", "2001:db8::ff"); !errors.Is(err, auth.ErrThrottled) {
			t.Fatalf("6th from one /64: %v", err)
		}
		// The next window starts afresh; a success clears the account's count.
		clk.add(15 * time.Minute)
		for range 2 {
			a.Login(ctx, "ann@example.com", "wrong password!", "192.0.2.3")
		}
		if _, _, err := a.Login(ctx, "ann@example.com", "correct horse battery", "192.0.2.3"); err != nil {
			t.Fatalf("login in a new window: %v", err)
		}
		for i := range 3 {
			if _, _, err := a.Login(ctx, "ann@example.com", "wrong password!", "192.0.2.4"); !errors.Is(err, auth.ErrBadCredentials) {
				t.Fatalf("attempt %d after a success: %v", i+1, err)
			}
		}
	})
}

func TestLoginLimitIsExactUnderConcurrency(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		clk := newClock()
		var svcs []*auth.Service
		for range 2 {
			svcs = append(svcs, auth.New(auth.Options{Store: open(), Key: key(t), Now: clk.now, EmailLimit: 7, IPLimit: 1000}))
		}
		var mu sync.Mutex
		checked := 0
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				_, _, err := svcs[i%2].Login(ctx, "target@example.com", "wrong password!", "192.0.2.9")
				if errors.Is(err, auth.ErrBadCredentials) {
					mu.Lock()
					checked++
					mu.Unlock()
				} else if !errors.Is(err, auth.ErrThrottled) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if checked != 7 {
			t.Fatalf("%d of 20 concurrent attempts reached the password check, want exactly the limit 7", checked)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		clk := newClock()
		a := auth.New(auth.Options{Store: open(), Key: key(t), Now: clk.now})
		plain, k, err := a.CreateAPIKey(ctx, "CRM sync", "cli")
		must(t, err)
		if !token.IsAPIKey(plain) || !strings.HasPrefix(plain, "pruuv_key_") || k.Hint != "pruuv_key_…"+plain[len(plain)-4:] {
			t.Fatalf("key %q hint %q", plain, k.Hint)
		}
		got, err := a.APIKey(ctx, plain)
		if err != nil || got.ID != k.ID {
			t.Fatalf("valid key: %+v, %v", got, err)
		}
		other := token.NewAPIKey() // well-formed, never issued
		last := "x"
		if plain[len(plain)-1] == 'x' {
			last = "y"
		}
		for _, bad := range []string{"", "pruuv_key_", plain[:len(plain)-1] + last, other, strings.Replace(plain, "pruuv_key_", "pruuv_whk_", 1)} {
			if _, err := a.APIKey(ctx, bad); !errors.Is(err, auth.ErrUnauthorized) {
				t.Errorf("APIKey(%q) = %v, want ErrUnauthorized", bad, err)
			}
		}
		clk.add(time.Second)
		must(t, a.RevokeAPIKey(ctx, k.ID, "cli"))
		if _, err := a.APIKey(ctx, plain); !errors.Is(err, auth.ErrUnauthorized) {
			t.Fatalf("revoked key: %v", err)
		}
		if err := a.RevokeAPIKey(ctx, "key_nope", "cli"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		audit, err := open().ListAudit(ctx, 10)
		must(t, err)
		if len(audit) != 2 || audit[0].Action != "api_key.revoke" || audit[1].Action != "api_key.create" || audit[0].Target != k.ID {
			t.Fatalf("audit trail %+v", audit)
		}
	})
}

func BenchmarkCheckPassword(b *testing.B) {
	h := auth.HashPassword("correct horse battery")
	for b.Loop() {
		auth.CheckPassword(h, "correct horse battery")
	}
}
