package token

import (
	"strings"
	"testing"
)

func TestSiteKey(t *testing.T) {
	a, b := NewSiteKey(), NewSiteKey()
	if a == b || !IsSiteKey(a) || len(a) != 25 || !strings.HasPrefix(a, "pk_") {
		t.Fatalf("keys %q %q", a, b)
	}
	for _, bad := range []string{"", "pk_", a[:24], a + "x", "pk-" + a[3:], "pk_" + strings.Repeat("-", 22), NewWebhook(), NewID("stg")} {
		if IsSiteKey(bad) {
			t.Errorf("IsSiteKey(%q) = true", bad)
		}
	}
}
