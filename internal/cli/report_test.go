package cli_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/cli"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

func TestReportJSONShape(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			srv := pruuvtest.Start(t, cfg)
			var created, empty struct {
				Funnel struct{ ID string } `json:"funnel"`
				Stages []pruuvtest.Stage   `json:"stages"`
			}
			for _, c := range []struct {
				v            any
				name, stages string
			}{{&created, "Leads", "Lead,Won"}, {&empty, "Empty", "Lead"}} {
				out := pruuvtest.Run(t, cfg, "funnel", "create", "--client", "Acme", "--name", c.name, "--stages", c.stages, "--json")
				if err := json.Unmarshal([]byte(out), c.v); err != nil {
					t.Fatal(err)
				}
			}
			stages, funnelID := created.Stages, created.Funnel.ID
			for _, p := range []struct{ stage, body string }{
				{stages[0].ID, `{"reference":"r1","utm_campaign":"brand"}`},
				{stages[0].ID, `{"reference":"r2","utm_campaign":"brand"}`},
				{stages[0].ID, `{"reference":"r3"}`},
				{stages[1].ID, `{"reference":"r1","utm_campaign":"brand","revenue_value":250.75,"currency":"GBP"}`},
				{stages[1].ID, `{"reference":"r3","revenue_value":0.1,"currency":"usd"}`},
			} {
				tok := stages[0].WebhookToken
				if p.stage == stages[1].ID {
					tok = stages[1].WebhookToken
				}
				if r := pruuvtest.Post(t, srv.URL, p.stage, tok, p.body); r.Status != 200 {
					t.Fatalf("post: %d %s", r.Status, r.Body)
				}
			}
			today := time.Now().UTC()
			from, to := today.AddDate(0, 0, -1).Format(time.DateOnly), today.AddDate(0, 0, 1).Format(time.DateOnly)

			out := pruuvtest.Run(t, cfg, "report", "--funnel", funnelID, "--from", from, "--to", to, "--by", "utm_campaign", "--json")
			var doc map[string][]map[string]json.RawMessage
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			if len(doc) != 1 || doc["rows"] == nil {
				t.Fatalf(`want {"rows":[…]}, got %s`, out)
			}
			rows := doc["rows"]
			keys := []string{"contacts", "conversion_from_previous", "position", "revenue", "stage_id", "stage_name", "utm_campaign"}
			type want struct{ campaign, stage, contacts, revenue, conv string }
			wants := []want{
				{`"brand"`, stages[0].ID, "2", `{}`, "null"},
				{`"brand"`, stages[1].ID, "1", `{"GBP":250.75}`, "0.5"},
				{`null`, stages[0].ID, "1", `{}`, "null"},
				{`null`, stages[1].ID, "1", `{"USD":0.1}`, "1"},
			}
			if len(rows) != len(wants) {
				t.Fatalf("%d rows, want %d:\n%s", len(rows), len(wants), out)
			}
			for i, w := range wants {
				row := rows[i]
				var got []string
				for k := range row {
					got = append(got, k)
				}
				slices.Sort(got)
				if !slices.Equal(got, keys) {
					t.Fatalf("row %d keys %v, want %v", i, got, keys)
				}
				var sid string
				json.Unmarshal(row["stage_id"], &sid)
				var rev bytes.Buffer
				json.Compact(&rev, row["revenue"])
				if string(row["utm_campaign"]) != w.campaign || sid != w.stage || string(row["contacts"]) != w.contacts ||
					rev.String() != w.revenue || string(row["conversion_from_previous"]) != w.conv {
					t.Errorf("row %d = %s %s %s %s %s, want %+v", i, row["utm_campaign"], sid, row["contacts"], rev.String(), row["conversion_from_previous"], w)
				}
			}

			// Without --by: one row per stage and no breakdown key.
			out = pruuvtest.Run(t, cfg, "report", "--funnel", funnelID, "--from", from, "--to", to, "--json")
			doc = nil
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc["rows"]) != 2 || string(doc["rows"][0]["contacts"]) != "3" || string(doc["rows"][1]["contacts"]) != "2" {
				t.Errorf("by stage:\n%s", out)
			}
			for _, row := range doc["rows"] {
				if len(row) != len(keys)-1 || row["utm_campaign"] != nil {
					t.Errorf("by-stage row has keys %v", row)
				}
			}

			// CSV, and the readable table.
			out = pruuvtest.Run(t, cfg, "report", "--funnel", funnelID, "--from", from, "--to", to, "--by", "utm_campaign", "--csv")
			recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil || len(recs) != 5 || recs[0][0] != "utm_campaign" || recs[2][len(recs[2])-1] != "0" || recs[2][len(recs[2])-2] != "250.75" {
				t.Errorf("CSV (%v):\n%s", err, out)
			}
			out = pruuvtest.Run(t, cfg, "report", "--funnel", funnelID, "--from", from, "--to", to, "--by", "utm_campaign")
			if !strings.Contains(out, "(none)") || !strings.Contains(out, "250.75") || !strings.Contains(out, "50.0%") {
				t.Errorf("table:\n%s", out)
			}

			// A funnel without events still lists its stages.
			out = pruuvtest.Run(t, cfg, "report", "--funnel", empty.Funnel.ID, "--from", from, "--to", to, "--json")
			if !strings.Contains(out, `"contacts": 0`) {
				t.Errorf("empty funnel:\n%s", out)
			}
		})
	}
}

func TestReportArguments(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead")
	for _, args := range [][]string{
		{"report"},
		{"report", "--funnel", "fun_x", "--from", "2026-03-01"},
		{"report", "--funnel", "fun_x", "--from", "2026-03-01", "--to", "2026-02-01"},
		{"report", "--funnel", "fun_x", "--from", "2026-03-01", "--to", "03/02/2026"},
		{"report", "--funnel", "fun_x", "--from", "2026-03-01", "--to", "2026-03-02", "--by", "reference"},
		{"report", "--funnel", "fun_x", "--from", "2026-03-01", "--to", "2026-03-02", "--json", "--csv"},
		{"report", "--funnel", "fun_x", "--from", "2026-03-01", "--to", "2026-03-02", "--source", "email"},
		{"report", "--funnel", "fun_x", "--from", "2020-01-01", "--to", "2026-03-02"},
	} {
		_, _, err := pruuvtest.RunErr(cfg, args...)
		var uerr *cli.UsageError
		if !errors.As(err, &uerr) {
			t.Errorf("pruuv %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	_, _, err := pruuvtest.RunErr(cfg, "report", "--funnel", "fun_nope", "--from", "2026-03-01", "--to", "2026-03-02")
	var uerr *cli.UsageError
	if err == nil || errors.As(err, &uerr) || !strings.Contains(err.Error(), "fun_nope") {
		t.Errorf("unknown funnel: %v", err)
	}

	// The binary exits 2 and names the fields it takes.
	cmd := exec.Command(pruuvtest.Binary(t), "report", "--funnel", "fun_x", "--from", "2026-03-01", "--to", "2026-03-02", "--by", "colour")
	cmd.Env = []string{"PRUUV_DATA_DIR=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), `"colour"`) ||
		!strings.Contains(string(out), "utm_source, utm_medium, utm_campaign, utm_content, utm_term, click_platform, gender") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}
