package token

import "strings"

// SitePrefix starts every public site key.
const SitePrefix = "pk_"

// siteKeyLen is the exact length of a site key: the prefix and 22 base62
// characters, like an id.
const siteKeyLen = len(SitePrefix) + 22

// NewSiteKey returns a fresh public site key. It is not a secret — it sits in
// every page's snippet — so it carries no checksum; it only has to be
// unguessable enough that nobody posts to a site they did not look at.
func NewSiteKey() string { return SitePrefix + randomBase62(22) }

// IsSiteKey reports whether s has the shape of a site key, so garbage is
// refused without touching the database.
func IsSiteKey(s string) bool {
	if len(s) != siteKeyLen || !strings.HasPrefix(s, SitePrefix) {
		return false
	}
	for i := len(SitePrefix); i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	return true
}
