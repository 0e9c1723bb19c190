package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/server"
	"github.com/pruuv/pruuv/internal/store"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := pruuvtest.Client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadiness(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	st, err := store.Open(context.Background(), store.Options{DataDir: cfg.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := secret.Parse(pruuvtest.SecretKey)
	in := ingest.New(ingest.Options{Store: st, Key: key})
	defer in.Close()
	srv := server.New(st, in, pruuvtest.Logger(t))
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	if code, body := get(t, hs.URL+"/healthz"); code != 200 || body != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, _ := get(t, hs.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz with the database up: %d", code)
	}
	st.Close()
	if code, body := get(t, hs.URL+"/readyz"); code != 503 || !strings.Contains(body, "database") {
		t.Fatalf("readyz with the database closed: %d %s", code, body)
	}
	// Whatever fails on the server side is answered with exactly the
	// documented 500 body; the cause goes to the log only.
	r := pruuvtest.Post(t, hs.URL, "stg_any", "pruuv_whk_x", `{"reference":"a"}`)
	if r.Status != 500 || r.Body != `{"error":"Internal error"}` || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("webhook with the database closed: %d %q %q", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	if code, _ := get(t, hs.URL+"/healthz"); code != 200 {
		t.Fatalf("healthz must not depend on the database: %d", code)
	}
	srv.Drain()
	if code, body := get(t, hs.URL+"/readyz"); code != 503 || !strings.Contains(body, "shutting down") {
		t.Fatalf("readyz while draining: %d %s", code, body)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestMetricsAndLogs(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	var logs syncBuf
	srv := pruuvtest.StartLogged(t, cfg, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	st := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead", "Won")
	pruuvtest.Run(t, cfg, "stage", "set-limit", st[0].ID, "--per-hour", "2")
	lead, won := st[0], st[1]
	secretEmail := "jane.doe@example.com"

	posts := []struct {
		stage, tok, body string
		status           int
	}{
		{lead.ID, lead.WebhookToken, `{"reference":"a","job_title":"` + secretEmail + `"}`, 200},
		{lead.ID, lead.WebhookToken, `{"reference":"a"}`, 200}, // duplicate
		{lead.ID, lead.WebhookToken, `{"reference":"b"}`, 200},
		{lead.ID, lead.WebhookToken, `{"reference":"c"}`, 429},
		{lead.ID, lead.WebhookToken, `{"reference":5}`, 400},
		{lead.ID, won.WebhookToken, `{"reference":"d"}`, 401}, // another stage's token
		{lead.ID, "", `{"reference":"d"}`, 401},
		{"stg_unknown", lead.WebhookToken, `{"reference":"d"}`, 404},
	}
	for _, p := range posts {
		if r := pruuvtest.Post(t, srv.URL, p.stage, p.tok, p.body); r.Status != p.status {
			t.Fatalf("post %s: %d %s, want %d", p.body, r.Status, r.Body, p.status)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/webhooks/funnel/"+lead.ID, nil)
	req.Header.Set("Authorization", "Bearer "+lead.WebhookToken)
	resp, err := pruuvtest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	_, metrics := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`pruuv_webhook_events_total{outcome="accepted"} 2`,
		`pruuv_webhook_events_total{outcome="duplicate"} 1`,
		`pruuv_webhook_events_total{outcome="rate_limited"} 1`,
		`pruuv_webhook_events_total{outcome="invalid"} 1`,
		`pruuv_webhook_events_total{outcome="unauthorized"} 2`,
		`pruuv_webhook_events_total{outcome="not_found"} 1`,
		`pruuv_webhook_events_total{outcome="method_not_allowed"} 1`,
		`pruuv_webhook_request_duration_seconds_count{outcome="accepted"} 2`,
		`pruuv_webhook_request_duration_seconds_bucket{outcome="accepted",le="+Inf"} 2`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	out := logs.String()
	if !strings.Contains(out, `"status":401`) || !strings.Contains(out, `"status":429`) {
		t.Fatalf("failures were not logged:\n%s", out)
	}
	for _, secret := range []string{"pruuv_whk_", lead.WebhookToken[10:30], won.WebhookToken[10:30], secretEmail, "Bearer"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}
