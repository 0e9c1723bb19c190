package event

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"net/url"
	"strings"
)

// Email and phone numbers are never stored: the decoder turns them into the
// SHA-256 hashes the ad platforms match on, and keeps only those. The platforms
// disagree on the normal form, so each value yields two hashes:
//
//   - email: trimmed and lower-cased (Meta, TikTok, Microsoft), and the same
//     with Google's extra rule for gmail.com and googlemail.com addresses — dots
//     and a "+suffix" removed from the local part (Google);
//   - phone: E.164 with its "+" (Google, TikTok, Microsoft), and the same digits
//     without the "+" (Meta).

var (
	errEmail = errors.New("must be an email address, e.g. jane@example.com")
	errPhone = errors.New("must be a phone number with its country code, e.g. +44 7700 900123")
)

// maxEmail is RFC 5321's limit on a forward path.
const maxEmail = 254

// NormalizeEmail returns the address trimmed and lower-cased, the form Meta,
// TikTok and Microsoft hash.
func NormalizeEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	at := strings.LastIndexByte(e, '@')
	if len(e) > maxEmail || at < 1 || at == len(e)-1 || strings.ContainsAny(e, " \t\r\n") ||
		strings.IndexByte(e, '@') != at || !strings.Contains(e[at+1:], ".") || hasControl(e) {
		return "", errEmail
	}
	return e, nil
}

// GoogleEmail returns the form Google hashes: a normalised address, with dots
// and any "+suffix" removed from the local part of gmail.com and googlemail.com
// addresses.
func GoogleEmail(normalized string) string {
	at := strings.LastIndexByte(normalized, '@')
	local, domain := normalized[:at], normalized[at+1:]
	if domain != "gmail.com" && domain != "googlemail.com" {
		return normalized
	}
	if plus := strings.IndexByte(local, '+'); plus >= 0 {
		local = local[:plus]
	}
	return strings.ReplaceAll(local, ".", "") + "@" + domain
}

// NormalizePhone returns the number in E.164 form, "+" then 8 to 15 digits.
// Spaces, dashes, dots and brackets are ignored. An international prefix is
// "+" or "00"; a number without one must already start with its country code
// (Meta's convention, "16505551212"), so a national number starting with a
// single 0 is refused rather than guessed at.
func NormalizePhone(s string) (string, error) {
	s = strings.TrimSpace(s)
	var digits []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case c == '+' && i == 0:
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", errPhone
		}
	}
	d := string(digits)
	switch {
	case strings.HasPrefix(s, "+"):
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	case strings.HasPrefix(d, "0"):
		return "", errPhone
	}
	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return "", errPhone
	}
	return "+" + d, nil
}

// SHA256Hex is the lower-case hex SHA-256 every platform expects.
func SHA256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// setEmail stores the two hashes of an email address.
func setEmail(f *Fields, v string) error {
	e, err := NormalizeEmail(v)
	if err != nil {
		return err
	}
	f.EmailSHA256 = SHA256Hex(e)
	f.EmailGoogleSHA256 = SHA256Hex(GoogleEmail(e))
	return nil
}

// setPhone stores the two hashes of a phone number.
func setPhone(f *Fields, v string) error {
	p, err := NormalizePhone(v)
	if err != nil {
		return err
	}
	f.PhoneSHA256 = SHA256Hex(p)
	f.PhoneMetaSHA256 = SHA256Hex(p[1:])
	return nil
}

// checkIP accepts an IPv4 or IPv6 address, as Meta requires of
// client_ip_address, and returns its canonical text.
func checkIP(v string) (string, error) {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return "", errors.New("must be an IPv4 or IPv6 address")
	}
	return a.Unmap().String(), nil
}

// checkURL accepts an absolute http or https URL, as event_source_url must be.
func checkURL(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("must be an absolute http or https URL")
	}
	return v, nil
}
