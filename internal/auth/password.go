package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of new hashes: the first of OWASP's recommended
// configurations (19 MiB, 2 passes, 1 lane): about 70 ms a check on the
// project's shared 2-core machines (BenchmarkCheckPassword). They are written
// into each hash, so raising them later leaves old hashes verifiable.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Password length limits in bytes. The upper bound only stops abuse: argon2
// takes any length.
const (
	MinPassword = 12
	MaxPassword = 1024
)

// ErrBadHash means a stored hash is not an argon2id PHC string Pruuv can read.
var ErrBadHash = errors.New("auth: unreadable password hash")

// HashPassword returns the argon2id hash of pw in PHC string form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(pw string) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	sum := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// CheckPassword reports whether pw matches the PHC hash, comparing in
// constant time.
func CheckPassword(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, ErrBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, ErrBadHash
	}
	// Bounds keep a tampered row from making one login cost gigabytes.
	if m < 8 || m > 1<<20 || t < 1 || t > 16 || p < 1 || p > 16 {
		return false, ErrBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, ErrBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, ErrBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// hashSlots bounds how many argon2 computations run at once, so a burst of
// logins costs at most hashSlots × 19 MiB.
const hashSlots = 4

// checkPassword is CheckPassword within the concurrency bound.
func (s *Service) checkPassword(ctx context.Context, hash, pw string) (bool, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.slots }()
	return CheckPassword(hash, pw)
}

// ValidatePassword says what is wrong with a new password, if anything.
func ValidatePassword(pw string) error {
	if len(pw) < MinPassword {
		return &InvalidError{Field: "password", Message: fmt.Sprintf("must be at least %d characters", MinPassword)}
	}
	if len(pw) > MaxPassword {
		return &InvalidError{Field: "password", Message: fmt.Sprintf("must be at most %d bytes", MaxPassword)}
	}
	return nil
}
