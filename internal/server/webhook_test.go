package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// The seed page's curl example, byte for byte.
const seedExample = `{
    "reference":    "CRM-REF-001",
    "utm_source":   "google",
    "utm_medium":   "cpc",
    "utm_campaign": "brand-search",
    "gclid":        "EAIaIQobCh...",
    "revenue_value": 250,
    "currency":     "GBP"
  }`

func TestSeedExample(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			srv := pruuvtest.Start(t, cfg)
			stages := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead", "Qualified", "Won")
			lead := stages[0]

			r := pruuvtest.Post(t, srv.URL, lead.ID, lead.WebhookToken, seedExample)
			if r.Status != 200 || r.JSON["received"] != true || r.JSON["event_id"] == nil {
				t.Fatalf("first post: %d %s", r.Status, r.Body)
			}
			id := r.JSON["event_id"].(string)
			if want := `{"received":true,"event_id":"` + id + `"}`; r.Body != want {
				t.Errorf("body %s, want %s", r.Body, want)
			}
			r = pruuvtest.Post(t, srv.URL, lead.ID, lead.WebhookToken, seedExample)
			if r.Status != 200 || r.Body != `{"received":true,"duplicate":true}` {
				t.Fatalf("retry: %d %s", r.Status, r.Body)
			}
			if got := r.Header.Get("Pruuv-Event-Id"); got != id {
				t.Errorf("duplicate names original %q, want %q", got, id)
			}
			out := pruuvtest.Run(t, cfg, "events", "list", "--stage", lead.ID, "--json")
			for _, want := range []string{`"event_id": "` + id, `"reference": "CRM-REF-001"`, `"gclid": "EAIaIQobCh..."`,
				`"revenue_value": 250,`, `"currency": "GBP"`, `"source": "webhook"`, `"utm_campaign": "brand-search"`} {
				if !strings.Contains(out, want) {
					t.Errorf("events list lacks %s:\n%s", want, out)
				}
			}
			if n := strings.Count(out, `"event_id"`); n != 1 {
				t.Errorf("events list shows %d events, want 1", n)
			}
		})
	}
}

func TestWebhookPathsWithoutAStage(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	srv := pruuvtest.Start(t, cfg)
	st := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead")[0]
	for _, path := range []string{"/api/webhooks/funnel/", "/api/webhooks/funnel/" + st.ID + "/", "/api/webhooks/funnel/" + st.ID + "/extra"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(`{"reference":"a"}`))
		req.Header.Set("Authorization", "Bearer "+st.WebhookToken)
		resp, err := pruuvtest.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || string(b) != `{"error":"Stage not found"}` || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("POST %s: %d %q", path, resp.StatusCode, b)
		}
	}
}
