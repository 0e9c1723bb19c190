package event

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The Pixel's endpoint records what it observes of the browser — the
// User-Agent and Referer headers — where the body gives nothing. Headers are
// not validated like a body: a value that breaks a field's rules is made fit
// (a user agent) or dropped (a URL), never refused.

// UserAgent returns a User-Agent header fit for client_user_agent: invalid
// UTF-8 and control characters replaced, trimmed, cut at a character boundary
// to the field's limit.
func UserAgent(h string) string {
	h = strings.ToValidUTF8(h, "\uFFFD")
	h = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, h)
	h = strings.TrimSpace(h)
	if len(h) > maxAgent {
		cut := maxAgent
		for cut > 0 && !utf8.RuneStart(h[cut]) {
			cut--
		}
		h = strings.TrimSpace(h[:cut])
	}
	return h
}

// SourceURL returns v if it is a valid event_source_url — an absolute http or
// https URL within the limit, free of control characters — and "" otherwise.
func SourceURL(v string) string {
	if v == "" || len(v) > maxURL || !utf8.ValidString(v) || hasControl(v) {
		return ""
	}
	if _, err := checkURL(v); err != nil {
		return ""
	}
	return v
}
