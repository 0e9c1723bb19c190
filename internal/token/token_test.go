package token

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

// scanPattern is the secret-scanning rule documented in docs/webhook-api.md.
var scanPattern = regexp.MustCompile(`\bpruuv_whk_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}\b`)

func TestWebhookTokens(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := NewWebhook()
		if len(tok) != WebhookLen || !IsWebhook(tok) || !scanPattern.MatchString(tok) {
			t.Fatalf("token %q: len %d, valid %v", tok, len(tok), IsWebhook(tok))
		}
		if seen[tok] {
			t.Fatalf("token repeated: %s", tok)
		}
		seen[tok] = true
		// Any single-character change is caught by shape or checksum.
		i := len(WebhookPrefix) + rand.IntN(WebhookLen-len(WebhookPrefix))
		if tok[i] == '_' {
			continue
		}
		c := base62[rand.IntN(62)]
		if c == tok[i] {
			continue
		}
		if bad := tok[:i] + string(c) + tok[i+1:]; IsWebhook(bad) {
			t.Fatalf("altered token %q accepted", bad)
		}
	}
}

func TestIsWebhookRejects(t *testing.T) {
	good := NewWebhook()
	for _, s := range []string{"", "pruuv_whk_", good[:len(good)-1], good + "x", strings.ToUpper(good),
		strings.Replace(good, "pruuv_whk_", "pruuv_pk__", 1), strings.Replace(good, "_", "-", 2)} {
		if IsWebhook(s) {
			t.Errorf("IsWebhook(%q) = true", s)
		}
	}
}

func TestChecksumFalsePositives(t *testing.T) {
	// Random strings of the right shape almost never pass the checksum
	// (62^6 ≈ 5.7e10 checksums), so a scanner can tell real tokens apart.
	hits := 0
	for range 100_000 {
		s := WebhookPrefix + randomBase62(secretLen) + "_" + randomBase62(checksumLen)
		if IsWebhook(s) {
			hits++
		}
	}
	if hits > 0 {
		t.Fatalf("%d random look-alikes passed the checksum", hits)
	}
}

func TestNewID(t *testing.T) {
	a, b := NewID("stg"), NewID("stg")
	if a == b || !regexp.MustCompile(`^stg_[0-9A-Za-z]{22}$`).MatchString(a) {
		t.Fatalf("ids %q %q", a, b)
	}
}

func TestEventIDsAreUUIDv7InTimeOrder(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 100 {
		id := NewEventID(t0.Add(time.Duration(i) * time.Millisecond))
		if !re.MatchString(id) {
			t.Fatalf("%q is not a UUIDv7", id)
		}
		if id <= prev {
			t.Fatalf("%q sorts before %q", id, prev)
		}
		prev = id
	}
	id := NewEventID(t0)
	if got, want := id[:8]+id[9:13], fmt.Sprintf("%012x", t0.UnixMilli()); got != want {
		t.Fatalf("time prefix %s, want %s", got, want)
	}
}

func TestOpaque(t *testing.T) {
	a, b := Opaque(24), Opaque(24)
	if len(a) != 32 || a == b || strings.ContainsAny(a, "+/=") {
		t.Fatalf("Opaque(24) = %q, %q", a, b)
	}
}
