package report_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/report"
)

func TestParseQuery(t *testing.T) {
	for _, c := range []struct {
		from, to, by, source, field string
	}{
		{"2026-03-01", "2026-03-31", "utm_campaign", "webhook", ""},
		{"2026-03-01", "2026-03-01", "", "", ""},
		{"2024-01-01", "2025-12-31", "", "", ""}, // 731 days
		{"", "2026-03-01", "", "", "from"},
		{"2026-3-1", "2026-03-01", "", "", "from"},
		{"2026-03-01", "tomorrow", "", "", "to"},
		{"2026-03-02", "2026-03-01", "", "", "to"},
		{"2024-01-01", "2026-01-01", "", "", "to"}, // 732 days
		{"2026-03-01", "2026-03-02", "email", "", "by"},
		{"2026-03-01", "2026-03-02", "", "crm", "source"},
	} {
		q, err := report.ParseQuery("fun_x", c.from, c.to, c.by, c.source)
		var qe *report.QueryError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%+v: %v", c, err)
		case c.field == "" && (q.FunnelID != "fun_x" || q.From.String() != c.from || q.To.String() != c.to || q.By != c.by || q.Source != c.source):
			t.Errorf("%+v: %+v", c, q)
		case c.field != "" && (!errors.As(err, &qe) || qe.Field != c.field || !errors.Is(err, report.ErrInvalid)):
			t.Errorf("%+v: %v, want a QueryError on %s", c, err, c.field)
		}
	}
}

func TestLastDays(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 31, 22, 30, 0, 0, time.UTC) // already 1 April in Berlin
	if from, to := report.LastDays(now, berlin, 30); from.String() != "2026-03-03" || to.String() != "2026-04-01" {
		t.Fatalf("Berlin: %s to %s", from, to)
	}
	if from, to := report.LastDays(now, time.UTC, 1); from.String() != "2026-03-31" || to.String() != "2026-03-31" {
		t.Fatalf("UTC: %s to %s", from, to)
	}
}
