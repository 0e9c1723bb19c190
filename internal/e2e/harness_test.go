package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// The hashes of the test identities, as event.Decode stores them.
const (
	emailHash       = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d" // jane.doe@example.com
	gmailGoogleHash = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69" // Jane.Doe+promo@gmail.com, Google's form
	phoneHash       = "36a2cef4ff9bf7a1abd2a93359136b870393be4106e6c5d19b72ff564f9deca4" // +14155550123
	phoneMetaHash   = "413ba75461ab5f99d36820e561ea97e2bd80f9cb586f7ecea6cf4c496518950a" // 14155550123
)

// run runs a pruuv command in-process, as the binary does (config from
// PRUUV_* variables, the real platform clients), and returns its output.
func run(t testing.TB, cfg config.Config, args ...string) string {
	t.Helper()
	return pruuvtest.Run(t, cfg, args...)
}

// runJSON runs a command with --json and decodes its output into T.
func runJSON[T any](t testing.TB, cfg config.Config, args ...string) T {
	t.Helper()
	out := run(t, cfg, append(args, "--json")...)
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("pruuv %s printed %q: %v", strings.Join(args, " "), out, err)
	}
	return v
}

// startServe starts a `pruuv serve` child process of the pruuv binary.
func startServe(t testing.TB, cfg config.Config) *pruuvtest.Process {
	t.Helper()
	return pruuvtest.StartProcess(t, cfg)
}

// serveFake serves a platform fake on a loopback port until the test ends;
// a fake with a Close is closed first, releasing any request it holds.
func serveFake(t testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if c, ok := h.(interface{ Close() }); ok {
		t.Cleanup(c.Close)
	}
	return srv.URL
}

// startServer runs the server in-process, for the webhook. Its queue loop
// runs once at start and then waits its longest poll, so that only the
// `conversions send` runs of the test plan and send.
func startServer(t testing.TB, cfg config.Config) string {
	t.Helper()
	cfg.ConversionsPoll = 10 * time.Minute
	return pruuvtest.Start(t, cfg).URL
}

// Report is what `conversions send --json` prints.
type Report struct {
	Planned, Requests, Sent, Retrying, Failed, Skipped, Deferred int
}

// send runs `pruuv conversions send --json` for a client.
func send(t testing.TB, cfg config.Config, client string) Report {
	t.Helper()
	return runJSON[Report](t, cfg, "conversions", "send", "--client", client)
}

// Send is one row of `conversions log --json`.
type Send struct {
	EventID    string `json:"event_id"`
	Platform   string `json:"platform"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	Detail     string `json:"detail"`
	Attempts   int    `json:"attempts"`
	HTTPStatus *int   `json:"http_status"`
	Message    string `json:"message"`
	Client     string `json:"client"`
}

func (s Send) String() string {
	code := "null"
	if s.HTTPStatus != nil {
		code = fmt.Sprint(*s.HTTPStatus)
	}
	return fmt.Sprintf("%s on %s: %s reason=%q attempts=%d http=%s message=%q detail=%q", s.EventID, s.Platform, s.Status, s.Reason,
		s.Attempts, code, s.Message, s.Detail)
}

type sendKey struct{ event, platform string }

// sends reads the whole audit log through `conversions log --json`.
func sends(t testing.TB, cfg config.Config) map[sendKey]Send {
	t.Helper()
	out := map[sendKey]Send{}
	for _, s := range runJSON[[]Send](t, cfg, "conversions", "log", "--limit", "100000") {
		out[sendKey{s.EventID, s.Platform}] = s
	}
	return out
}

// want is what a log row should say; http 0 means null.
type want struct {
	status, reason string
	attempts, http int
}

// expect checks one event's send to a platform in the log.
func expect(t testing.TB, got map[sendKey]Send, id, platform string, w want) Send {
	t.Helper()
	s, ok := got[sendKey{id, platform}]
	if !ok {
		t.Fatalf("the log has no %s send for event %s", platform, id)
	}
	code := 0
	if s.HTTPStatus != nil {
		code = *s.HTTPStatus
		if code == 0 {
			t.Errorf("http_status 0 instead of null: %v", s)
		}
	}
	if s.Status != w.status || s.Reason != w.reason || s.Attempts != w.attempts || code != w.http {
		t.Fatalf("log: %v\nwant status %s reason %q attempts %d http %d", s, w.status, w.reason, w.attempts, w.http)
	}
	return s
}

// Attempt is one row of `conversions attempts --json`.
type Attempt struct {
	EventID    string `json:"event_id"`
	Platform   string `json:"platform"`
	Outcome    string `json:"outcome"`
	HTTPStatus *int   `json:"http_status"`
	Message    string `json:"message"`
	Summary    string `json:"summary"`
}

// attempts reads an event's attempts on a platform through the CLI.
func attempts(t testing.TB, cfg config.Config, id, platform string) []Attempt {
	t.Helper()
	return runJSON[[]Attempt](t, cfg, "conversions", "attempts", id, "--platform", platform)
}

// outcomes is "outcome/status" for each attempt, oldest first.
func outcomes(as []Attempt) []string {
	var out []string
	for _, a := range as {
		code := "null"
		if a.HTTPStatus != nil {
			code = fmt.Sprint(*a.HTTPStatus)
		}
		out = append(out, a.Outcome+"/"+code)
	}
	return out
}

// post sends an event to a stage's webhook and returns its id.
func post(t testing.TB, url string, st pruuvtest.Stage, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	r := pruuvtest.Post(t, url, st.ID, st.WebhookToken, string(b))
	id, _ := r.JSON["event_id"].(string)
	if r.Status != 200 || id == "" {
		t.Fatalf("webhook answered %d %s to %s", r.Status, r.Body, b)
	}
	return id
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline; the deadline only bounds a hang, it is never what a test checks.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fullHash finds a whole SHA-256 in hex.
var fullHash = regexp.MustCompile(`[0-9a-fA-F]{64}`)

// checkRedacted fails if text holds a secret or a full hash.
func checkRedacted(t testing.TB, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds the secret %q: %s", what, s, text)
		}
	}
	if h := fullHash.FindString(text); h != "" {
		t.Errorf("%s holds a full hash %s: %s", what, h, text)
	}
}

// checkLogShape checks every JSON row of `conversions log` carries the audit
// columns, an absent HTTP status as null.
func checkLogShape(t testing.TB, cfg config.Config) {
	t.Helper()
	rows := runJSON[[]map[string]any](t, cfg, "conversions", "log", "--limit", "100000")
	if len(rows) == 0 {
		t.Fatal("empty log")
	}
	for _, r := range rows {
		for _, k := range []string{"event_id", "platform", "status", "reason", "attempts", "http_status", "message", "client", "stage_id"} {
			if _, ok := r[k]; !ok {
				t.Errorf("log row without %s: %v", k, r)
			}
		}
	}
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// decodeJSON decodes a JSON literal written in a test.
func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}
