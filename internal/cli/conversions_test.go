package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/conversion/conversiontest"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
)

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

const testToken = "EAAB-very-secret-access-token-9XyZ"

func TestConnectionCommands(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			reg, _ := conversiontest.Registry(time.Now)
			stages := pruuvtest.Funnel(t, cfg, "Acme", "Leads", "Lead", "Won")
			other := pruuvtest.Funnel(t, cfg, "Other Co", "Leads", "Lead")
			run := func(args ...string) string { return pruuvtest.RunWith(t, cfg, reg, args...) }
			runErr := func(args ...string) error {
				_, _, err := pruuvtest.RunErrWith(cfg, reg, args...)
				return err
			}

			out := run("connection", "add", "--client", "Acme", "--platform", "meta", "--set", "account_id=123",
				"--set", "access_token="+testToken, "--json")
			if strings.Contains(out, testToken) {
				t.Fatalf("connection add printed the secret: %s", out)
			}
			v := decode[map[string]any](t, out)
			if got := keysOf(v); !reflect.DeepEqual(got, []string{"client", "client_id", "created_at", "id", "mappings", "platform", "secret_keys", "settings", "updated_at"}) {
				t.Fatalf("connection add keys %v", got)
			}
			settings := v["settings"].(map[string]any)
			if v["client"] != "Acme" || v["platform"] != "meta" || settings["account_id"] != "123" || settings["access_token"] != "…9XyZ" {
				t.Fatalf("connection add %v", v)
			}
			if sk := v["secret_keys"].([]any); len(sk) != 1 || sk[0] != "access_token" {
				t.Fatalf("secret_keys %v", sk)
			}
			id := v["id"].(string)

			// An existing connection: the given keys change, the rest stay.
			out = run("connection", "add", "--client", "Acme", "--platform", "meta", "--set", "label=crm", "--json")
			v = decode[map[string]any](t, out)
			settings = v["settings"].(map[string]any)
			if v["id"] != id || settings["label"] != "crm" || settings["access_token"] != "…9XyZ" || settings["account_id"] != "123" {
				t.Fatalf("upsert %v", v)
			}
			// Refused: an unknown key, a value the client's Validate refuses,
			// removing a required key, an unknown platform or client.
			for _, bad := range [][]string{
				{"--client", "Acme", "--platform", "meta", "--set", "pixel=1"},
				{"--client", "Acme", "--platform", "meta", "--set", "account_id=abc"},
				{"--client", "Acme", "--platform", "meta", "--set", "access_token="},
				{"--client", "Acme", "--platform", "myspace", "--set", "account_id=1"},
				{"--client", "Nobody", "--platform", "meta", "--set", "account_id=1"},
				{"--client", "Acme", "--platform", "tiktok", "--set", "account_id"},
			} {
				if err := runErr(append([]string{"connection", "add"}, bad...)...); err == nil {
					t.Errorf("connection add %v accepted", bad)
				}
			}

			// The secret is sealed at rest, bound to its row and key.
			raw := pruuvtest.RawConnections(t, cfg)
			if strings.Contains(raw, testToken) || strings.Contains(raw, "very-secret") || !strings.Contains(raw, "123") {
				t.Fatalf("raw connections row: %s", raw)
			}
			if b.Name == "sqlite" {
				for _, f := range []string{store.SQLiteFile, store.SQLiteFile + "-wal"} {
					data, _ := os.ReadFile(filepath.Join(cfg.DataDir, f))
					if strings.Contains(string(data), testToken) {
						t.Fatalf("%s holds the secret in clear", f)
					}
				}
			}
			st, err := store.Open(context.Background(), store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			conns, err := st.ListConnections(context.Background())
			if err != nil || len(conns) != 1 {
				t.Fatalf("connections %v %v", conns, err)
			}
			key, _ := secret.Parse(pruuvtest.SecretKey)
			if s, err := conversion.OpenSettings(key, conns[0]); err != nil || s["access_token"] != testToken {
				t.Fatalf("the right key cannot open it: %v", err)
			}
			wrong, _ := secret.Parse("d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc=")
			if _, err := conversion.OpenSettings(wrong, conns[0]); !errors.Is(err, secret.ErrDecrypt) {
				t.Fatalf("a wrong key: %v", err)
			}
			moved := conns[0]
			moved.ID = "con_elsewhere"
			if _, err := conversion.OpenSettings(key, moved); !errors.Is(err, secret.ErrDecrypt) {
				t.Fatalf("a sealed value moved to another row: %v", err)
			}

			// Mappings.
			out = run("connection", "map", "--client", "Acme", "--platform", "meta", "--stage", stages[0].ID, "--event", "Lead", "--json")
			m := decode[map[string]any](t, out)
			if got := keysOf(m); !reflect.DeepEqual(got, []string{"client", "event", "platform", "stage_id"}) || m["event"] != "Lead" || m["stage_id"] != stages[0].ID {
				t.Fatalf("map %v", m)
			}
			run("connection", "map", "--client", "Acme", "--platform", "meta", "--stage", stages[1].ID, "--event", "Purchase")
			if err := runErr("connection", "map", "--client", "Acme", "--platform", "meta", "--stage", other[0].ID, "--event", "Lead"); err == nil {
				t.Error("mapped a stage of another client")
			}
			if err := runErr("connection", "map", "--client", "Acme", "--platform", "meta", "--stage", stages[0].ID); err == nil {
				t.Error("map without --event accepted")
			}
			out = run("connection", "map", "--client", "Acme", "--platform", "meta", "--stage", stages[1].ID, "--event", "", "--json")
			if m := decode[map[string]any](t, out); m["event"] != nil {
				t.Fatalf("removing map %v", m)
			}

			list := run("connection", "list", "--json")
			if strings.Contains(list, testToken) {
				t.Fatal("connection list printed the secret")
			}
			views := decode[[]map[string]any](t, list)
			if len(views) != 1 || views[0]["settings"].(map[string]any)["access_token"] != "…9XyZ" {
				t.Fatalf("list %v", views)
			}
			maps := views[0]["mappings"].([]any)
			if len(maps) != 1 || maps[0].(map[string]any)["stage_id"] != stages[0].ID || maps[0].(map[string]any)["event"] != "Lead" {
				t.Fatalf("list mappings %v", maps)
			}
			run("connection", "unmap", "--client", "Acme", "--platform", "meta", "--stage", stages[0].ID)
			views = decode[[]map[string]any](t, run("connection", "list", "--json"))
			if n := len(views[0]["mappings"].([]any)); n != 0 {
				t.Fatalf("%d mappings after unmap", n)
			}
		})
	}
}

func TestConversionsCommands(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			srv := pruuvtest.Start(t, cfg) // this build has no platform clients: it only ingests
			reg, cls := conversiontest.Registry(time.Now)
			run := func(args ...string) string { return pruuvtest.RunWith(t, cfg, reg, args...) }
			stages := pruuvtest.Funnel(t, cfg, "Acme", "Leads", "Lead")
			run("connection", "add", "--client", "Acme", "--platform", "meta", "--set", "account_id=1", "--set", "access_token="+testToken)
			run("connection", "map", "--client", "Acme", "--platform", "meta", "--stage", stages[0].ID, "--event", "Lead")
			var ids []string
			for _, ref := range []string{"ok", "bad", "later"} {
				r := pruuvtest.Post(t, srv.URL, stages[0].ID, stages[0].WebhookToken, `{"reference":"`+ref+`","fbc":"fb.1.1.`+ref+`"}`)
				if r.Status != 200 {
					t.Fatalf("webhook %d %s", r.Status, r.Body)
				}
				ids = append(ids, r.JSON["event_id"].(string))
			}
			cls[conversion.Meta].Script(ids[1], conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 400, Message: "invalid"},
				conversion.Result{Outcome: conversion.Sent, HTTPStatus: 200})
			cls[conversion.Meta].Script(ids[2], conversion.Result{Outcome: conversion.Transient, HTTPStatus: 503, Message: "busy"})

			dry := decode[map[string]any](t, run("conversions", "send", "--dry-run", "--json"))
			sends := dry["sends"].([]any)
			if dry["dry_run"] != true || len(sends) != 3 {
				t.Fatalf("dry run %v", dry)
			}
			p := sends[0].(map[string]any)
			if got := keysOf(p); !reflect.DeepEqual(got, []string{"attempts", "batch", "client_id", "detail", "event_id", "event_name", "platform",
				"reason", "stage_id", "summary", "unplanned", "would"}) || p["would"] != "send" || p["unplanned"] != true {
				t.Fatalf("dry run row %v", p)
			}
			if len(cls[conversion.Meta].Requests()) != 0 {
				t.Fatal("dry run sent")
			}

			rep := decode[map[string]any](t, run("conversions", "send", "--client", "Acme", "--json"))
			if got := keysOf(rep); !reflect.DeepEqual(got, []string{"deferred", "failed", "planned", "requests", "retrying", "sent", "skipped"}) ||
				rep["planned"] != 3.0 || rep["sent"] != 1.0 || rep["failed"] != 1.0 || rep["retrying"] != 1.0 {
				t.Fatalf("send report %v", rep)
			}

			rows := decode[[]map[string]any](t, run("conversions", "log", "--json"))
			if len(rows) != 3 {
				t.Fatalf("log %v", rows)
			}
			if got := keysOf(rows[0]); !reflect.DeepEqual(got, []string{"attempts", "client", "client_id", "created_at", "detail", "event_id",
				"http_status", "message", "next_attempt_at", "platform", "reason", "sent_at", "stage_id", "status", "updated_at"}) {
				t.Fatalf("log row keys %v", got)
			}
			failed := decode[[]map[string]any](t, run("conversions", "log", "--status", "failed", "--platform", "meta", "--client", "Acme", "--json"))
			if len(failed) != 1 || failed[0]["event_id"] != ids[1] || failed[0]["http_status"] != 400.0 || failed[0]["message"] != "invalid" ||
				failed[0]["reason"] != "rejected" || failed[0]["client"] != "Acme" || failed[0]["stage_id"] != stages[0].ID || failed[0]["attempts"] != 1.0 {
				t.Fatalf("failed rows %v", failed)
			}

			atts := decode[[]map[string]any](t, run("conversions", "attempts", ids[1], "--json"))
			if len(atts) != 1 || atts[0]["outcome"] != "permanent" || atts[0]["summary"] != "meta event=Lead id="+ids[1] {
				t.Fatalf("attempts %v", atts)
			}
			retry := decode[map[string]any](t, run("conversions", "retry", ids[1], "--platform", "meta", "--json"))
			if !reflect.DeepEqual(retry, map[string]any{"event_id": ids[1], "platforms": []any{"meta"}, "status": "pending"}) {
				t.Fatalf("retry %v", retry)
			}
			if _, _, err := pruuvtest.RunErrWith(cfg, reg, "conversions", "retry", ids[0]); err == nil {
				t.Error("retried a sent send")
			}
			run("conversions", "send")
			if n := cls[conversion.Meta].Count(ids[1]); n != 2 {
				t.Fatalf("retried send went %d times", n)
			}

			// The server's /metrics reads the queue from the database.
			pruuvtest.Post(t, srv.URL, stages[0].ID, stages[0].WebhookToken, `{"reference":"unplanned","fbc":"fb.1.1.x"}`)
			resp, err := pruuvtest.Client().Get(srv.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range []string{
				`pruuv_conversion_queue_depth{platform="meta",status="retrying"} 1`,
				`pruuv_conversion_queue_depth{platform="meta",status="pending"} 0`,
				`pruuv_conversion_queue_depth{platform="google",status="pending"} 0`,
				`pruuv_conversion_outbox_depth 1`,
				`pruuv_conversion_sends_total{outcome="sent",platform="meta"} 0`,
				`pruuv_conversion_oldest_pending_age_seconds{platform="google"} 0`,
			} {
				if !strings.Contains(string(body), line+"\n") {
					t.Errorf("/metrics lacks %q", line)
				}
			}
			if !strings.Contains(string(body), `pruuv_conversion_oldest_pending_age_seconds{platform="meta"}`) {
				t.Error("/metrics lacks the oldest pending age")
			}
		})
	}
}
