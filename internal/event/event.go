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
}

var schemaIndex = func() map[string]int {
	m := make(map[string]int, len(Schema))
	for i, f := range Schema {
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
