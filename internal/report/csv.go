package report

import (
	"encoding/csv"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/pruuv/pruuv/internal/event"
)

// Table names one of a report's tables.
type Table int

// The tables of a report.
const (
	TableStages    Table = iota + 1 // Totals: one row per stage
	TableBreakdown                  // Rows: one row per breakdown value and stage
	TableDaily                      // Daily: one row per day and stage
)

// Currencies lists the currencies any row of the report has revenue in,
// sorted.
func (r *Report) Currencies() []string {
	seen := map[string]bool{}
	var out []string
	for _, rows := range [][]Row{r.Totals, r.Rows} {
		for _, row := range rows {
			for c := range row.Revenue {
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// NoneLabel is how a missing breakdown value is shown.
const NoneLabel = "(none)"

// Label is a row's breakdown value as shown: the value, or NoneLabel.
func (row Row) Label() string {
	if row.Value == nil {
		return NoneLabel
	}
	return *row.Value
}

// WriteCSV writes one of the report's tables as CSV (RFC 4180, CRLF line
// ends) with a header row. Revenue has one column per currency
// ("revenue_GBP"), as an exact decimal; conversion is a ratio with up to six
// decimals, empty for the first stage or when the previous stage has no
// contacts. Text that a spreadsheet would run as a formula — starting with
// =, +, - or @ (or a tab or carriage return) — is written with a leading '.
func WriteCSV(w io.Writer, r *Report, t Table) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	curs := r.Currencies()
	var header []string
	switch t {
	case TableDaily:
		header = []string{"date", "stage_id", "stage_name", "position", "contacts"}
	case TableBreakdown:
		if r.By != "" {
			header = append(header, r.By)
		}
		fallthrough
	default:
		header = append(header, "stage_id", "stage_name", "position", "contacts", "conversion_from_previous")
		for _, c := range curs {
			header = append(header, "revenue_"+c)
		}
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	if t == TableDaily {
		names := map[string]Stage{}
		for _, s := range r.Stages {
			names[s.ID] = s
		}
		for _, d := range r.Daily {
			s := names[d.StageID]
			if err := cw.Write([]string{d.Date.String(), cell(d.StageID), cell(s.Name), strconv.Itoa(s.Position), strconv.Itoa(d.Contacts)}); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	rows := r.Totals
	if t == TableBreakdown {
		rows = r.Rows
	}
	for _, row := range rows {
		var rec []string
		if t == TableBreakdown && r.By != "" {
			rec = append(rec, cell(row.Label()))
		}
		conv := ""
		if row.ConversionFromPrevious != nil {
			conv = strconv.FormatFloat(*row.ConversionFromPrevious, 'f', -1, 64)
			if c := strconv.FormatFloat(*row.ConversionFromPrevious, 'f', 6, 64); len(c) < len(conv) {
				conv = strings.TrimRight(strings.TrimRight(c, "0"), ".")
			}
		}
		rec = append(rec, cell(row.StageID), cell(row.StageName), strconv.Itoa(row.Position), strconv.Itoa(row.Contacts), conv)
		for _, c := range curs {
			if m, ok := row.Revenue[c]; ok {
				rec = append(rec, event.FormatMicros(m))
			} else {
				rec = append(rec, "0")
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cell guards text against formula injection: spreadsheet programs run a
// cell that starts with =, +, - or @ (and some also after a leading tab or
// carriage return), so such text gets a leading apostrophe, which they
// show as text. Numbers the report writes itself never pass through here.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
