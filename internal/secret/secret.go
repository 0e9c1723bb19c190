// Package secret holds the install's secret key and what is derived from it:
// the keyed hash that verifies webhook tokens and the authenticated encryption
// of values the dashboard must show again (tokens) or send on (credentials).
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MinLen is the shortest secret key accepted, in bytes.
const MinLen = 32

// FileName is the key file created in the data directory when no key is given.
const FileName = "secret.key"

// Key is the install's secret key. Its String method never reveals it.
type Key struct {
	mac  []byte // keys the token hash
	aead cipher.AEAD
	chk  string
}

func (Key) String() string { return "[redacted]" }

// New derives the working keys from master, which must be at least MinLen bytes.
func New(master []byte) (Key, error) {
	if len(master) < MinLen {
		return Key{}, fmt.Errorf("secret key is %d bytes; it must be at least %d", len(master), MinLen)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, master)
		m.Write([]byte("pruuv/" + label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("encrypt"))
	if err != nil {
		return Key{}, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("secret key: %w", err)
	}
	return Key{mac: derive("token-hash"), aead: aead, chk: hex.EncodeToString(derive("check")[:8])}, nil
}

// Parse decodes a key given as text (PRUUV_SECRET_KEY): standard or URL-safe
// base64, or hex, of at least MinLen bytes.
func Parse(s string) (Key, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString,
		base64.RawURLEncoding.DecodeString,
	} {
		if b, err := dec(s); err == nil && len(b) >= MinLen {
			return New(b)
		}
	}
	return Key{}, fmt.Errorf("secret key must be base64 or hex of at least %d bytes (make one with: openssl rand -base64 32)", MinLen)
}

// LoadOrCreate reads dir/secret.key, creating it with a fresh random key (mode
// 0600) the first time. The key is written to a temporary file and linked into
// place, so processes starting together never read a half-written key and
// all end up with the one that won.
func LoadOrCreate(dir string) (Key, error) {
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := create(dir, path); err != nil {
			return Key{}, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return Key{}, fmt.Errorf("read secret key: %w", err)
	}
	k, err := Parse(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func create(dir, path string) error {
	raw := make([]byte, MinLen)
	rand.Read(raw)
	f, err := os.CreateTemp(dir, ".secret-*.tmp")
	if err != nil {
		return fmt.Errorf("create secret key: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(raw) + "\n")
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o600)
	}
	if err != nil {
		return fmt.Errorf("write secret key: %w", err)
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create secret key %s: %w", path, err)
	}
	return nil
}

// Check is a short fingerprint of the key, stored in the database so a server
// started with a different key refuses to run instead of rejecting every token.
func (k Key) Check() string { return k.chk }

// Hash is the keyed digest under which a token is stored and looked up. A
// database dump alone is not enough even to test guesses against it.
func (k Key) Hash(tok string) []byte {
	m := hmac.New(sha256.New, k.mac)
	m.Write([]byte(tok))
	return m.Sum(nil)
}

// Seal encrypts plaintext bound to aad (where the value lives, e.g.
// "stage_tokens:<id>"), so a ciphertext copied elsewhere does not decrypt.
func (k Key) Seal(plaintext, aad string) string {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	rand.Read(nonce)
	return "v1." + base64.RawURLEncoding.EncodeToString(k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad)))
}

// ErrDecrypt means a sealed value was not made by this key for this place.
var ErrDecrypt = errors.New("secret: value does not decrypt with this key and place")

// Open decrypts a value made by Seal with the same aad.
func (k Key) Open(sealed, aad string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, "v1."))
	if err != nil || !strings.HasPrefix(sealed, "v1.") || len(b) < k.aead.NonceSize() {
		return "", ErrDecrypt
	}
	n := k.aead.NonceSize()
	out, err := k.aead.Open(nil, b[:n], b[n:], []byte(aad))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(out), nil
}
