package report

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/pruuv/pruuv/internal/event"
)

// JSONRow is a Row as `pruuv report --json` and the admin API write it:
// the breakdown field under its own name ("utm_campaign": "brand", null for
// none; absent when Field is ""), then stage_id, stage_name, position,
// contacts, revenue (currency → exact decimal number) and
// conversion_from_previous (a number or null).
type JSONRow struct {
	Field string
	Row   Row
}

// MarshalJSON writes the row as described on JSONRow.
func (j JSONRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	if j.Field != "" {
		v, err := json.Marshal(j.Row.Value)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%q:%s,", j.Field, v)
	}
	fields := struct {
		StageID    string             `json:"stage_id"`
		StageName  string             `json:"stage_name"`
		Position   int                `json:"position"`
		Contacts   int                `json:"contacts"`
		Revenue    map[string]jsonNum `json:"revenue"`
		Conversion *float64           `json:"conversion_from_previous"`
	}{j.Row.StageID, j.Row.StageName, j.Row.Position, j.Row.Contacts, map[string]jsonNum{}, j.Row.ConversionFromPrevious}
	for c, m := range j.Row.Revenue {
		fields.Revenue[c] = jsonNum(m)
	}
	rest, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	b.Write(rest[1:])
	return b.Bytes(), nil
}

// jsonNum is an amount in millionths written as an exact JSON number.
type jsonNum int64

func (m jsonNum) MarshalJSON() ([]byte, error) { return []byte(event.FormatMicros(int64(m))), nil }

// JSONRows returns the report's rows (Rows, broken down when the report is)
// for encoding.
func (r *Report) JSONRows() []JSONRow {
	out := make([]JSONRow, len(r.Rows))
	for i, row := range r.Rows {
		out[i] = JSONRow{Field: r.By, Row: row}
	}
	return out
}

// JSONTotals returns the per-stage rows (Totals) for encoding, without a
// breakdown field.
func (r *Report) JSONTotals() []JSONRow {
	out := make([]JSONRow, len(r.Totals))
	for i, row := range r.Totals {
		out[i] = JSONRow{Row: row}
	}
	return out
}
