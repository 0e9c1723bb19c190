package cli_test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/cli"
	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

func TestFunnelCreateShape(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			out := pruuvtest.Run(t, cfg, "funnel", "create", "--client", "Acme Ltd", "--name", "Leads", "--stages", "Lead, Qualified ,Won", "--json")
			var v map[string]any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatal(err)
			}
			keys := func(m any) []string {
				var ks []string
				for k := range m.(map[string]any) {
					ks = append(ks, k)
				}
				sort.Strings(ks)
				return ks
			}
			if got := keys(v); !reflect.DeepEqual(got, []string{"client", "funnel", "stages"}) {
				t.Fatalf("top-level keys %v", got)
			}
			if got := keys(v["client"]); !reflect.DeepEqual(got, []string{"id", "name"}) || v["client"].(map[string]any)["name"] != "Acme Ltd" {
				t.Fatalf("client %v", v["client"])
			}
			if got := keys(v["funnel"]); !reflect.DeepEqual(got, []string{"id", "name"}) {
				t.Fatalf("funnel keys %v", got)
			}
			stages := v["stages"].([]any)
			names := []string{"Lead", "Qualified", "Won"}
			if len(stages) != 3 {
				t.Fatalf("%d stages", len(stages))
			}
			for i, s := range stages {
				m := s.(map[string]any)
				if got := keys(m); !reflect.DeepEqual(got, []string{"id", "name", "position", "webhook_token"}) {
					t.Fatalf("stage keys %v", got)
				}
				if m["name"] != names[i] || m["position"] != float64(i+1) || !strings.HasPrefix(m["webhook_token"].(string), "pruuv_whk_") {
					t.Fatalf("stage %d = %v", i, m)
				}
			}
			// The client is reused for its next funnel.
			out2 := pruuvtest.Run(t, cfg, "funnel", "create", "--client", "Acme Ltd", "--name", "Other", "--stages", "Lead", "--json")
			var v2 map[string]any
			json.Unmarshal([]byte(out2), &v2)
			if v2["client"].(map[string]any)["id"] != v["client"].(map[string]any)["id"] {
				t.Fatal("second funnel made a second client")
			}
		})
	}
}

func TestRotateTokenWorksAtOnce(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			srv := pruuvtest.Start(t, cfg)
			st := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead")[0]
			var rot struct {
				ID           string `json:"id"`
				WebhookToken string `json:"webhook_token"`
			}
			json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "stage", "rotate-token", st.ID, "--json")), &rot)
			if rot.ID != st.ID || rot.WebhookToken == st.WebhookToken || !strings.HasPrefix(rot.WebhookToken, "pruuv_whk_") {
				t.Fatalf("rotate printed %+v", rot)
			}
			if r := pruuvtest.Post(t, srv.URL, st.ID, rot.WebhookToken, `{"reference":"new"}`); r.Status != 200 {
				t.Fatalf("new token: %d %s", r.Status, r.Body)
			}
			if r := pruuvtest.Post(t, srv.URL, st.ID, st.WebhookToken, `{"reference":"old"}`); r.Status != 200 {
				t.Fatalf("old token during its 24 h overlap: %d %s", r.Status, r.Body)
			}
			// Rotating with no overlap revokes the token it replaces at once.
			var rot2 struct {
				WebhookToken string `json:"webhook_token"`
			}
			json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "stage", "rotate-token", "--overlap", "0s", st.ID, "--json")), &rot2)
			// A running server reuses a stage's tokens for up to ingest.CacheFor,
			// so a revoked token stops within that time, not at once.
			deadline := time.Now().Add(ingest.CacheFor + time.Second)
			for {
				r := pruuvtest.Post(t, srv.URL, st.ID, rot.WebhookToken, `{"reference":"x"}`)
				if r.Status == 401 {
					break
				}
				if r.Status != 200 || time.Now().After(deadline) {
					t.Fatalf("revoked token still answered %d after %s", r.Status, ingest.CacheFor+time.Second)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if r := pruuvtest.Post(t, srv.URL, st.ID, rot2.WebhookToken, `{"reference":"y"}`); r.Status != 200 {
				t.Fatalf("newest token: %d", r.Status)
			}
			if r := pruuvtest.Post(t, srv.URL, st.ID, st.WebhookToken, `{"reference":"z"}`); r.Status != 401 {
				t.Fatalf("first token after two rotations: %d (a stage keeps at most two)", r.Status)
			}
		})
	}
}

func TestStageListAndSetLimit(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	st := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead", "Won")
	pruuvtest.Run(t, cfg, "stage", "set-limit", st[1].ID, "--per-hour", "25")
	var list []struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		HourlyLimit int    `json:"hourly_limit"`
		TokenHint   string `json:"token_hint"`
	}
	if err := json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "stage", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[1].ID != st[1].ID || list[1].HourlyLimit != 25 || list[0].HourlyLimit != 1000 {
		t.Fatalf("stage list %+v", list)
	}
	if strings.Contains(list[0].TokenHint, st[0].WebhookToken) || !strings.HasSuffix(st[0].WebhookToken, strings.TrimPrefix(list[0].TokenHint, "pruuv_whk_…")) {
		t.Fatalf("hint %q for token %q", list[0].TokenHint, st[0].WebhookToken)
	}
	text := pruuvtest.Run(t, cfg, "stage", "list")
	if strings.Contains(text, st[0].WebhookToken) || !strings.Contains(text, st[0].ID) {
		t.Fatalf("text list shows the token or lacks the id:\n%s", text)
	}
}

func TestBadArguments(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	st := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead")[0]
	cases := [][]string{
		{},
		{"nonsense"},
		{"funnel"},
		{"funnel", "create"},
		{"funnel", "create", "--client", "A", "--name", "B"},
		{"funnel", "create", "--client", "A", "--name", "B", "--stages", "X,,Y"},
		{"funnel", "create", "--client", "A", "--name", "B", "--stages", "X,x"},
		{"funnel", "create", "--bogus"},
		{"stage", "rotate-token"},
		{"stage", "rotate-token", st.ID, "--overlap", "200h"},
		{"stage", "set-limit", st.ID},
		{"stage", "set-limit", st.ID, "--per-hour", "0"},
		{"stage", "set-limit", st.ID, "--per-hour", "many"},
		{"events", "list", "--limit", "0"},
		{"stage", "list", "extra"},
	}
	for _, args := range cases {
		_, _, err := pruuvtest.RunErr(cfg, args...)
		var uerr *cli.UsageError
		if !errors.As(err, &uerr) {
			t.Errorf("pruuv %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	// Well-formed commands on things that do not exist fail plainly, not as usage.
	for _, args := range [][]string{{"stage", "rotate-token", "stg_nope"}, {"stage", "set-limit", "stg_nope", "--per-hour", "5"}, {"events", "list", "--stage", "stg_nope"}} {
		_, _, err := pruuvtest.RunErr(cfg, args...)
		var uerr *cli.UsageError
		if err == nil || errors.As(err, &uerr) || !strings.Contains(err.Error(), "stg_nope") {
			t.Errorf("pruuv %s: %v", strings.Join(args, " "), err)
		}
	}
}

func TestBinaryExitCodesAndMessages(t *testing.T) {
	bin := pruuvtest.Binary(t)
	dir := t.TempDir()
	run := func(env []string, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append([]string{"PRUUV_DATA_DIR=" + dir, "PATH=/usr/bin:/bin"}, env...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	for _, c := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{nil, []string{"stage", "set-limit"}, 2, "Usage:"},
		{nil, []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"PRUUV_ADDR=nonsense"}, []string{"serve"}, 1, "PRUUV_ADDR"},
		{[]string{"PRUUV_DATABASE_URL=mysql://x"}, []string{"serve"}, 1, "PRUUV_DATABASE_URL must start with postgres://"},
		{[]string{"PRUUV_SECRET_KEY=short"}, []string{"stage", "list"}, 1, "PRUUV_SECRET_KEY"},
		{[]string{"PRUUV_DURABILITY=yolo"}, []string{"serve"}, 1, "PRUUV_DURABILITY"},
		{[]string{"PRUUV_SHUTDOWN_TIMEOUT=soon"}, []string{"serve"}, 1, "PRUUV_SHUTDOWN_TIMEOUT"},
		{nil, []string{"stage", "list", "--json"}, 0, "[]"},
	} {
		code, out := run(c.env, c.args...)
		if code != c.code || !strings.Contains(out, c.want) || strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
			t.Errorf("%v pruuv %v: exit %d, want %d with %q:\n%s", c.env, c.args, code, c.code, c.want, out)
		}
	}
}

func TestSecretMismatchStopsStartup(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead")
	cfg.SecretKey = strings.Repeat("ab", 32)
	_, _, err := pruuvtest.RunErr(cfg, "stage", "list")
	if err == nil || !strings.Contains(err.Error(), "secret key does not match") {
		t.Fatalf("other key: %v", err)
	}
}

func TestDrainDelayFailsReadinessFirst(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	cfg.DrainDelay = 2 * time.Second
	st := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead")[0]
	p := pruuvtest.StartProcess(t, cfg)
	p.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(1500 * time.Millisecond)
	ready := 200
	for ready == 200 && time.Now().Before(deadline) {
		resp, err := pruuvtest.Client().Get(p.URL + "/readyz")
		if err != nil {
			t.Fatalf("readyz during the drain delay: %v", err)
		}
		resp.Body.Close()
		ready = resp.StatusCode
	}
	if ready != 503 {
		t.Fatalf("readyz stayed %d after SIGTERM", ready)
	}
	// Still serving while draining: an event sent now is committed.
	if r := pruuvtest.Post(t, p.URL, st.ID, st.WebhookToken, `{"reference":"late"}`); r.Status != 200 || r.JSON["event_id"] == nil {
		t.Fatalf("post while draining: %d %s", r.Status, r.Body)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if out := pruuvtest.Run(t, cfg, "events", "list", "--json"); !strings.Contains(out, `"reference": "late"`) {
		t.Fatalf("event sent while draining is missing:\n%s", out)
	}
}
