package conversion_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", 0, false},
		{"30", 30 * time.Second, true},
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"-5", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Fri, 20 Nov 2026 15:01:30 GMT", 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, false},
		{"Fri, 20 Nov 2026 14:00:00 GMT", 0, false},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.value != "" {
			h.Set("Retry-After", c.value)
		}
		if got, ok := conversion.RetryAfter(h, now); got != c.want || ok != c.ok {
			t.Errorf("Retry-After %q: %s %v, want %s %v", c.value, got, ok, c.want, c.ok)
		}
	}
	// An empty header line is no header.
	if got, ok := conversion.RetryAfter(http.Header{"Retry-After": {""}}, now); got != 0 || ok {
		t.Errorf("empty Retry-After: %s %v", got, ok)
	}
}

func TestAllResults(t *testing.T) {
	r := conversion.Result{Outcome: conversion.Transient, HTTPStatus: 503, Message: "down"}
	out := conversion.AllResults(3, r)
	if len(out) != 3 {
		t.Fatalf("%d results, want 3", len(out))
	}
	for i, got := range out {
		if got != r {
			t.Errorf("result %d = %+v, want %+v", i, got, r)
		}
	}
}

func TestShorten(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 8, ""},
		{"abcdefgh", 8, "abcdefgh"},
		{"abcdefghi", 8, "abcdefgh…"},
		{"fb.1.1763640000123.IwAR", 6, "fb.1.1…"},
		{"ééééé", 3, "ééé…"}, // characters, never half of one
	} {
		if got := conversion.Shorten(c.s, c.n); got != c.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

func TestSnippet(t *testing.T) {
	if got := conversion.Snippet(nil); got != "empty answer" {
		t.Errorf("empty: %q", got)
	}
	if got := conversion.Snippet([]byte(" \n\t ")); got != "empty answer" {
		t.Errorf("blank: %q", got)
	}
	if got := conversion.Snippet([]byte("<html>\n  <h1>502\tBad Gateway</h1>\xff</html>")); got != "<html> <h1>502 Bad Gateway</h1></html>" {
		t.Errorf("page: %q", got)
	}
	long := conversion.Snippet([]byte(strings.Repeat("x", 300)))
	if long != strings.Repeat("x", 200)+"…" {
		t.Errorf("long: %d characters", len([]rune(long)))
	}
}

func TestRedact(t *testing.T) {
	const secret = "tok/en+1=="
	got := conversion.Redact("a "+secret+" b tok%2Fen%2B1%3D%3D c", secret)
	if got != "a [redacted] b [redacted] c" {
		t.Errorf("Redact = %q", got)
	}
	if got := conversion.Redact("no secret", ""); got != "no secret" {
		t.Errorf("empty secret: %q", got)
	}
}

func TestExchange(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "0123456789")
	}))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	resp, body, err := conversion.Exchange(srv.Client(), req, time.Second, 4)
	if err != nil || resp == nil || resp.StatusCode != http.StatusAccepted || string(body) != "0123" {
		t.Errorf("bounded read: %v %v %q", resp, err, body)
	}

	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/hang", nil)
	resp, _, err = conversion.Exchange(srv.Client(), req, 50*time.Millisecond, 4)
	if resp != nil || !errors.Is(err, context.DeadlineExceeded) || conversion.NetError(err) != "timed out" {
		t.Errorf("hang: %v %v", resp, err)
	}
}

func TestDoerFollowsNoRedirect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", nil)
	resp, err := conversion.Doer(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status %d, want the redirect itself", resp.StatusCode)
	}
}
