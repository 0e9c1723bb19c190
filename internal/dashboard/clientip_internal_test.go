package dashboard

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The login limiter counts the address the trusted proxy wrote: the last
// entry of the header's last line, never one the client sent itself.
func TestClientIP(t *testing.T) {
	for _, c := range []struct {
		name   string
		header string   // PRUUV_CLIENT_IP_HEADER
		lines  []string // the header's lines, in order
		want   string
	}{
		{"no header configured", "", []string{"203.0.113.9"}, "192.0.2.1"},
		{"header configured, absent", "X-Forwarded-For", nil, "192.0.2.1"},
		{"one line", "X-Forwarded-For", []string{"198.51.100.7"}, "198.51.100.7"},
		{"the proxy appended to the client's list", "X-Forwarded-For", []string{"203.0.113.9, 198.51.100.7"}, "198.51.100.7"},
		{"the proxy added its own line", "X-Forwarded-For", []string{"203.0.113.9", "198.51.100.7"}, "198.51.100.7"},
		{"the client sent a list, the proxy a line", "X-Forwarded-For", []string{"203.0.113.9, 203.0.113.10", "198.51.100.7"}, "198.51.100.7"},
		{"X-Real-IP", "X-Real-IP", []string{" 198.51.100.7 "}, "198.51.100.7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := &Dashboard{Options: Options{ClientIPHeader: c.header}}
			r := httptest.NewRequest(http.MethodPost, "/login", nil)
			r.RemoteAddr = "192.0.2.1:4321"
			for _, l := range c.lines {
				r.Header.Add(c.header, l)
			}
			if got := d.clientIP(r); got != c.want {
				t.Errorf("clientIP = %q, want %q", got, c.want)
			}
		})
	}
}
