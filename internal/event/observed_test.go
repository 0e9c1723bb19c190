package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// What UserAgent and SourceURL return must pass the decoder's own rules for
// the fields they fill.
func TestObservedValuesPassTheDecoder(t *testing.T) {
	long := strings.Repeat("é", maxAgent) // 2 bytes each: the cut falls inside one
	for _, in := range []string{"Mozilla/5.0 (X11; Linux x86_64)", long, "a\tb\x01c\x7f", "bad \xff utf8", "  padded  "} {
		ua := UserAgent(in)
		if len(ua) > maxAgent || !utf8.ValidString(ua) || hasControl(ua) {
			t.Errorf("UserAgent(%.20q) = %.20q (%d bytes)", in, ua, len(ua))
		}
		body := `{"reference":"r","client_user_agent":` + quote(ua) + `}`
		if f, err := Decode([]byte(body), time.Now()); err != nil || f.ClientUserAgent != ua {
			t.Errorf("UserAgent(%.20q) does not decode as client_user_agent: %v", in, err)
		}
	}
	if got := UserAgent(long); len(got) != maxAgent {
		t.Errorf("cut at %d bytes, want %d", len(got), maxAgent)
	}
	if got := UserAgent("a\tb"); got != "a b" {
		t.Errorf("control characters: %q", got)
	}
	for in, want := range map[string]string{
		"https://shop.example/thanks?x=1": "https://shop.example/thanks?x=1",
		"https://shop.example/":           "https://shop.example/",
		"":                                "",
		"/relative":                       "",
		"ftp://x.example/":                "",
		"https://x.example/\x01":          "",
		"https://x.example/" + strings.Repeat("a", maxURL): "",
	} {
		if got := SourceURL(in); got != want {
			t.Errorf("SourceURL(%.30q) = %q, want %q", in, got, want)
		}
		if want != "" {
			if _, err := Decode([]byte(`{"reference":"r","event_source_url":`+quote(want)+`}`), time.Now()); err != nil {
				t.Errorf("%q does not decode: %v", want, err)
			}
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
