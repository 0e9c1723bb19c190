package event

import (
	"strings"
	"testing"
	"time"
)

// The vectors are those of the reference notes (printf '%s' X | sha256sum).
func TestMatchSignalHashes(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		body               string
		email, emailGoogle string
		phone, phoneMeta   string
	}{
		{body: `{"reference":"a","email":"  John_Smith@Gmail.com ","phone":"+1 (415) 555-0123"}`,
			email:       "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
			emailGoogle: SHA256Hex("john_smith@gmail.com"),
			phone:       "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4",
			phoneMeta:   "413ba75461ab5f99d36820e561ea97e2bd80f9cb586f7ecea6cf4c496518950a"},
		{body: `{"reference":"a","email":"Jane.Doe+promo@gmail.com","phone":"0014155550123"}`,
			email:       SHA256Hex("jane.doe+promo@gmail.com"),
			emailGoogle: "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69",
			phone:       "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4",
			phoneMeta:   "413ba75461ab5f99d36820e561ea97e2bd80f9cb586f7ecea6cf4c496518950a"},
		{body: `{"reference":"a","email":"jane.doe@example.com","phone":"16505551212"}`,
			email:       "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d",
			emailGoogle: "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d",
			phone:       SHA256Hex("+16505551212"),
			phoneMeta:   "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"},
	}
	for _, c := range cases {
		f, err := Decode([]byte(c.body), now)
		if err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		got := []string{f.EmailSHA256, f.EmailGoogleSHA256, f.PhoneSHA256, f.PhoneMetaSHA256}
		want := []string{c.email, c.emailGoogle, c.phone, c.phoneMeta}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: hash %d = %s, want %s", c.body, i, got[i], want[i])
			}
		}
		if strings.Contains(string(mustJSON(t, Event{Fields: f})), "@") {
			t.Errorf("%s: the event's JSON carries the address in clear", c.body)
		}
	}
}

func mustJSON(t *testing.T, e Event) []byte {
	t.Helper()
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMatchSignalValidation(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	bad := map[string]string{
		`{"reference":"a","email":"not-an-address"}`:                            "email",
		`{"reference":"a","email":"a@b@example.com"}`:                           "email",
		`{"reference":"a","email":"jane doe@example.com"}`:                      "email",
		`{"reference":"a","email":"jane@localhost"}`:                            "email",
		`{"reference":"a","email":7}`:                                           "email",
		`{"reference":"a","phone":"07700 900123"}`:                              "phone",
		`{"reference":"a","phone":"+44 7700 ext 9"}`:                            "phone",
		`{"reference":"a","phone":"+123"}`:                                      "phone",
		`{"reference":"a","phone":"+1234567890123456"}`:                         "phone",
		`{"reference":"a","client_ip_address":"300.1.1.1"}`:                     "client_ip_address",
		`{"reference":"a","client_ip_address":"fe80::1%eth0"}`:                  "client_ip_address",
		`{"reference":"a","event_source_url":"/pricing"}`:                       "event_source_url",
		`{"reference":"a","event_source_url":"javascript:x()"}`:                 "event_source_url",
		`{"reference":"a","client_user_agent":"Mozilla\u0000"}`:                 "client_user_agent",
		`{"reference":"a","email_sha256":"` + SHA256Hex("x") + `","email":"x"}`: "email",
	}
	for body, field := range bad {
		_, err := Decode([]byte(body), now)
		verr, ok := err.(*ValidationError)
		if !ok || verr.Details[field] == nil {
			t.Errorf("%s: got %v, want an error on %s", body, err, field)
		}
	}
	f, err := Decode([]byte(`{"reference":"a","email_sha256":"`+SHA256Hex("x")+`","client_ip_address":"::ffff:10.0.0.1","event_source_url":"https://shop.example/p?q=1","client_user_agent":"Mozilla/5.0"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	if f.EmailSHA256 != "" {
		t.Error("a stored hash column was accepted as input")
	}
	if f.ClientIPAddress != "10.0.0.1" || f.EventSourceURL != "https://shop.example/p?q=1" || f.ClientUserAgent != "Mozilla/5.0" {
		t.Errorf("got %+v", f)
	}
}
