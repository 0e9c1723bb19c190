package meta

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	buc := `{"1234":[{"type":"ads_management","call_count":100,"estimated_time_to_regain_access":3},` +
		`{"type":"custom_audience","estimated_time_to_regain_access":12}],"5678":[]}`
	cases := []struct {
		header http.Header
		want   time.Duration
	}{
		{http.Header{}, 0},
		{http.Header{"Retry-After": {"30"}}, 30 * time.Second},
		{http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0},
		{http.Header{"X-Business-Use-Case-Usage": {buc}}, 12 * time.Minute},
		{http.Header{"Retry-After": {"5"}, "X-Business-Use-Case-Usage": {buc}}, 5 * time.Second},
		{http.Header{"X-Business-Use-Case-Usage": {"not json"}}, 0},
	}
	for _, c := range cases {
		if got := retryAfter(c.header, now); got != c.want {
			t.Errorf("%v: %s, want %s", c.header, got, c.want)
		}
	}
}

func TestEventIndex(t *testing.T) {
	cases := []struct {
		text string
		want int
		ok   bool
	}{
		{`{"event_index":14}`, 14, true},
		{`Invalid parameter at data[3].user_data`, 3, true},
		{`event_index: 2`, 2, true},
		{`Invalid parameter`, 0, false},
		{`index 5 of something`, 0, false},
	}
	for _, c := range cases {
		if got, ok := eventIndex(c.text); got != c.want || ok != c.ok {
			t.Errorf("%q: %d %v, want %d %v", c.text, got, ok, c.want, c.ok)
		}
	}
}
