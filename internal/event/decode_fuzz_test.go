package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pruuv/pruuv/internal/event"
)

// FuzzDecode checks the decoder's promises on arbitrary bodies: it never
// panics; it fails with a *ValidationError that says what is wrong, or yields
// fields with a reference whose strings are clean and within their limits; it
// is deterministic; and what it accepts, written back out as a JSON object of
// its fields, decodes to the same fields.
//
// Seeds beyond these live in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"reference":"CRM-REF-001","utm_source":"google","utm_medium":"cpc","utm_campaign":"brand-search","gclid":"EAIaIQobCh...","revenue_value":250,"currency":"GBP"}`,
		`{"reference":"r","click_timestamp":"2026-02-28T10:00:00.5+05:30","data_timestamp":"2026-03-01T00:00:00-08:00"}`,
		`{"reference":"r","revenue_value":1.0000005e3,"currency":"usd"}`,
		`{"reference":"r","revenue_value":1e999999999}`,
		`{"reference":"r","revenue_value":-0}`,
		`{"reference":"r","reference":"r"}`,
		`{"Reference":"r","x":{"reference":[1,"}"]}}`,
		`{"reference":"\u00e9\ud800\\\"","fbp":"a\u0085"}`,
		`{} x`,
		`[{"reference":"r"}]`,
		"{\"reference\":\"\xff\"}",
		"",
		" \t\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		got, err := event.Decode(body, now)
		if !bytes.Equal(body, orig) {
			t.Fatal("Decode modified its input")
		}
		again, err2 := event.Decode(body, now)
		if !reflect.DeepEqual(values(got), values(again)) || !reflect.DeepEqual(details(t, err), details(t, err2)) {
			t.Fatalf("Decode is not deterministic: %v, %v then %v, %v", got, err, again, err2)
		}
		if err != nil {
			d := details(t, err)
			if len(d) == 0 {
				t.Fatalf("ValidationError without details for %q", body)
			}
			for k, msgs := range d {
				if len(msgs) == 0 || slicesHasEmpty(msgs) {
					t.Fatalf("details[%q] = %q", k, msgs)
				}
				if k != "body" && !isField(k) {
					t.Fatalf("details keyed %q, neither body nor a field", k)
				}
			}
			if got != (event.Fields{}) {
				t.Fatalf("failed decode returned fields %+v", got)
			}
			return
		}
		if got.Reference == "" {
			t.Fatalf("decode of %q succeeded without a reference", body)
		}
		checkClean(t, got)

		re := encode(got)
		back, err := event.Decode(re, now)
		if err != nil {
			t.Fatalf("re-encoded fields %s do not decode: %v (from %q)", re, err, body)
		}
		if !reflect.DeepEqual(values(back), values(got)) {
			t.Fatalf("round trip changed fields:\n%v\n%v\nvia %s", values(got), values(back), re)
		}
	})
}

// values is every field as Schema stores it, so two Fields compare by what
// would be written to the database, offsets included.
func values(f event.Fields) []any {
	out := make([]any, 0, len(event.Schema)+1)
	for _, fd := range event.Schema {
		out = append(out, fd.Value(&f))
	}
	return append(out, f.HasRevenue)
}

func details(t *testing.T, err error) map[string][]string {
	t.Helper()
	if err == nil {
		return nil
	}
	var verr *event.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Decode returned %T %v, want *ValidationError", err, err)
	}
	return verr.Details
}

func slicesHasEmpty(msgs []string) bool {
	for _, m := range msgs {
		if m == "" {
			return true
		}
	}
	return false
}

func isField(name string) bool {
	for _, fd := range event.Schema {
		if fd.Name == name {
			return true
		}
	}
	return false
}

// encode writes f as the JSON object a sender would post: absent fields as
// null, revenue as a plain decimal.
func encode(f event.Fields) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, fd := range event.Schema {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(fd.Name)
		b.Write(name)
		b.WriteByte(':')
		switch v := fd.Value(&f).(type) {
		case nil:
			b.WriteString("null")
		case int64:
			b.WriteString(event.FormatMicros(v))
		case string:
			s, _ := json.Marshal(v)
			b.Write(s)
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// checkClean asserts what an accepted event may hold: valid UTF-8 without
// control characters and within each field's limit, a known upper-case
// currency, revenue within range.
func checkClean(t *testing.T, f event.Fields) {
	t.Helper()
	for _, c := range contract {
		s, ok := c.get(f).(string)
		if !ok {
			continue
		}
		if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
			t.Fatalf("%s = %q holds invalid UTF-8 or a control character", c.name, s)
		}
		if c.max > 0 && len(s) > c.max {
			t.Fatalf("%s is %d bytes, over its %d", c.name, len(s), c.max)
		}
	}
	if f.Currency != "" && (f.Currency != strings.ToUpper(f.Currency) || !event.ValidCurrency(f.Currency)) {
		t.Fatalf("currency %q stored", f.Currency)
	}
	if f.RevenueMicros < 0 || f.RevenueMicros > event.MaxRevenue*1_000_000 || (!f.HasRevenue && f.RevenueMicros != 0) {
		t.Fatalf("revenue %d micros (has %v)", f.RevenueMicros, f.HasRevenue)
	}
	for _, ts := range []time.Time{f.ClickTimestamp, f.DataTimestamp} {
		if _, off := ts.Zone(); ts.After(now.Add(event.MaxFuture)) || off <= -24*3600 || off >= 24*3600 {
			t.Fatalf("timestamp %v accepted", ts)
		}
	}
}
