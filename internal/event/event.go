// Package event defines a funnel event — the payload fields of the Webhook API
// and what Pruuv records about its arrival — and the strict decoder that turns
// a request body into one.
package event

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Source says which surface recorded an event.
type Source string

// The sources an event can come from.
const (
	SourceWebhook Source = "webhook"
	SourcePixel   Source = "pixel"
	SourceImport  Source = "import"
)

// Fields holds the documented payload fields of one event. An empty string or a
// zero time means the field was absent; RevenueMicros is meaningful only when
// HasRevenue is set.
type Fields struct {
	Reference     string
	ItemReference string
	UTMSource     string
	UTMMedium     string
	UTMCampaign   string
	UTMContent    string
	UTMTerm       string
	GCLID         string
	WBRAID        string
	GBRAID        string
	TTCLID        string
	MSCLKID       string
	FBC           string
	FBP           string

	ClickTimestamp time.Time
	HasRevenue     bool
	RevenueMicros  int64 // revenue_value × 1,000,000, exact
	Currency       string
	DataTimestamp  time.Time

	Gender          string
	AgeRange        string
	LocationCountry string
	LocationRegion  string
	JobTitle        string
	CompanySize     string
	Industry        string

	// Signals that raise the ad platforms' match rates (SPEC §3's optional
	// extensions). Email and phone arrive in clear and are kept only as the
	// hashes the platforms expect; see identity.go.
	EmailSHA256       string
	EmailGoogleSHA256 string
	PhoneSHA256       string // of E.164 with "+"
	PhoneMetaSHA256   string // of the same digits without "+"
	ClientIPAddress   string
	ClientUserAgent   string
	EventSourceURL    string
}

// Event is one contact reaching one stage, as stored.
type Event struct {
	ID         string
	StageID    string
	Source     Source
	ReceivedAt time.Time
	Fields
}

type kind int

const (
	kindString kind = iota
	kindTime
	kindMoney
	kindCurrency
	kindIP    // client_ip_address: an IPv4 or IPv6 address
	kindURL   // event_source_url: an absolute http(s) URL
	kindHash  // a stored hash: a column, never accepted as input
	kindEmail // email: input only, stored as hashes
	kindPhone // phone: input only, stored as hashes
)

// Field describes one payload field: its JSON name (also its column name), its
// type and, for strings, the longest value accepted in bytes.
type Field struct {
	Name string
	kind kind
	max  int
	str  func(*Fields) *string
	tim  func(*Fields) *time.Time
}

// Length limits in bytes. Click ids and UTM values are far shorter in practice;
// the limits only stop abuse.
const (
	maxReference = 255
	maxClickID   = 512
	maxUTM       = 1024
	maxDemo      = 255
	maxAgent     = 1024
	maxURL       = 2048
	maxContact   = 254
)

func s(name string, max int, f func(*Fields) *string) Field {
	return Field{Name: name, kind: kindString, max: max, str: f}
}

// Schema lists every documented payload field in the seed page's order. The
// decoder, the store and the JSON output are all driven from it, so a field is
// added in one place.
var Schema = []Field{
	s("reference", maxReference, func(f *Fields) *string { return &f.Reference }),
	s("item_reference", maxReference, func(f *Fields) *string { return &f.ItemReference }),
	s("utm_source", maxUTM, func(f *Fields) *string { return &f.UTMSource }),
	s("utm_medium", maxUTM, func(f *Fields) *string { return &f.UTMMedium }),
	s("utm_campaign", maxUTM, func(f *Fields) *string { return &f.UTMCampaign }),
	s("utm_content", maxUTM, func(f *Fields) *string { return &f.UTMContent }),
	s("utm_term", maxUTM, func(f *Fields) *string { return &f.UTMTerm }),
	s("gclid", maxClickID, func(f *Fields) *string { return &f.GCLID }),
	s("wbraid", maxClickID, func(f *Fields) *string { return &f.WBRAID }),
	s("gbraid", maxClickID, func(f *Fields) *string { return &f.GBRAID }),
	s("ttclid", maxClickID, func(f *Fields) *string { return &f.TTCLID }),
	s("msclkid", maxClickID, func(f *Fields) *string { return &f.MSCLKID }),
	s("fbc", maxClickID, func(f *Fields) *string { return &f.FBC }),
	s("fbp", maxClickID, func(f *Fields) *string { return &f.FBP }),
	{Name: "click_timestamp", kind: kindTime, tim: func(f *Fields) *time.Time { return &f.ClickTimestamp }},
	{Name: "revenue_value", kind: kindMoney},
	{Name: "currency", kind: kindCurrency, str: func(f *Fields) *string { return &f.Currency }},
	{Name: "data_timestamp", kind: kindTime, tim: func(f *Fields) *time.Time { return &f.DataTimestamp }},
	s("gender", maxDemo, func(f *Fields) *string { return &f.Gender }),
	s("age_range", maxDemo, func(f *Fields) *string { return &f.AgeRange }),
	s("location_country", maxDemo, func(f *Fields) *string { return &f.LocationCountry }),
	s("location_region", maxDemo, func(f *Fields) *string { return &f.LocationRegion }),
	s("job_title", maxDemo, func(f *Fields) *string { return &f.JobTitle }),
	s("company_size", maxDemo, func(f *Fields) *string { return &f.CompanySize }),
	s("industry", maxDemo, func(f *Fields) *string { return &f.Industry }),
	{Name: "client_ip_address", kind: kindIP, max: 64, str: func(f *Fields) *string { return &f.ClientIPAddress }},
	s("client_user_agent", maxAgent, func(f *Fields) *string { return &f.ClientUserAgent }),
	{Name: "event_source_url", kind: kindURL, max: maxURL, str: func(f *Fields) *string { return &f.EventSourceURL }},
	hash("email_sha256", func(f *Fields) *string { return &f.EmailSHA256 }),
	hash("email_google_sha256", func(f *Fields) *string { return &f.EmailGoogleSHA256 }),
	hash("phone_sha256", func(f *Fields) *string { return &f.PhoneSHA256 }),
	hash("phone_meta_sha256", func(f *Fields) *string { return &f.PhoneMetaSHA256 }),
}

func hash(name string, f func(*Fields) *string) Field {
	return Field{Name: name, kind: kindHash, str: f}
}

// Inputs are the names the decoder accepts: every Schema field but the stored
// hashes, plus email and phone, which are hashed on the way in.
var Inputs = func() []Field {
	var in []Field
	for _, f := range Schema {
		if f.kind != kindHash {
			in = append(in, f)
		}
	}
	return append(in,
		Field{Name: "email", kind: kindEmail, max: maxContact},
		Field{Name: "phone", kind: kindPhone, max: maxContact})
}()

var inputIndex = func() map[string]int {
	if len(Inputs) > 64 {
		panic("event: the decoder's seen-set holds at most 64 inputs")
	}
	m := make(map[string]int, len(Inputs))
	for i, f := range Inputs {
		m[f.Name] = i
	}
	return m
}()

// Value returns the field's value in f as a database value: a string, an int64
// (revenue in micros), or nil when absent. Times are RFC 3339 text keeping the
// sender's offset.
func (fd Field) Value(f *Fields) any {
	switch fd.kind {
	case kindTime:
		t := *fd.tim(f)
		if t.IsZero() {
			return nil
		}
		return t.Format(time.RFC3339Nano)
	case kindMoney:
		if !f.HasRevenue {
			return nil
		}
		return f.RevenueMicros
	default:
		if v := *fd.str(f); v != "" {
			return v
		}
		return nil
	}
}

// Scan sets the field in f from a database value read back by Value's
// counterpart: a *string, *int64 or nil pointer target filled by database/sql.
func (fd Field) Scan(f *Fields, text *string, num *int64) error {
	switch fd.kind {
	case kindTime:
		if text == nil {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, *text)
		if err != nil {
			return err
		}
		*fd.tim(f) = t
	case kindMoney:
		if num != nil {
			f.HasRevenue, f.RevenueMicros = true, *num
		}
	default:
		if text != nil {
			*fd.str(f) = *text
		}
	}
	return nil
}

// Numeric reports whether the field is stored as an integer rather than text.
func (fd Field) Numeric() bool { return fd.kind == kindMoney }

// Column is the field's database column: its name, except revenue, which is
// stored exactly as an integer number of millionths.
func (fd Field) Column() string {
	if fd.kind == kindMoney {
		return "revenue_micros"
	}
	return fd.Name
}

// MarshalJSON writes the event as the CLI and API show it: every payload field
// under its documented name (null when absent) plus event_id, stage_id, source
// and received_at.
func (e Event) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"event_id":`)
	writeJSONString(&b, e.ID)
	b.WriteString(`,"stage_id":`)
	writeJSONString(&b, e.StageID)
	b.WriteString(`,"source":`)
	writeJSONString(&b, string(e.Source))
	b.WriteString(`,"received_at":`)
	writeJSONString(&b, e.ReceivedAt.UTC().Format(time.RFC3339Nano))
	for _, fd := range Schema {
		b.WriteString(`,"`)
		b.WriteString(fd.Name)
		b.WriteString(`":`)
		switch v := fd.Value(&e.Fields).(type) {
		case nil:
			b.WriteString("null")
		case int64:
			b.WriteString(FormatMicros(v))
		case string:
			writeJSONString(&b, v)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	out, _ := json.Marshal(s) // marshalling a string cannot fail
	b.Write(out)
}

// FormatMicros renders an amount in millionths as a plain decimal number with no
// trailing zeros: 250000000 → "250", 1500000 → "1.5".
func FormatMicros(m int64) string {
	u := uint64(m)
	if m < 0 {
		u = -u // the magnitude, right even for math.MinInt64
	}
	whole, frac := u/1_000_000, u%1_000_000
	out := strconv.FormatUint(whole, 10)
	if frac != 0 {
		fs := strconv.FormatUint(frac+1_000_000, 10)[1:]
		out += "." + string(bytes.TrimRight([]byte(fs), "0"))
	}
	if m < 0 {
		out = "-" + out
	}
	return out
}
