package server

import (
	"net/http"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/event"
)

func TestEnvelope(t *testing.T) {
	cases := []struct{ body, key, stage string }{
		{`{"site_key":"pk_a","stage_id":"stg_b","reference":"r"}`, "pk_a", "stg_b"},
		{" \n{ \"reference\" : {\"site_key\":\"nested\"} , \"stage_id\":\"stg_b\" ,\"site_key\": \"pk_a\" }", "pk_a", "stg_b"},
		{`{"site_key":"pk_a","site_key":"pk_a","stage_id":"stg_b"}`, "", "stg_b"},
		{`{"site_key":"pk_a","stage_id":"stg_b","stage_id":"stg_c","stage_id":"stg_b"}`, "pk_a", ""},
		{`{"site_key":7,"stage_id":null}`, "", ""},
		{`{"Site_Key":"pk_a","STAGE_ID":"stg_b"}`, "", ""},
		{`{"site\u005fkey":"pk_a"}`, "pk_a", ""}, // names are compared unescaped, as event.Decode does
		{`{"site_key":"pk_a","stage_id":"stg_b","reference":`, "pk_a", "stg_b"},
		{`{"reference":,"site_key":"pk_a"}`, "", ""},
		{`[{"site_key":"pk_a"}]`, "", ""},
		{`"pk_a"`, "", ""},
		{``, "", ""},
	}
	for _, c := range cases {
		k, s := envelope([]byte(c.body))
		if k != c.key || s != c.stage {
			t.Errorf("envelope(%s) = %q, %q; want %q, %q", c.body, k, s, c.key, c.stage)
		}
	}
}

// The envelope goes to event.DecodeBrowser unchanged: its names must stay unknown
// fields there, ignored.
func TestEnvelopeIsIgnoredByTheDecoder(t *testing.T) {
	for _, in := range event.Inputs {
		if in.Name == "site_key" || in.Name == "stage_id" {
			t.Fatalf("%s is a payload field now: the Pixel's envelope must be stripped before decoding", in.Name)
		}
	}
	now := time.Now()
	with, _, err1 := event.DecodeBrowser([]byte(`{"site_key":"pk_a","stage_id":"stg_b","reference":"r","utm_source":"g"}`), now)
	without, _, err2 := event.DecodeBrowser([]byte(`{"reference":"r","utm_source":"g"}`), now)
	if err1 != nil || err2 != nil || !reflect.DeepEqual(with, without) {
		t.Fatalf("%+v %v\n%+v %v", with, err1, without, err2)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	cases := []struct {
		peer string
		xff  []string
		want string
	}{
		{"203.0.113.1:5000", nil, "203.0.113.1"},
		{"203.0.113.1:5000", []string{"198.51.100.1"}, "203.0.113.1"}, // untrusted peer: header ignored
		{"10.0.0.1:5000", nil, "10.0.0.1"},
		{"10.0.0.1:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.1:5000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"10.0.0.1:5000", []string{"1.1.1.1", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"}, // several headers, in order
		{"10.0.0.1:5000", []string{"10.0.0.2, 10.0.0.3"}, "10.0.0.2"},                    // all trusted: the farthest
		{"10.0.0.1:5000", []string{"1.1.1.1, bogus, 10.0.0.3"}, "10.0.0.3"},
		{"10.0.0.1:5000", []string{" , 198.51.100.1 ,"}, "198.51.100.1"},
		{"10.0.0.1:5000", []string{"[2001:db8::5]:443"}, "2001:db8::5"},
		{"10.0.0.1:5000", []string{"fe80::1%eth0"}, "10.0.0.1"},
		{"[2001:db8:ffff::1]:5000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"[::ffff:10.0.0.1]:5000", []string{"::ffff:198.51.100.2"}, "198.51.100.2"},
		{"not an address", nil, "invalid IP"},
	}
	for _, c := range cases {
		r := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientIP(r, trusted).String(); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7":          "198.51.100.7",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::",
		"2001:db8:1:2:ffff::99": "2001:db8:1:2::",
	} {
		if got := ipKey(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("ipKey(%s) = %s, want %s", in, got, want)
		}
	}
}
