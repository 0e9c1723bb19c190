package site

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	good := map[string]string{
		"https://shop.example":          "https://shop.example",
		" HTTPS://Shop.Example/ ":       "https://shop.example",
		"https://shop.example:443":      "https://shop.example",
		"https://shop.example:8443":     "https://shop.example:8443",
		"https://shop.example:08443":    "https://shop.example:8443",
		"https://xn--bcher-kva.example": "https://xn--bcher-kva.example",
		"http://localhost:3000":         "http://localhost:3000",
		"http://LOCALHOST:80":           "http://localhost",
		"http://app.localhost":          "http://app.localhost",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"http://127.1.2.3":              "http://127.1.2.3",
		"http://[::1]:5173":             "http://[::1]:5173",
		"https://[2001:DB8::1]":         "https://[2001:db8::1]",
		"https://[::ffff:192.0.2.1]":    "https://192.0.2.1",
		"https://203.0.113.9":           "https://203.0.113.9",
		"https://my_host.example":       "https://my_host.example",
	}
	for in, want := range good {
		got, err := ParseOrigin(in)
		if err != nil || got != want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                              "empty",
		"shop.example":                  "https://shop.example",
		"ftp://shop.example":            "https://",
		"javascript://x":                "https://",
		"null":                          "scheme",
		"http://shop.example":           "localhost",
		"http://localhost.evil.example": "localhost",
		"http://192.168.1.10":           "localhost",
		"https://shop.example/checkout": "no path",
		"https://shop.example?x=1":      "no path",
		"https://shop.example#top":      "no path",
		"https://user@shop.example":     "no path",
		"https://*.shop.example":        "wildcards",
		"https://bücher.example":        "xn--",
		"https://shop.example:0":        "port",
		"https://shop.example:70000":    "port",
		"https://shop.example:https":    "",
		"https://":                      "no host",
		"https://[fe80::1%25eth0]":      "zone",
	}
	for in, msg := range bad {
		got, err := ParseOrigin(in)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseOrigin(%q) = %q, %v; want an error mentioning %q", in, got, err, msg)
		}
	}
}

func TestParseOrigins(t *testing.T) {
	got, err := ParseOrigins([]string{"https://a.example, https://b.example", "https://A.example/", "https://c.example,"})
	if err != nil || !reflect.DeepEqual(got, []string{"https://a.example", "https://b.example", "https://c.example"}) {
		t.Fatalf("%v, %v", got, err)
	}
	if _, err := ParseOrigins([]string{"https://a.example,http://b.example"}); err == nil {
		t.Fatal("a bad origin in a list was accepted")
	}
	many := make([]string, MaxOrigins+1)
	for i := range many {
		many[i] = "https://s" + strings.Repeat("x", i) + ".example"
	}
	if _, err := ParseOrigins(many); err == nil {
		t.Fatalf("%d origins accepted", len(many))
	}
}
