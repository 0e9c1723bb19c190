package event_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/event"
)

// now is the server clock every test decodes against.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The messages of the contract's details, as the decoder words them.
const (
	msgString   = "must be a string"
	msgNumber   = "must be a number"
	msgRequired = "is required"
	msgEmptyRef = "must not be empty"
	msgTwice    = "is given more than once"
	msgControl  = "must not contain control characters"
	msgCurrency = "must be an ISO 4217 currency code, e.g. GBP"
	msgTime     = "must be an ISO 8601 date-time with a time zone offset or Z, e.g. 2026-03-01T14:30:00Z"
	msgFuture   = "must not be in the future"
	msgNegative = "must not be negative"
	msgTooLarge = "must be at most 1000000000000"
	msgObject   = "must be a JSON object"
	msgEmpty    = "is empty; send a JSON object"
	msgUTF8     = "must be valid UTF-8"
	msgNotJSON  = "is not valid JSON: " // followed by the parser's reason
)

// contractField is one row of the seed page's payload reference, with the
// length limit Pruuv sets for it (0 for non-strings) and a way to read it back
// from Fields that does not go through Schema.
type contractField struct {
	name string
	max  int
	get  func(event.Fields) any
}

var contract = []contractField{
	{"reference", 255, func(f event.Fields) any { return f.Reference }},
	{"item_reference", 255, func(f event.Fields) any { return f.ItemReference }},
	{"utm_source", 1024, func(f event.Fields) any { return f.UTMSource }},
	{"utm_medium", 1024, func(f event.Fields) any { return f.UTMMedium }},
	{"utm_campaign", 1024, func(f event.Fields) any { return f.UTMCampaign }},
	{"utm_content", 1024, func(f event.Fields) any { return f.UTMContent }},
	{"utm_term", 1024, func(f event.Fields) any { return f.UTMTerm }},
	{"gclid", 512, func(f event.Fields) any { return f.GCLID }},
	{"wbraid", 512, func(f event.Fields) any { return f.WBRAID }},
	{"gbraid", 512, func(f event.Fields) any { return f.GBRAID }},
	{"ttclid", 512, func(f event.Fields) any { return f.TTCLID }},
	{"msclkid", 512, func(f event.Fields) any { return f.MSCLKID }},
	{"fbc", 512, func(f event.Fields) any { return f.FBC }},
	{"fbp", 512, func(f event.Fields) any { return f.FBP }},
	{"click_timestamp", 0, func(f event.Fields) any { return f.ClickTimestamp }},
	{"revenue_value", 0, func(f event.Fields) any {
		if !f.HasRevenue {
			return nil
		}
		return f.RevenueMicros
	}},
	{"currency", 0, func(f event.Fields) any { return f.Currency }},
	{"data_timestamp", 0, func(f event.Fields) any { return f.DataTimestamp }},
	{"gender", 255, func(f event.Fields) any { return f.Gender }},
	{"age_range", 255, func(f event.Fields) any { return f.AgeRange }},
	{"location_country", 255, func(f event.Fields) any { return f.LocationCountry }},
	{"location_region", 255, func(f event.Fields) any { return f.LocationRegion }},
	{"job_title", 255, func(f event.Fields) any { return f.JobTitle }},
	{"company_size", 255, func(f event.Fields) any { return f.CompanySize }},
	{"industry", 255, func(f event.Fields) any { return f.Industry }},
}

// absent is what get returns for a field that was not given.
func absent(name string) any {
	switch name {
	case "click_timestamp", "data_timestamp":
		return time.Time{}
	case "revenue_value":
		return nil
	}
	return ""
}

// decode runs Decode and returns the details of its error, failing the test on
// any error that is not a *ValidationError and on a failure that lost Fields.
func decode(t *testing.T, body string) (event.Fields, map[string][]string) {
	t.Helper()
	f, err := event.Decode([]byte(body), now)
	if err == nil {
		return f, nil
	}
	var verr *event.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Decode(%.80q) error %T %v, want *ValidationError", body, err, err)
	}
	if len(verr.Details) == 0 {
		t.Fatalf("Decode(%.80q) returned a ValidationError without details", body)
	}
	if f != (event.Fields{}) {
		t.Errorf("Decode(%.80q) failed but returned fields %+v", body, f)
	}
	return f, verr.Details
}

// with returns a body holding a valid reference and name set to the raw JSON
// value, or just name when it is the reference itself.
func with(name, raw string) string {
	if name == "reference" {
		return `{"reference":` + raw + `}`
	}
	return `{"reference":"ref-1","` + name + `":` + raw + `}`
}

func wantDetails(t *testing.T, body string, want map[string][]string) {
	t.Helper()
	_, got := decode(t, body)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode(%.120q) details = %q, want %q", body, got, want)
	}
}

func wantOK(t *testing.T, body string) event.Fields {
	t.Helper()
	f, details := decode(t, body)
	if details != nil {
		t.Fatalf("Decode(%.120q) failed: %q", body, details)
	}
	if f.Reference == "" {
		t.Fatalf("Decode(%.120q) succeeded without a reference", body)
	}
	return f
}

func TestSchemaIsTheContract(t *testing.T) {
	var got, want []string
	for _, fd := range event.Schema {
		got = append(got, fd.Name)
	}
	for _, c := range contract {
		want = append(want, c.name)
	}
	// The seed page's fields first, in its order, then SPEC §3's optional
	// extensions as stored (email and phone only as hashes).
	want = append(want, "client_ip_address", "client_user_agent", "event_source_url",
		"email_sha256", "email_google_sha256", "phone_sha256", "phone_meta_sha256")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Schema fields %q, want the seed page's then the extensions: %q", got, want)
	}
}

func TestDecodeEveryFieldValid(t *testing.T) {
	values := map[string]struct {
		raw  string
		want any
	}{
		"click_timestamp": {`"2026-02-28T09:15:00Z"`, time.Date(2026, 2, 28, 9, 15, 0, 0, time.UTC)},
		"data_timestamp":  {`"2026-03-01T11:59:59.5Z"`, time.Date(2026, 3, 1, 11, 59, 59, 5e8, time.UTC)},
		"revenue_value":   {`250`, int64(250_000_000)},
		"currency":        {`"GBP"`, "GBP"},
	}
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) {
			v, ok := values[c.name]
			if !ok {
				v.raw, v.want = `"value of `+c.name+` ✓"`, "value of "+c.name+" ✓"
			}
			f := wantOK(t, with(c.name, v.raw))
			got := c.get(f)
			if gt, ok := got.(time.Time); ok {
				if !gt.Equal(v.want.(time.Time)) {
					t.Errorf("%s = %v, want %v", c.name, gt, v.want)
				}
			} else if got != v.want {
				t.Errorf("%s = %#v, want %#v", c.name, got, v.want)
			}
			// Every other field stays absent.
			for _, o := range contract {
				if o.name != c.name && o.name != "reference" && !reflect.DeepEqual(o.get(f), absent(o.name)) {
					t.Errorf("%s set to %#v by a payload without it", o.name, o.get(f))
				}
			}
		})
	}
}

func TestDecodeEveryFieldWrongType(t *testing.T) {
	notString := []string{`1`, `-1.5`, `0`, `true`, `false`, `{}`, `{"a":"b"}`, `[]`, `["GBP"]`}
	notNumber := []string{`"250"`, `""`, `"1e3"`, `true`, `false`, `{}`, `{"amount":250}`, `[]`, `[250]`}
	for _, c := range contract {
		wrong, msg := notString, msgString
		if c.name == "revenue_value" {
			wrong, msg = notNumber, msgNumber
		}
		for _, raw := range wrong {
			wantDetails(t, with(c.name, raw), map[string][]string{c.name: {msg}})
		}
	}
}

func TestDecodeNullIsAbsent(t *testing.T) {
	for _, c := range contract {
		if c.name == "reference" {
			wantDetails(t, with(c.name, `null`), map[string][]string{"reference": {msgRequired}})
			continue
		}
		f := wantOK(t, with(c.name, `null`))
		if got := c.get(f); !reflect.DeepEqual(got, absent(c.name)) {
			t.Errorf("%s: null gave %#v, want absent", c.name, got)
		}
	}
}

func TestDecodeEmptyStringIsAbsent(t *testing.T) {
	for _, c := range contract {
		switch c.name {
		case "reference":
			wantDetails(t, with(c.name, `""`), map[string][]string{"reference": {msgEmptyRef}})
		case "revenue_value":
			wantDetails(t, with(c.name, `""`), map[string][]string{"revenue_value": {msgNumber}})
		default:
			f := wantOK(t, with(c.name, `""`))
			if got := c.get(f); !reflect.DeepEqual(got, absent(c.name)) {
				t.Errorf(`%s: "" gave %#v, want absent`, c.name, got)
			}
		}
	}
}

func TestDecodeReferenceRequired(t *testing.T) {
	for _, body := range []string{
		`{}`,
		`{"item_reference":"x"}`,
		`{"Reference":"CRM-1"}`,
		`{"REFERENCE":"CRM-1"}`,
		`{"reference ":"CRM-1"}`,
		`{" reference":"CRM-1"}`,
		`{"ref":"CRM-1"}`,
		`{"nested":{"reference":"CRM-1"}}`,
		`{"reference":null}`,
	} {
		wantDetails(t, body, map[string][]string{"reference": {msgRequired}})
	}
}

func TestDecodeLengthLimits(t *testing.T) {
	for _, c := range contract {
		if c.max == 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			tooLong := map[string][]string{c.name: {"must be at most " + strconv.Itoa(c.max) + " bytes"}}
			f := wantOK(t, with(c.name, `"`+strings.Repeat("a", c.max)+`"`))
			if got := c.get(f); got != strings.Repeat("a", c.max) {
				t.Errorf("%d bytes stored as %d", c.max, len(got.(string)))
			}
			wantDetails(t, with(c.name, `"`+strings.Repeat("a", c.max+1)+`"`), tooLong)
			// The limit is in bytes of the decoded value: two-byte é counts twice,
			// and an escape counts as what it stands for.
			wantOK(t, with(c.name, `"`+strings.Repeat("é", c.max/2)+`"`))
			wantDetails(t, with(c.name, `"`+strings.Repeat("é", c.max/2+1)+`"`), tooLong)
			wantOK(t, with(c.name, `"`+strings.Repeat(`\u0061`, c.max)+`"`))
			wantDetails(t, with(c.name, `"`+strings.Repeat(`\u00e9`, c.max/2+1)+`"`), tooLong)
		})
	}
}

func TestDecodeControlCharacters(t *testing.T) {
	bad := []string{`\u0000`, `\t`, `\n`, `\r`, `\b`, `\f`, `\u001f`, `\u007f`, "\x7f", `\u0085`, `\u009f`, "\u0080"}
	for _, c := range contract {
		if c.max == 0 {
			continue
		}
		for _, ctl := range bad {
			wantDetails(t, with(c.name, `"a`+ctl+`b"`), map[string][]string{c.name: {msgControl}})
		}
	}
	// Not controls: printable ASCII, non-ASCII letters, emoji, the Unicode line
	// separator, an escaped slash and quote.
	for _, ok := range []string{` spaced `, `é`, `日本`, `🙂`, `\u2028`, `\/`, `\"`, `\\`, `\u00a0`} {
		f := wantOK(t, with("utm_term", `"a`+ok+`b"`))
		if f.UTMTerm == "" {
			t.Errorf("utm_term %q not stored", ok)
		}
	}
	// A raw control byte inside a string is not JSON at all.
	for _, raw := range []string{"\x00", "\t", "\n", "\x1f"} {
		_, d := decode(t, with("gclid", "\"a"+raw+"b\""))
		if len(d) != 1 || len(d["body"]) != 1 || !strings.HasPrefix(d["body"][0], msgNotJSON) {
			t.Errorf("raw %q in a string: details %q, want body not valid JSON", raw, d)
		}
	}
}

func TestDecodeCurrency(t *testing.T) {
	for in, want := range map[string]string{
		"GBP": "GBP", "gbp": "GBP", "Gbp": "GBP", "uSd": "USD", "eur": "EUR", "jpy": "JPY",
		"xau": "XAU", "chf": "CHF", "\\u0067bp": "GBP",
	} {
		f := wantOK(t, with("currency", `"`+in+`"`))
		if f.Currency != want {
			t.Errorf("currency %q stored as %q, want %q", in, f.Currency, want)
		}
	}
	for _, in := range []string{"ZZZ", "GB", "GBPP", "HRK", "BGN", "£", "€", " GBP", "GBP ", "G B", "12A", "gbp\\u0000", "ＧＢＰ", "GBP,USD"} {
		wantDetails(t, with("currency", `"`+in+`"`), map[string][]string{"currency": {msgCurrency}})
	}
	wantDetails(t, with("currency", `826`), map[string][]string{"currency": {msgString}})
}

func TestDecodeTimestamps(t *testing.T) {
	valid := []struct {
		in, stored string // stored is Schema's Value: RFC 3339 with the sender's offset
		instant    time.Time
	}{
		{"2026-02-28T10:00:00Z", "2026-02-28T10:00:00Z", time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC)},
		{"2026-02-28T10:00:00.123Z", "2026-02-28T10:00:00.123Z", time.Date(2026, 2, 28, 10, 0, 0, 123e6, time.UTC)},
		{"2026-02-28T10:00:00.123456789Z", "2026-02-28T10:00:00.123456789Z", time.Date(2026, 2, 28, 10, 0, 0, 123456789, time.UTC)},
		{"2026-02-28T10:00:00.100Z", "2026-02-28T10:00:00.1Z", time.Date(2026, 2, 28, 10, 0, 0, 1e8, time.UTC)},
		{"2026-02-28T10:00:00+05:30", "2026-02-28T10:00:00+05:30", time.Date(2026, 2, 28, 4, 30, 0, 0, time.UTC)},
		{"2026-02-28T10:00:00-08:00", "2026-02-28T10:00:00-08:00", time.Date(2026, 2, 28, 18, 0, 0, 0, time.UTC)},
		{"2026-02-28T10:00:00+14:00", "2026-02-28T10:00:00+14:00", time.Date(2026, 2, 27, 20, 0, 0, 0, time.UTC)},
		{"2026-02-28T10:00:00-12:00", "2026-02-28T10:00:00-12:00", time.Date(2026, 2, 28, 22, 0, 0, 0, time.UTC)},
		{"2026-02-28T10:00:00+00:00", "2026-02-28T10:00:00Z", time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC)},
		{"2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z", time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
		{"1999-12-31T23:59:59+01:00", "1999-12-31T23:59:59+01:00", time.Date(1999, 12, 31, 22, 59, 59, 0, time.UTC)},
		{"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z", time.Unix(0, 0)},
	}
	invalid := []string{
		"2024-01-01",                    // a date without a time
		"01/02/2024",                    // US date
		"02/01/2024 10:00",              // UK date and time
		"2024-01-01 10:00:00Z",          // space instead of T
		"2024-01-01T10:00:00",           // no offset
		"2024-01-01T10:00:00.5",         // no offset, fraction
		"2024-01-01T10:00Z",             // no seconds
		"2024-01-01T10:00:00+0100",      // offset without a colon
		"2024-01-01T10:00:00+01",        // offset without minutes
		"2024-01-01T10:00:00+24:00",     // offset out of range
		"2024-01-01T10:00:00-24:00",     // offset out of range
		"2024-01-01T10:00:00 Z",         // space before Z
		"2024-01-01T10:00:00ZZ",         // trailing garbage
		"2024-01-01T10:00:00Z ",         // trailing space
		" 2024-01-01T10:00:00Z",         // leading space
		"2024-13-01T10:00:00Z",          // month 13
		"2023-02-29T10:00:00Z",          // not a leap year
		"2024-01-01T24:00:00Z",          // hour 24
		"2024-01-01T10:60:00Z",          // minute 60
		"2024-01-01T23:59:60Z",          // leap second
		"24-01-01T10:00:00Z",            // two-digit year
		"20240101T100000Z",              // ISO 8601 basic format
		"Mon, 01 Jan 2024 10:00:00 GMT", // HTTP date
		"1704103200",                    // unix seconds as a string
		"1704103200000",                 // unix milliseconds as a string
		"now",
		"2024-01-01T10:00:00.Z",
	}
	for _, name := range []string{"click_timestamp", "data_timestamp"} {
		get := func(f event.Fields) time.Time {
			if name == "click_timestamp" {
				return f.ClickTimestamp
			}
			return f.DataTimestamp
		}
		var fd event.Field
		for _, s := range event.Schema {
			if s.Name == name {
				fd = s
			}
		}
		for _, v := range valid {
			f := wantOK(t, with(name, `"`+v.in+`"`))
			got := get(f)
			if !got.Equal(v.instant) {
				t.Errorf("%s %q = %v, want instant %v", name, v.in, got, v.instant)
			}
			if s := fd.Value(&f); s != v.stored {
				t.Errorf("%s %q stored as %v, want %q (offset preserved)", name, v.in, s, v.stored)
			}
		}
		for _, in := range invalid {
			wantDetails(t, with(name, `"`+in+`"`), map[string][]string{name: {msgTime}})
		}
		// Unix times as JSON numbers are the wrong type altogether.
		for _, raw := range []string{`1704103200`, `1704103200000`, `1.7041032e9`} {
			wantDetails(t, with(name, raw), map[string][]string{name: {msgString}})
		}
		// Before 1970 nothing was clicked, and year 1 is the zero time that
		// means "absent": refused rather than silently dropped.
		for _, old := range []string{"0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T00:59:59+01:00"} {
			wantDetails(t, with(name, `"`+old+`"`), map[string][]string{name: {"must not be before 1970"}})
		}

		// Up to MaxFuture ahead is clock skew; beyond it is refused, whatever
		// the offset the time is written in.
		edge := now.Add(event.MaxFuture)
		wantOK(t, with(name, `"`+edge.Format(time.RFC3339)+`"`))
		wantOK(t, with(name, `"`+edge.In(time.FixedZone("", -11*3600)).Format(time.RFC3339)+`"`))
		for _, ts := range []time.Time{
			edge.Add(time.Second),
			edge.Add(time.Nanosecond),
			edge.Add(time.Second).In(time.FixedZone("", 14*3600)),
			edge.Add(time.Second).In(time.FixedZone("", -12*3600)),
			now.AddDate(1, 0, 0),
			time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		} {
			wantDetails(t, with(name, `"`+ts.Format(time.RFC3339Nano)+`"`), map[string][]string{name: {msgFuture}})
		}
	}
}

// DecodeBrowser drops a click_timestamp out of range, which says only that
// the visitor's clock is wrong, and is Decode in everything else.
func TestDecodeBrowser(t *testing.T) {
	edge := now.Add(event.MaxFuture)
	for _, ts := range []string{
		edge.Add(time.Second).Format(time.RFC3339),
		edge.Add(time.Nanosecond).In(time.FixedZone("", 14*3600)).Format(time.RFC3339Nano),
		"9999-12-31T23:59:59Z",
		"1969-12-31T23:59:59Z",
	} {
		body := `{"reference":"r","gclid":"G","click_timestamp":"` + ts + `"}`
		f, dropped, err := event.DecodeBrowser([]byte(body), now)
		if err != nil || !dropped || f.Reference != "r" || f.GCLID != "G" || !f.ClickTimestamp.IsZero() {
			t.Errorf("DecodeBrowser(%s) = %+v, dropped %v, %v; want the event without click_timestamp", body, f, dropped, err)
		}
		if _, err := event.Decode([]byte(body), now); err == nil {
			t.Errorf("Decode(%s) accepted it: the webhook must stay strict", body)
		}
	}
	// In range: kept, and nothing reported dropped.
	body := `{"reference":"r","click_timestamp":"` + edge.Format(time.RFC3339) + `"}`
	if f, dropped, err := event.DecodeBrowser([]byte(body), now); err != nil || dropped || !f.ClickTimestamp.Equal(edge) {
		t.Errorf("DecodeBrowser(%s) = %v, dropped %v, %v", body, f.ClickTimestamp, dropped, err)
	}
	// Everything else is as strict as Decode: a malformed time, the same time
	// given twice, a future data_timestamp, and other fields' errors, which
	// an out-of-range click_timestamp does not hide.
	future := `"` + edge.Add(time.Hour).Format(time.RFC3339) + `"`
	for _, c := range []struct {
		body string
		want map[string][]string
	}{
		{`{"reference":"r","click_timestamp":"yesterday"}`, map[string][]string{"click_timestamp": {msgTime}}},
		{`{"reference":"r","click_timestamp":` + future + `,"click_timestamp":` + future + `}`, map[string][]string{"click_timestamp": {msgTwice}}},
		{`{"reference":"r","data_timestamp":` + future + `}`, map[string][]string{"data_timestamp": {msgFuture}}},
		{`{"reference":"","click_timestamp":` + future + `}`, map[string][]string{"reference": {msgEmptyRef}}},
	} {
		_, dropped, err := event.DecodeBrowser([]byte(c.body), now)
		var verr *event.ValidationError
		if !errors.As(err, &verr) || !reflect.DeepEqual(verr.Details, c.want) || dropped {
			t.Errorf("DecodeBrowser(%s) = %v, dropped %v; want details %q", c.body, err, dropped, c.want)
		}
	}
}

func TestDecodeRevenue(t *testing.T) {
	valid := []struct {
		raw  string
		want int64
	}{
		{`0`, 0},
		{`-0`, 0},
		{`-0.0`, 0},
		{`0.0`, 0},
		{`0.1`, 100_000},
		{`0.3`, 300_000},
		{`250`, 250_000_000},
		{`250.00`, 250_000_000},
		{`1e2`, 100_000_000},
		{`1E2`, 100_000_000},
		{`1e+2`, 100_000_000},
		{`1e002`, 100_000_000},
		{`2.5e-1`, 250_000},
		{`25e-2`, 250_000},
		{`123.456789`, 123_456_789},
		{`0.000001`, 1},
		{`1.0000005`, 1_000_001},     // half rounds away from zero
		{`1.00000049999`, 1_000_000}, // below half rounds down
		{`1.0000015`, 1_000_002},
		{`0.0000005`, 1},
		{`0.00000049`, 0},
		{`0.000000099`, 0},
		{`1e-400`, 0},
		{`1e-999999999`, 0},
		{`0e999999999`, 0},
		{`999999999999.999999`, 999_999_999_999_999_999}, // beyond float64's precision
		{`999999999999.9999994`, 999_999_999_999_999_999},
		{`1e12`, 1_000_000_000_000_000_000},
		{`1000000000000`, 1_000_000_000_000_000_000},
		{`1000000000000.000000`, 1_000_000_000_000_000_000},
		{`1000000000000.0000004`, 1_000_000_000_000_000_000},
		{`0.000000000000000000001e33`, 1_000_000_000_000_000_000},
		{`123456789012345678901234567890e-20`, 1_234_567_890_123_457},
		{`9007199254.740993`, 9_007_199_254_740_993}, // 2^53+1 micros
	}
	for _, v := range valid {
		f := wantOK(t, with("revenue_value", v.raw))
		if !f.HasRevenue || f.RevenueMicros != v.want {
			t.Errorf("revenue_value %s = %v micros (has %v), want %d", v.raw, f.RevenueMicros, f.HasRevenue, v.want)
		}
	}
	invalid := []struct{ raw, msg string }{
		{`-1`, msgNegative},
		{`-0.000001`, msgNegative},
		{`-1e-400`, msgNegative},
		{`-1e999999999`, msgNegative},
		{`1000000000001`, msgTooLarge},
		{`1e12.5`, ""},                         // not JSON: reported on body
		{`1000000000000.0000005`, msgTooLarge}, // rounds up past the limit
		{`1000000000000.000001`, msgTooLarge},
		{`1e13`, msgTooLarge},
		{`1e400`, msgTooLarge},
		{`1E+400`, msgTooLarge},
		{`1e999999999`, msgTooLarge},
		{`1e99999999999999999999999999999`, msgTooLarge},
		{`0.1e999999999`, msgTooLarge},
		{`9223372036854775807`, msgTooLarge},
		{`18446744073709551616`, msgTooLarge},
		{`99999999999999999999e-2`, msgTooLarge},
	}
	for _, v := range invalid {
		if v.msg == "" {
			_, d := decode(t, with("revenue_value", v.raw))
			if len(d["body"]) != 1 || !strings.HasPrefix(d["body"][0], msgNotJSON) {
				t.Errorf("revenue_value %s: details %q, want body not valid JSON", v.raw, d)
			}
			continue
		}
		wantDetails(t, with("revenue_value", v.raw), map[string][]string{"revenue_value": {v.msg}})
	}
	// Not finite, not decimal, not JSON: the whole body is refused.
	for _, raw := range []string{`NaN`, `Infinity`, `-Infinity`, `+1`, `01`, `.5`, `5.`, `0x10`, `1_000`, `1e`, `--1`} {
		_, d := decode(t, with("revenue_value", raw))
		if len(d) != 1 || len(d["body"]) != 1 || !strings.HasPrefix(d["body"][0], msgNotJSON) {
			t.Errorf("revenue_value %s: details %q, want body not valid JSON", raw, d)
		}
	}
}

// A literal longer than any exponent clamp must still be read exactly: 10^-1000001
// scaled by 10^1000006 is 100000, and 10^1000000 scaled by 10^-1000006 is one
// millionth.
func TestDecodeRevenueLongLiteral(t *testing.T) {
	for _, v := range []struct {
		raw  string
		want int64
	}{
		{"0." + strings.Repeat("0", 1_000_000) + "1e1000006", 100_000_000_000},
		{"1" + strings.Repeat("0", 1_000_000) + "e-1000006", 1},
		{"1" + strings.Repeat("0", 1_000_000) + "e-1000012", 0},
		{"0." + strings.Repeat("0", 100_000) + "5e100001", 5_000_000},
	} {
		f := wantOK(t, with("revenue_value", v.raw))
		if f.RevenueMicros != v.want {
			t.Errorf("revenue_value of %d bytes = %d micros, want %d", len(v.raw), f.RevenueMicros, v.want)
		}
	}
	wantDetails(t, with("revenue_value", "1"+strings.Repeat("0", 100_000)+"e-99980"), map[string][]string{"revenue_value": {msgTooLarge}})
}

// Huge exponents must cost no more than small ones: a decoder that builds the
// number (math/big, strconv then scale) takes seconds or gigabytes here.
func TestDecodeRevenueHugeExponentIsFast(t *testing.T) {
	bodies := []string{
		with("revenue_value", `1e999999999`),
		with("revenue_value", `1e-999999999`),
		with("revenue_value", `9.99e2147483647`),
		with("revenue_value", `1e9223372036854775808`),
		with("revenue_value", `1e-9223372036854775808`),
		with("revenue_value", `1e`+strings.Repeat("9", 10_000)),
		with("ignored", `1e999999999`),
	}
	start := time.Now()
	for range 100 {
		for _, b := range bodies {
			event.Decode([]byte(b), now)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("700 decodes of huge exponents took %v", d)
	}
	allocs := testing.AllocsPerRun(20, func() { event.Decode([]byte(bodies[0]), now) })
	if base := testing.AllocsPerRun(20, func() { event.Decode([]byte(with("revenue_value", "1")), now) }); allocs > base+2 {
		t.Errorf("1e999999999 allocates %v times, 1 allocates %v", allocs, base)
	}
}

func TestDecodeDuplicateKeys(t *testing.T) {
	cases := []struct {
		body string
		want map[string][]string
	}{
		{`{"reference":"a","reference":"b"}`, map[string][]string{"reference": {msgTwice}}},
		{`{"reference":"a","reference":"a"}`, map[string][]string{"reference": {msgTwice}}},
		{`{"reference":"a","refer\u0065nce":"b"}`, map[string][]string{"reference": {msgTwice}}},
		{`{"reference":null,"reference":"a"}`, map[string][]string{"reference": {msgTwice}}},
		{`{"reference":"a","gclid":"x","gclid":"x"}`, map[string][]string{"gclid": {msgTwice}}},
		{`{"reference":"a","revenue_value":1,"revenue_value":2}`, map[string][]string{"revenue_value": {msgTwice}}},
		{`{"reference":"a","revenue_value":1,"revenue_value":"x"}`, map[string][]string{"revenue_value": {msgTwice}}},
		{`{"reference":"a","currency":"GBP","currency":"gbp"}`, map[string][]string{"currency": {msgTwice}}},
		{`{"reference":"a","currency":null,"currency":null}`, map[string][]string{"currency": {msgTwice}}},
		{`{"reference":"a","data_timestamp":"2026-01-01T00:00:00Z","data_timestamp":"2026-01-01T00:00:00Z"}`, map[string][]string{"data_timestamp": {msgTwice}}},
		{`{"reference":"a","utm_source":1,"utm_source":"x"}`, map[string][]string{"utm_source": {msgString, msgTwice}}},
		{`{"reference":"a","gclid":"x","gclid":"y","gclid":"z"}`, map[string][]string{"gclid": {msgTwice}}}, // said once
	}
	for _, c := range cases {
		wantDetails(t, c.body, c.want)
	}
	for _, c := range contract {
		if c.name == "reference" {
			continue
		}
		_, d := decode(t, `{"reference":"a","`+c.name+`":null,"`+c.name+`":null}`)
		if !reflect.DeepEqual(d, map[string][]string{c.name: {msgTwice}}) {
			t.Errorf("%s twice: details %q", c.name, d)
		}
	}
	// Unknown fields may repeat, and a known field may share a name with an
	// unknown one in another case.
	f := wantOK(t, `{"reference":"a","x":1,"x":{"y":2},"x":[3],"Gclid":"u","GCLID":"v","gclid":"w"}`)
	if f.GCLID != "w" {
		t.Errorf("gclid = %q, want w", f.GCLID)
	}
}

func TestDecodeUnknownFieldsIgnored(t *testing.T) {
	body := `{
		"e-mail": "a@example.com",
		"nested": {"reference": 1, "deeper": {"revenue_value": "x", "list": [1, {"a": [[["}"]]]}]}},
		"array": [{"gclid": 5}, "]", "}", "\"", "\\", "{[", null, true, false, -1.5e-3],
		"tricky \"key\" }": "value with } and ] and \" inside",
		"revenue": "250",
		"Reference": 5,
		"ignored_huge": 1e999999999,
		"": "",
		"reference": "CRM-REF-001",
		"after": {"reference": "not me"}
	}`
	f := wantOK(t, body)
	if f.Reference != "CRM-REF-001" {
		t.Errorf("reference = %q", f.Reference)
	}
	if f != (event.Fields{Reference: "CRM-REF-001"}) {
		t.Errorf("unknown fields set something: %+v", f)
	}
	// Whitespace of every JSON kind between tokens.
	f = wantOK(t, " \t\r\n{ \"reference\" \n:\t\"r\" , \"gclid\"\r\n:\"g\"\n}\n\t ")
	if f.Reference != "r" || f.GCLID != "g" {
		t.Errorf("decoded %+v", f)
	}
}

func TestDecodeBody(t *testing.T) {
	cases := []struct {
		name, body string
		msg        string // the one message under "body"; a msgNotJSON prefix matches
	}{
		{"empty", "", msgEmpty},
		{"space", " ", msgEmpty},
		{"whitespace", " \t\r\n\n ", msgEmpty},
		{"vertical tab", "\v", msgNotJSON},
		{"no-break space", "\u00a0", msgNotJSON},
		{"byte order mark", "\ufeff{\"reference\":\"a\"}", msgNotJSON},
		{"not JSON", "reference=CRM-1&gclid=x", msgNotJSON},
		{"form words", "hello", msgNotJSON},
		{"single quotes", `{'reference':'a'}`, msgNotJSON},
		{"unquoted key", `{reference:"a"}`, msgNotJSON},
		{"trailing comma", `{"reference":"a",}`, msgNotJSON},
		{"truncated", `{"reference":"a"`, msgNotJSON},
		{"truncated string", `{"reference":"a`, msgNotJSON},
		{"two objects", `{}{}`, msgNotJSON},
		{"object then garbage", `{} x`, msgNotJSON},
		{"valid then garbage", `{"reference":"a"} x`, msgNotJSON},
		{"object then array", `{"reference":"a"}[]`, msgNotJSON},
		{"comment", `{"reference":"a"} // c`, msgNotJSON},
		{"NUL after", "{\"reference\":\"a\"}\x00", msgNotJSON},
		{"bad escape", `{"reference":"\x"}`, msgNotJSON},
		{"short unicode escape", `{"reference":"\u12"}`, msgNotJSON},
		{"array", `[]`, msgObject},
		{"array of object", `[{"reference":"a"}]`, msgObject},
		{"string", `"reference"`, msgObject},
		{"number", `42`, msgObject},
		{"null", `null`, msgObject},
		{"true", `true`, msgObject},
		{"padded null", " null\n", msgObject},
		{"invalid UTF-8 in value", "{\"reference\":\"\xff\"}", msgUTF8},
		{"invalid UTF-8 in unknown key", "{\"reference\":\"a\",\"\xfe\":1}", msgUTF8},
		{"overlong encoding", "{\"reference\":\"\xc0\xaf\"}", msgUTF8},
		{"encoded surrogate", "{\"reference\":\"\xed\xa0\x80\"}", msgUTF8},
		{"truncated sequence", "{\"reference\":\"\xe2\x82\"}", msgUTF8},
		{"latin-1", "{\"reference\":\"caf\xe9\"}", msgUTF8},
		{"invalid UTF-8 outside JSON", "\xff", msgUTF8},
	}
	for _, c := range cases {
		_, d := decode(t, c.body)
		ok := len(d) == 1 && len(d["body"]) == 1 && (d["body"][0] == c.msg ||
			c.msg == msgNotJSON && strings.HasPrefix(d["body"][0], msgNotJSON) && len(d["body"][0]) > len(msgNotJSON))
		if !ok {
			t.Errorf("%s: details %q, want body [%q]", c.name, d, c.msg)
		}
	}
}

func TestDecodeEscapes(t *testing.T) {
	// An escaped lone surrogate is valid JSON; it decodes to U+FFFD, as
	// encoding/json does, rather than to invalid UTF-8.
	f := wantOK(t, `{"reference":"a\ud800b","gclid":"\ud83d\ude42","fbc":"fb.1.\u0031"}`)
	if f.Reference != "a\ufffdb" || f.GCLID != "🙂" || f.FBC != "fb.1.1" {
		t.Errorf("decoded %+v", f)
	}
}

func TestDecodeDeepNesting(t *testing.T) {
	const depth = 10_000
	deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	start := time.Now()
	wantDetails(t, deep, map[string][]string{"body": {msgObject}})
	// Nested as an unknown field's value it is ignored...
	shallower := strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1)
	if f := wantOK(t, `{"x":`+shallower+`,"reference":"a"}`); f.Reference != "a" {
		t.Errorf("reference = %q", f.Reference)
	}
	// ...until it passes the parser's depth limit, which refuses the body.
	for _, b := range []string{
		`{"x":` + deep + `,"reference":"a"}`,
		`{"reference":"a","x":` + strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat("}", depth) + `}`,
		strings.Repeat("[", 100*depth),
	} {
		_, d := decode(t, b)
		if len(d) != 1 || len(d["body"]) != 1 || !strings.HasPrefix(d["body"][0], msgNotJSON) {
			t.Errorf("%d levels: details %.200q, want body not valid JSON", strings.Count(b, "["), d)
		}
	}
	// A wrongly typed known field holding a deep value reports the type.
	wantDetails(t, `{"reference":"a","gclid":`+shallower+`}`, map[string][]string{"gclid": {msgString}})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("deep nesting took %v", d)
	}
}

func TestDecodeCollectsEveryError(t *testing.T) {
	body := `{
		"reference": 1,
		"utm_source": 2,
		"gclid": "` + strings.Repeat("g", 513) + `",
		"fbp": "a\u0000b",
		"click_timestamp": "2024-01-01",
		"revenue_value": -1,
		"currency": "ZZZ",
		"data_timestamp": "2099-01-01T00:00:00Z",
		"gender": true,
		"industry": "ok",
		"utm_term": "ok"
	}`
	wantDetails(t, body, map[string][]string{
		"reference":       {msgString},
		"utm_source":      {msgString},
		"gclid":           {"must be at most 512 bytes"},
		"fbp":             {msgControl},
		"click_timestamp": {msgTime},
		"revenue_value":   {msgNegative},
		"currency":        {msgCurrency},
		"data_timestamp":  {msgFuture},
		"gender":          {msgString},
	})

	// Every field wrong at once: all 25 reported.
	var b strings.Builder
	want := map[string][]string{}
	b.WriteString("{")
	for i, c := range contract {
		if i > 0 {
			b.WriteString(",")
		}
		if c.name == "revenue_value" {
			b.WriteString(`"revenue_value":"250"`)
			want[c.name] = []string{msgNumber}
		} else {
			b.WriteString(`"` + c.name + `":[1]`)
			want[c.name] = []string{msgString}
		}
	}
	b.WriteString("}")
	wantDetails(t, b.String(), want)
}

func TestDecodeFullPayload(t *testing.T) {
	f := wantOK(t, `{
		"reference": "CRM-REF-001", "item_reference": "DEAL-9",
		"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand-search", "utm_content": "ad-42", "utm_term": "pruuv",
		"gclid": "EAIaIQobCh...", "wbraid": "wb", "gbraid": "gb", "ttclid": "tt", "msclkid": "ms",
		"fbc": "fb.1.1700000000000.AbC", "fbp": "fb.1.1700000000000.123",
		"click_timestamp": "2026-02-20T08:00:00+01:00", "revenue_value": 1234.5, "currency": "eur",
		"data_timestamp": "2026-03-01T11:00:00Z",
		"gender": "f", "age_range": "25-34", "location_country": "GB", "location_region": "London",
		"job_title": "CTO", "company_size": "11-50", "industry": "SaaS"
	}`)
	want := event.Fields{
		Reference: "CRM-REF-001", ItemReference: "DEAL-9",
		UTMSource: "google", UTMMedium: "cpc", UTMCampaign: "brand-search", UTMContent: "ad-42", UTMTerm: "pruuv",
		GCLID: "EAIaIQobCh...", WBRAID: "wb", GBRAID: "gb", TTCLID: "tt", MSCLKID: "ms",
		FBC: "fb.1.1700000000000.AbC", FBP: "fb.1.1700000000000.123",
		ClickTimestamp: f.ClickTimestamp, HasRevenue: true, RevenueMicros: 1_234_500_000, Currency: "EUR",
		DataTimestamp: f.DataTimestamp,
		Gender:        "f", AgeRange: "25-34", LocationCountry: "GB", LocationRegion: "London",
		JobTitle: "CTO", CompanySize: "11-50", Industry: "SaaS",
	}
	if f != want {
		t.Errorf("decoded\n%+v\nwant\n%+v", f, want)
	}
	if !f.ClickTimestamp.Equal(time.Date(2026, 2, 20, 7, 0, 0, 0, time.UTC)) || !f.DataTimestamp.Equal(time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("timestamps %v, %v", f.ClickTimestamp, f.DataTimestamp)
	}
	if _, off := f.ClickTimestamp.Zone(); off != 3600 {
		t.Errorf("click_timestamp offset %d s, want 3600", off)
	}
}

func TestFormatMicros(t *testing.T) {
	for m, want := range map[int64]string{
		0:                         "0",
		1:                         "0.000001",
		10:                        "0.00001",
		100_000:                   "0.1",
		1_500_000:                 "1.5",
		1_000_000:                 "1",
		250_000_000:               "250",
		123_456_789:               "123.456789",
		1_000_001:                 "1.000001",
		999_999_999_999_999_999:   "999999999999.999999",
		1_000_000_000_000_000_000: "1000000000000",
		-1:                        "-0.000001",
		-1_500_000:                "-1.5",
		-250_000_000:              "-250",
		math.MaxInt64:             "9223372036854.775807",
		math.MinInt64:             "-9223372036854.775808",
		math.MinInt64 + 1:         "-9223372036854.775807",
	} {
		if got := event.FormatMicros(m); got != want {
			t.Errorf("FormatMicros(%d) = %q, want %q", m, got, want)
		}
	}
}

// FormatMicros writes what Decode reads back: every amount the decoder can
// produce survives the trip exactly.
func TestFormatMicrosRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ms := []int64{0, 1, 9, 10, 999_999, 1_000_000, 1_000_001, event.MaxRevenue * 1_000_000}
	for range 2000 {
		ms = append(ms, r.Int64N(event.MaxRevenue*1_000_000+1), r.Int64N(10_000_000))
	}
	for _, m := range ms {
		s := event.FormatMicros(m)
		f := wantOK(t, with("revenue_value", s))
		if f.RevenueMicros != m {
			t.Fatalf("FormatMicros(%d) = %s, which decodes to %d", m, s, f.RevenueMicros)
		}
	}
}

func TestDecodeDoesNotAliasBody(t *testing.T) {
	body := []byte(`{"reference":"abc","gclid":"xyz"}`)
	f, err := event.Decode(body, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = 'X'
	}
	if f.Reference != "abc" || f.GCLID != "xyz" {
		t.Errorf("fields changed with the body: %+v", f)
	}
}
