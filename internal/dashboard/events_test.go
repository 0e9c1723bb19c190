package dashboard_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/dashboard"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

var eventRow = regexp.MustCompile(`data-testid="event-row" data-id="([^"]+)"`)

func rows(p page) []string {
	var ids []string
	for _, m := range eventRow.FindAllStringSubmatch(p.body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestEventsBrowser(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			srv, _, b, stages := start(t, be)
			var lead []string // newest first
			for i := range dashboard.PageSize + 3 {
				r := pruuvtest.Post(t, srv.URL, stages[0].ID, stages[0].WebhookToken, fmt.Sprintf(`{"reference":"L-%d","utm_source":"google"}`, i))
				lead = append([]string{r.JSON["event_id"].(string)}, lead...)
			}
			won := pruuvtest.Post(t, srv.URL, stages[2].ID, stages[2].WebhookToken,
				`{"reference":"W-1","utm_source":"bing","revenue_value":250,"currency":"gbp","gclid":"EAIaIQobCh...","job_title":"<b>CTO</b>"}`)
			wonID := won.JSON["event_id"].(string)

			// Newest first means by id, descending: UUIDv7 ids order by
			// millisecond, and within one millisecond by their random bits.
			desc := func(ids []string) []string {
				out := slices.Clone(ids)
				slices.Sort(out)
				slices.Reverse(out)
				return out
			}
			everything := desc(append([]string{wonID}, lead...))
			if all := rows(b.get("/events")); !slices.Equal(all, everything[:dashboard.PageSize]) {
				t.Fatalf("first page: %d rows, not the newest by id", len(all))
			}
			lead = desc(lead)
			p := b.get("/events?stage=" + stages[0].ID)
			if got := rows(p); !slices.Equal(got, lead[:dashboard.PageSize]) {
				t.Fatalf("stage filter: %d rows", len(got))
			}
			next := regexp.MustCompile(`href="/events\?([^"]+)" rel="next"`).FindStringSubmatch(p.body)
			if next == nil {
				t.Fatal("no next-page link")
			}
			p2 := b.get("/events?" + strings.ReplaceAll(next[1], "&amp;", "&"))
			if got := rows(p2); !slices.Equal(got, lead[dashboard.PageSize:]) {
				t.Fatalf("second page: %v", got)
			}
			if strings.Contains(p2.body, `rel="next"`) {
				t.Fatal("the last page links to a next one")
			}
			if got := rows(b.get("/events?reference=W-1")); len(got) != 1 || got[0] != wonID {
				t.Fatalf("reference filter: %v", got)
			}
			if got := rows(b.get("/events?reference=L-7&stage=" + stages[2].ID)); len(got) != 0 {
				t.Fatalf("reference at another stage: %v", got)
			}
			if got := rows(b.get("/events?source=pixel")); len(got) != 0 {
				t.Fatalf("source filter: %v", got)
			}
			if got := rows(b.get("/events?source=webhook&stage=" + stages[2].ID)); len(got) != 1 {
				t.Fatalf("source+stage filter: %v", got)
			}
			today := time.Now().UTC().Format("2006-01-02")
			tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02")
			if got := rows(b.get("/events?stage=" + stages[2].ID + "&from=" + today + "&to=" + today)); len(got) != 1 {
				t.Fatalf("today: %v", got)
			}
			if got := rows(b.get("/events?from=" + tomorrow)); len(got) != 0 {
				t.Fatalf("from tomorrow: %v", got)
			}
			if p := b.get("/events?from=yesterday"); p.status != http.StatusBadRequest {
				t.Fatalf("bad date: %d", p.status)
			}

			p = b.get("/events/" + wonID)
			for _, want := range []string{wonID, stages[2].ID, "W-1", "bing", "250", "GBP", "EAIaIQobCh...", "&lt;b&gt;CTO&lt;/b&gt;", `data-field="utm_medium"`, `data-field="phone_meta_sha256"`} {
				if !strings.Contains(p.body, want) {
					t.Errorf("event page lacks %q", want)
				}
			}
			if strings.Contains(p.body, "<b>CTO</b>") {
				t.Error("event fields are not escaped")
			}
		})
	}
}
