package report_test

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/report"
)

func ptr[T any](v T) *T { return &v }

// handReport is a report built by hand, with values that need quoting or
// guarding.
func handReport() *report.Report {
	stages := []report.Stage{{ID: "stg_a", Name: "Lead", Position: 1}, {ID: "stg_b", Name: "Won, finally", Position: 2}}
	row := func(v *string, s int, n int, rev map[string]int64, conv *float64) report.Row {
		return report.Row{Value: v, StageID: stages[s].ID, StageName: stages[s].Name, Position: s + 1, Contacts: n, Revenue: rev, ConversionFromPrevious: conv}
	}
	from := report.Date{Year: 2026, Month: time.March, Day: 1}
	return &report.Report{FunnelName: `Leads <&> "2026"`, TimeZone: "UTC", From: from, To: from.AddDays(1), By: "utm_campaign", Stages: stages,
		Totals: []report.Row{row(nil, 0, 30, map[string]int64{}, nil), row(nil, 1, 10, map[string]int64{"GBP": 1_500_000, "EUR": 7}, ptr(1.0/3))},
		Rows: []report.Row{
			row(ptr("=SUM(A1:A9)"), 0, 10, map[string]int64{}, nil), row(ptr("=SUM(A1:A9)"), 1, 5, map[string]int64{"GBP": 1_500_000}, ptr(0.5)),
			row(ptr(`say "hi", then go`), 0, 4, map[string]int64{}, nil), row(ptr(`say "hi", then go`), 1, 0, map[string]int64{}, ptr(0.0)),
			row(ptr("+44"), 0, 1, nil, nil), row(ptr("+44"), 1, 1, nil, ptr(1.0)),
			row(ptr("-2"), 0, 1, nil, nil), row(ptr("@me"), 0, 1, nil, nil),
			row(nil, 0, 14, map[string]int64{}, nil), row(nil, 1, 4, map[string]int64{"EUR": 7}, ptr(4.0/14)),
		},
		Daily: []report.DayRow{{Date: from, StageID: "stg_a", Contacts: 20}, {Date: from, StageID: "stg_b", Contacts: 4},
			{Date: from.AddDays(1), StageID: "stg_a", Contacts: 10}, {Date: from.AddDays(1), StageID: "stg_b", Contacts: 6}},
	}
}

func readCSV(t *testing.T, r *report.Report, table report.Table) ([][]string, string) {
	t.Helper()
	var b bytes.Buffer
	if err := report.WriteCSV(&b, r, table); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b.Bytes())).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, b.String())
	}
	return recs, b.String()
}

func TestCSV(t *testing.T) {
	r := handReport()
	recs, raw := readCSV(t, r, report.TableBreakdown)
	if want := []string{"utm_campaign", "stage_id", "stage_name", "position", "contacts", "conversion_from_previous", "revenue_EUR", "revenue_GBP"}; !reflect.DeepEqual(recs[0], want) {
		t.Errorf("header %q, want %q", recs[0], want)
	}
	if len(recs) != 1+len(r.Rows) {
		t.Fatalf("%d records, want %d", len(recs), 1+len(r.Rows))
	}
	// Formula guard, RFC 4180 quoting and exact figures.
	for i, want := range [][]string{
		{"'=SUM(A1:A9)", "stg_a", "Lead", "1", "10", "", "0", "0"},
		{"'=SUM(A1:A9)", "stg_b", "Won, finally", "2", "5", "0.5", "0", "1.5"},
		{`say "hi", then go`, "stg_a", "Lead", "1", "4", "", "0", "0"},
		{`say "hi", then go`, "stg_b", "Won, finally", "2", "0", "0", "0", "0"},
		{"'+44", "stg_a", "Lead", "1", "1", "", "0", "0"},
		{"'+44", "stg_b", "Won, finally", "2", "1", "1", "0", "0"},
		{"'-2", "stg_a", "Lead", "1", "1", "", "0", "0"},
		{"'@me", "stg_a", "Lead", "1", "1", "", "0", "0"},
		{"(none)", "stg_a", "Lead", "1", "14", "", "0", "0"},
		{"(none)", "stg_b", "Won, finally", "2", "4", "0.285714", "0.000007", "0"},
	} {
		if !reflect.DeepEqual(recs[i+1], want) {
			t.Errorf("record %d = %q, want %q", i+1, recs[i+1], want)
		}
	}
	if !strings.Contains(raw, "\"say \"\"hi\"\", then go\"") || !strings.Contains(raw, "\r\n") {
		t.Errorf("not RFC 4180 quoting with CRLF:\n%s", raw)
	}

	recs, _ = readCSV(t, r, report.TableStages)
	if want := [][]string{
		{"stage_id", "stage_name", "position", "contacts", "conversion_from_previous", "revenue_EUR", "revenue_GBP"},
		{"stg_a", "Lead", "1", "30", "", "0", "0"},
		{"stg_b", "Won, finally", "2", "10", "0.333333", "0.000007", "1.5"},
	}; !reflect.DeepEqual(recs, want) {
		t.Errorf("stages table %q, want %q", recs, want)
	}

	recs, _ = readCSV(t, r, report.TableDaily)
	if want := [][]string{
		{"date", "stage_id", "stage_name", "position", "contacts"},
		{"2026-03-01", "stg_a", "Lead", "1", "20"},
		{"2026-03-01", "stg_b", "Won, finally", "2", "4"},
		{"2026-03-02", "stg_a", "Lead", "1", "10"},
		{"2026-03-02", "stg_b", "Won, finally", "2", "6"},
	}; !reflect.DeepEqual(recs, want) {
		t.Errorf("daily table %q, want %q", recs, want)
	}
}

// svgNode is any element of an SVG document, with its attributes and
// children.
type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []svgNode  `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n svgNode) find(class string) []svgNode {
	var out []svgNode
	if n.attr("class") == class {
		out = append(out, n)
	}
	for _, c := range n.Nodes {
		out = append(out, c.find(class)...)
	}
	return out
}

func parseSVG(t *testing.T, s string) svgNode {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = true
	var root svgNode
	if err := d.Decode(&root); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, s)
	}
	if _, err := d.Token(); err != io.EOF {
		t.Fatalf("content after the root element: %v", err)
	}
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root element %v", root.XMLName)
	}
	if strings.Contains(s, "<script") || strings.Contains(s, "href") || strings.Contains(s, "url(") {
		t.Fatal("the chart refers to something outside itself")
	}
	return root
}

func TestFunnelSVG(t *testing.T) {
	r := handReport()
	r.Stages = append(r.Stages, report.Stage{ID: "stg_c", Name: "<script>alert(1)</script>", Position: 3})
	r.Totals = append(r.Totals, report.Row{StageID: "stg_c", StageName: "<script>alert(1)</script>", Position: 3, Contacts: 0})
	root := parseSVG(t, report.FunnelSVG(r))
	bars := root.find("bar")
	if len(bars) != len(r.Totals) {
		t.Fatalf("%d bars, want one per stage (%d)", len(bars), len(r.Totals))
	}
	height := func(n svgNode) float64 {
		h, err := strconv.ParseFloat(n.attr("height"), 64)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tallest := height(bars[0])
	for i, b := range bars {
		if b.attr("data-stage") != r.Totals[i].StageID {
			t.Errorf("bar %d is stage %q, want %q", i, b.attr("data-stage"), r.Totals[i].StageID)
		}
		want := tallest * float64(r.Totals[i].Contacts) / float64(r.Totals[0].Contacts)
		if math.Abs(height(b)-want) > 0.01 {
			t.Errorf("bar %d is %.2f high for %d contacts, want %.2f", i, height(b), r.Totals[i].Contacts, want)
		}
	}
	if tallest <= 0 {
		t.Error("the largest stage has no height")
	}
}

func TestDailySVG(t *testing.T) {
	r := handReport()
	root := parseSVG(t, report.DailySVG(r))
	lines := root.find("series")
	if len(lines) != len(r.Stages) {
		t.Fatalf("%d lines, want one per stage", len(lines))
	}
	for i, l := range lines {
		if pts := strings.Fields(l.attr("points")); len(pts) != 2 {
			t.Errorf("line %d has %d points, want one per day (2)", i, len(pts))
		}
	}
	// The peak day (20 contacts) is at the top of the plot, and a day with
	// half as many is halfway down.
	y := func(l svgNode, i int) float64 {
		_, ys, _ := strings.Cut(strings.Fields(l.attr("points"))[i], ",")
		v, _ := strconv.ParseFloat(ys, 64)
		return v
	}
	top, mid := y(lines[0], 0), y(lines[0], 1)
	bottom := top + 2*(mid-top)
	if got := y(lines[1], 0); math.Abs(got-(bottom-(bottom-top)*4/20)) > 0.01 {
		t.Errorf("4 contacts drawn at y=%.2f (top %.2f, bottom %.2f)", got, top, bottom)
	}
}
