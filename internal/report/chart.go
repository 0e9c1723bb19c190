package report

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// The charts are self-contained SVG documents: no script, no external
// fonts, styles or images, so a page can inline them and they draw offline.
// Every text from the data is XML-escaped.

// palette colours the stages' lines in the daily chart, in turn.
var palette = []string{"#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"}

const (
	chartWidth  = 720
	chartHeight = 320
	padLeft     = 48
	padRight    = 16
	padTop      = 24
	padBottom   = 64
	plotW       = chartWidth - padLeft - padRight
	plotH       = chartHeight - padTop - padBottom
)

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // writing to a strings.Builder cannot fail
	return b.String()
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func svgOpen(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" font-family="sans-serif" font-size="11">`,
		chartWidth, chartHeight, chartWidth, chartHeight)
	fmt.Fprintf(b, `<title>%s</title>`, esc(title))
}

// FunnelSVG draws the report's totals as one bar per stage, in position
// order, each as high as its contacts relative to the largest stage, with
// the contacts above and the stage's name below.
func FunnelSVG(r *Report) string {
	var b strings.Builder
	svgOpen(&b, "Contacts per stage: "+r.FunnelName)
	peak := 0
	for _, row := range r.Totals {
		peak = max(peak, row.Contacts)
	}
	n := max(len(r.Totals), 1)
	slot := float64(plotW) / float64(n)
	barW := slot * 0.7
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#9ca3af"/>`, padLeft, padTop+plotH, padLeft+plotW, padTop+plotH)
	for i, row := range r.Totals {
		h := 0.0
		if peak > 0 {
			h = float64(plotH) * float64(row.Contacts) / float64(peak)
		}
		x := float64(padLeft) + slot*float64(i) + (slot-barW)/2
		y := float64(padTop+plotH) - h
		fmt.Fprintf(&b, `<rect class="bar" data-stage="%s" x="%s" y="%s" width="%s" height="%s" fill="#2563eb"><title>%s: %d</title></rect>`,
			esc(row.StageID), num(x), num(y), num(barW), num(h), esc(row.StageName), row.Contacts)
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%d</text>`, num(x+barW/2), num(y-4), row.Contacts)
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="end" transform="rotate(-35 %s %d)">%s</text>`,
			num(x+barW/2), padTop+plotH+14, num(x+barW/2), padTop+plotH+14, esc(truncate(row.StageName, 18)))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// DailySVG draws the daily series: one line per stage over the report's
// days, with the first and last date and the peak on the axes.
func DailySVG(r *Report) string {
	var b strings.Builder
	svgOpen(&b, "Contacts per day: "+r.FunnelName)
	days := r.From.days(r.To)
	peak := 0
	for _, d := range r.Daily {
		peak = max(peak, d.Contacts)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#9ca3af"/>`, padLeft, padTop+plotH, padLeft+plotW, padTop+plotH)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#9ca3af"/>`, padLeft, padTop, padLeft, padTop+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%d</text>`, padLeft-4, padTop+4, peak)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">0</text>`, padLeft-4, padTop+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, padLeft, padTop+plotH+14, r.From)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, padLeft+plotW, padTop+plotH+14, r.To)
	x := func(day int) float64 {
		if days <= 1 {
			return float64(padLeft + plotW/2)
		}
		return float64(padLeft) + float64(plotW)*float64(day)/float64(days-1)
	}
	y := func(n int) float64 {
		if peak == 0 {
			return float64(padTop + plotH)
		}
		return float64(padTop+plotH) - float64(plotH)*float64(n)/float64(peak)
	}
	index := map[string]int{}
	for i, s := range r.Stages {
		index[s.ID] = i
	}
	points := make([][]string, len(r.Stages))
	day := map[string]int{}
	for _, d := range r.Daily {
		i := index[d.StageID]
		k := d.StageID
		points[i] = append(points[i], num(x(day[k]))+","+num(y(d.Contacts)))
		day[k]++
	}
	for i, s := range r.Stages {
		colour := palette[i%len(palette)]
		fmt.Fprintf(&b, `<polyline class="series" data-stage="%s" fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`,
			esc(s.ID), colour, strings.Join(points[i], " "), esc(s.Name))
		lx, ly := padLeft+(i%4)*(plotW/4), padTop+plotH+30+(i/4)*12
		if ly < chartHeight {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="8" height="8" fill="%s"/><text x="%d" y="%d">%s</text>`,
				lx, ly-8, colour, lx+12, ly, esc(truncate(s.Name, 24)))
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// truncate shortens s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
