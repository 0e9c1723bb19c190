// Package token makes the random identifiers and credentials Pruuv hands out:
// unguessable public ids, time-ordered event ids and checksummed webhook tokens.
package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"net/http"
	"strings"
	"time"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// WebhookPrefix starts every webhook token, so secret scanners and people can
// recognise one; the underscore-only alphabet lets a double click select it whole.
const WebhookPrefix = "pruuv_whk_"

const (
	secretLen   = 32 // base62 characters, about 190 bits
	checksumLen = 6
	// WebhookLen is the exact length of a webhook token.
	WebhookLen = len(WebhookPrefix) + secretLen + 1 + checksumLen
)

// Opaque returns n random bytes, base64url-encoded without padding: for
// secrets that need no prefix or checksum, such as session ids.
func Opaque(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomBase62(n int) string {
	// Rejection sampling keeps every character uniform: 248 = 4·62.
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		rand.Read(buf) // crypto/rand.Read never fails
		for _, b := range buf {
			if b < 248 && len(out) < n {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out)
}

func encodeBase62(v uint64, width int) string {
	out := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return string(out)
}

// NewID returns prefix + "_" + 22 random base62 characters (131 bits): an id that
// can be shown publicly but not guessed.
func NewID(prefix string) string {
	return prefix + "_" + randomBase62(22)
}

// NewWebhook returns a fresh webhook token: the prefix, 32 random base62
// characters and a CRC32 checksum of everything before it.
func NewWebhook() string {
	body := WebhookPrefix + randomBase62(secretLen)
	return body + "_" + encodeBase62(uint64(crc32.ChecksumIEEE([]byte(body))), checksumLen)
}

// IsWebhook reports whether s has the shape and checksum of a webhook token, so
// garbage is refused without touching the database.
func IsWebhook(s string) bool { return checksummed(s, WebhookPrefix) }

// checksummed reports whether s is prefix, 32 base62 characters, "_" and the
// CRC32 checksum of everything before it.
func checksummed(s, prefix string) bool {
	n := len(prefix) + secretLen + 1 + checksumLen
	if len(s) != n || !strings.HasPrefix(s, prefix) || s[n-checksumLen-1] != '_' {
		return false
	}
	body := s[:n-checksumLen-1]
	for i := len(prefix); i < len(body); i++ {
		if strings.IndexByte(base62, body[i]) < 0 {
			return false
		}
	}
	return s[n-checksumLen:] == encodeBase62(uint64(crc32.ChecksumIEEE([]byte(body))), checksumLen)
}

// APIKeyPrefix starts every admin API key; like a webhook token it has a
// checksum, so scanners can find leaked keys and garbage costs no lookup.
const APIKeyPrefix = "pruuv_key_"

// APIKeyLen is the exact length of an admin API key.
const APIKeyLen = len(APIKeyPrefix) + secretLen + 1 + checksumLen

// NewAPIKey returns a fresh admin API key: the prefix, 32 random base62
// characters and a CRC32 checksum of everything before it.
func NewAPIKey() string {
	body := APIKeyPrefix + randomBase62(secretLen)
	return body + "_" + encodeBase62(uint64(crc32.ChecksumIEEE([]byte(body))), checksumLen)
}

// IsAPIKey reports whether s has the shape and checksum of an admin API key.
func IsAPIKey(s string) bool { return checksummed(s, APIKeyPrefix) }

// APIKeyHint is what may be shown of an API key without revealing it.
func APIKeyHint(key string) string {
	if len(key) < 4 {
		return "…"
	}
	return APIKeyPrefix + "…" + key[len(key)-4:]
}

// Hint is what may be shown of a token without revealing it.
func Hint(tok string) string {
	if len(tok) < 4 {
		return "…"
	}
	return WebhookPrefix + "…" + tok[len(tok)-4:]
}

// NewEventID returns a UUIDv7 string: the millisecond time first, so ids sort by
// arrival and inserts land at the end of the primary-key index.
func NewEventID(now time.Time) string {
	var u [16]byte
	binary.BigEndian.PutUint64(u[:8], uint64(now.UnixMilli())<<16)
	rand.Read(u[6:])
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}

// Bearer returns the token of a request's single "Authorization: Bearer …"
// header, or "" when there is none, more than one, or another scheme. The
// scheme name is case-insensitive (RFC 9110 §11.1).
func Bearer(h http.Header) string {
	vals := h.Values("Authorization")
	if len(vals) != 1 {
		return ""
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
