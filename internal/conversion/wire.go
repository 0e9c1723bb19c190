package conversion

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file holds what every platform client does the same way on the wire.
// What differs by platform (error envelopes, codes, which answers are
// transient) stays in the platform's package.

// MaxAnswer bounds how much of a platform's answer a client reads.
const MaxAnswer = 1 << 20

// Doer returns hc, or when it is nil an http.Client that follows no
// redirects: a request and its credentials go only where they were sent.
func Doer(hc HTTPDoer) HTTPDoer {
	if hc != nil {
		return hc
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Exchange sends req through hc and reads at most limit bytes of the answer,
// the whole exchange bounded by timeout (none when 0). A nil response means
// no answer came and err says why; a response with an error means the answer
// was cut short, and body holds what was read. The response's body is closed.
func Exchange(hc HTTPDoer, req *http.Request, timeout time.Duration, limit int64) (*http.Response, []byte, error) {
	if timeout > 0 {
		ctx, cancel := context.WithTimeout(req.Context(), timeout)
		defer cancel()
		req = req.WithContext(ctx)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	return resp, body, err
}

// NetError names a transport failure without the request's URL, which says
// nothing the audit log needs.
func NetError(err error) string {
	var ue *url.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue) && ue.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case ue != nil:
		return ue.Err.Error()
	}
	return err.Error()
}

// RetryAfter reads a Retry-After header: a number of seconds or an HTTP date.
// ok is false, and the wait 0, when the header is absent or holds neither a
// non-negative number nor a date still to come, so that a platform can fall
// back on a hint of its own.
func RetryAfter(h http.Header, now time.Time) (wait time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now), true
	}
	return 0, false
}

// TransientStatus reports an HTTP status worth retrying whatever the body
// says: a server error, 429 Too Many Requests or 408 Request Timeout.
func TransientStatus(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// AllResults is n copies of r: the answer for every conversion of a request
// that succeeded or failed as a whole.
func AllResults(n int, r Result) []Result {
	out := make([]Result, n)
	for i := range out {
		out[i] = r
	}
	return out
}

// Shorten cuts s to its first n characters and an ellipsis, for summaries
// that show enough of a click id or hash to recognise it and no more.
func Shorten(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + "…"
		}
		n--
	}
	return s
}

// Snippet is the start of an answer that is not the platform's JSON (a
// gateway's HTML page, say), on one line, for the audit log.
func Snippet(body []byte) string {
	s := Shorten(strings.Join(strings.Fields(string(bytes.ToValidUTF8(body, nil))), " "), 200)
	if s == "" {
		return "empty answer"
	}
	return s
}

// Redact removes secret, plain and URL-encoded, from text bound for the audit
// log, in case an answer or an error ever quotes it.
func Redact(s, secret string) string {
	if secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, "[redacted]")
	return strings.ReplaceAll(s, url.QueryEscape(secret), "[redacted]")
}
