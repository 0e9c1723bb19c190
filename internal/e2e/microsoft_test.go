package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/conversion/microsoft/microsoftfake"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// msAccount is the Microsoft Advertising account the fake knows.
var msAccount = microsoftfake.Account{
	CustomerID:     "251337",
	AccountID:      "149001202",
	DeveloperToken: "msft-dev-token-e2e-0123456789",
	ClientID:       "8f0c8f2e-0000-4000-8000-00000000e2e0",
	ClientSecret:   "msft-client-secret-e2e-0123456789",
	RefreshToken:   "M.R3_BAY.msft-refresh-token-e2e-0123456789",
}

// msGoal is the offline conversion goal the stage is mapped to.
const msGoal = "Offline Sale"

// microsoftSetup is a Microsoft fake, a server and a client Acme connected to
// it, its Lead stage mapped and its Won stage not; and a client Beta with no
// connection at all.
type microsoftSetup struct {
	cfg  config.Config
	url  string
	fake *microsoftfake.Fake
	acme []pruuvtest.Stage
	beta []pruuvtest.Stage
}

// connectMicrosoft connects client to the fake's account.
func connectMicrosoft(t testing.TB, cfg config.Config, client string) {
	t.Helper()
	view := runJSON[map[string]any](t, cfg, "connection", "add", "--client", client, "--platform", "microsoft",
		"--set", "customer_id="+msAccount.CustomerID, "--set", "account_id="+msAccount.AccountID,
		"--set", "developer_token="+msAccount.DeveloperToken, "--set", "client_id="+msAccount.ClientID,
		"--set", "client_secret="+msAccount.ClientSecret, "--set", "refresh_token="+msAccount.RefreshToken)
	if view["platform"] != "microsoft" {
		t.Fatalf("connection add printed %v", view)
	}
}

func newMicrosoft(t *testing.T, b pruuvtest.Backend) *microsoftSetup {
	m := &microsoftSetup{fake: microsoftfake.New(msAccount, nil)}
	m.fake.AddGoal(msGoal, time.Now().Add(-30*24*time.Hour))
	fakeURL := serveFake(t, m.fake)
	m.cfg = b.Config(t)
	m.cfg.ConversionsSchedule = "off"
	m.cfg.Endpoints.Microsoft, m.cfg.Endpoints.MicrosoftOAuth = fakeURL, fakeURL
	m.url = startServer(t, m.cfg)
	m.acme = pruuvtest.Funnel(t, m.cfg, "Acme", "Leads", "Lead", "Won")
	m.beta = pruuvtest.Funnel(t, m.cfg, "Beta", "Leads", "Lead")
	connectMicrosoft(t, m.cfg, "Acme")
	run(t, m.cfg, "connection", "map", "--client", "Acme", "--platform", "microsoft", "--stage", m.acme[0].ID, "--event", msGoal)
	return m
}

// conversions decodes each ApplyOfflineConversions request's conversions as
// JSON objects.
func (m *microsoftSetup) conversions(t *testing.T) [][]map[string]any {
	t.Helper()
	var out [][]map[string]any
	for _, r := range m.fake.Requests() {
		var body struct{ OfflineConversions []map[string]any }
		if err := json.Unmarshal(r.Raw, &body); err != nil {
			t.Fatalf("request body %s: %v", r.Raw, err)
		}
		out = append(out, body.OfflineConversions)
	}
	return out
}

// sentTimes counts how many requests carried each click id. Microsoft has no
// event id: its dedup key is (click id, goal, time), and each test event has
// its own click id.
func (m *microsoftSetup) sentTimes(t *testing.T) map[string]int {
	n := map[string]int{}
	for _, req := range m.conversions(t) {
		for _, c := range req {
			id, _ := c["MicrosoftClickId"].(string)
			n[id]++
		}
	}
	return n
}

// msclkid makes a well-formed click id from a small number.
func msclkid(n int) string { return fmt.Sprintf("cdd4afcccb1c9a4cad9544dd7e50%04x", n) }

// The same story as TestGoogle, for Microsoft Advertising's offline
// conversions: the exact request, a 429 then success, an authentication
// failure, each skip reason, and the audit log.
func TestMicrosoft(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testMicrosoft(t, b) })
	}
}

func testMicrosoft(t *testing.T, b pruuvtest.Backend) {
	m := newMicrosoft(t, b)
	cfg := m.cfg
	now := time.Now().UTC().Truncate(time.Second)
	click, conv := now.Add(-26*time.Hour), now.Add(-2*time.Hour)
	event := func(ref string, clk int) map[string]any {
		return map[string]any{"reference": ref, "msclkid": msclkid(clk), "click_timestamp": ts(click), "data_timestamp": ts(conv),
			"revenue_value": 49.99, "currency": "USD", "email": " Jane.Doe@Example.com ", "phone": "+1 415 555 0123",
			"client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0 (e2e)", "event_source_url": "https://shop.example/thanks"}
	}

	// 1. One event, one request, exactly as documented.
	id1 := post(t, m.url, m.acme[0], event("order-1", 1))
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 1, Requests: 1, Sent: 1}) {
		t.Fatalf("first send: %+v", rep)
	}
	reqs := m.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the fake got %d requests, want 1", len(reqs))
	}
	wantBody := fmt.Sprintf(`{"OfflineConversions":[{"ConversionCurrencyCode":"USD","ConversionName":%q,
		"ConversionTime":%q,"ConversionValue":49.99,"HashedEmailAddress":%q,"HashedPhoneNumber":%q,
		"MicrosoftClickId":%q}]}`, msGoal, ts(conv), emailHash, phoneHash, msclkid(1))
	if got := decodeJSON(t, string(reqs[0].Raw)); !reflect.DeepEqual(got, decodeJSON(t, wantBody)) {
		t.Fatalf("the fake received\n%s\nwant\n%s", reqs[0].Raw, wantBody)
	}
	for h, v := range map[string]string{"DeveloperToken": msAccount.DeveloperToken, "CustomerId": msAccount.CustomerID,
		"CustomerAccountId": msAccount.AccountID, "Content-Type": "application/json"} {
		if got := reqs[0].Header.Get(h); got != v {
			t.Errorf("header %s: %q, want %q", h, got, v)
		}
	}
	expect(t, sends(t, cfg), id1, "microsoft", want{"sent", "", 1, 200})
	if n := len(m.fake.Accepted()); n != 1 {
		t.Fatalf("the fake applied %d conversions", n)
	}

	// 2. A 429 with Retry-After, then success on the next run, with the same
	// dedup key (click id, goal, time).
	m.fake.FailNext(1, microsoftfake.TooManyRequests)
	id2 := post(t, m.url, m.acme[0], event("order-2", 2))
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 1, Requests: 1, Retrying: 1}) {
		t.Fatalf("send into a 429: %+v", rep)
	}
	s := expect(t, sends(t, cfg), id2, "microsoft", want{"retrying", "rate_limited", 1, 429})
	if !strings.Contains(s.Message, "CallRateExceeded") {
		t.Errorf("message %q does not quote Microsoft", s.Message)
	}
	if rep := send(t, cfg, "Acme"); rep != (Report{Requests: 1, Sent: 1}) {
		t.Fatalf("second send: %+v", rep)
	}
	expect(t, sends(t, cfg), id2, "microsoft", want{"sent", "", 2, 200})
	convs := m.conversions(t)
	if len(convs) != 3 || len(convs[1]) != 1 || len(convs[2]) != 1 || !reflect.DeepEqual(convs[1][0], convs[2][0]) ||
		convs[2][0]["MicrosoftClickId"] != msclkid(2) {
		t.Fatalf("the retry is not the same conversion: %v", convs)
	}
	if got := outcomes(attempts(t, cfg, id2, "microsoft")); !reflect.DeepEqual(got, []string{"transient/429", "sent/200"}) {
		t.Fatalf("attempts of the retried send: %v", got)
	}

	// 3. Credentials refused (twice: the client refreshes its token and
	// tries once more) is final, and never sent again.
	m.fake.FailNext(2, microsoftfake.InvalidCredentials)
	id3 := post(t, m.url, m.acme[0], event("order-3", 3))
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 1, Requests: 1, Failed: 1}) {
		t.Fatalf("send into refused credentials: %+v", rep)
	}
	s = expect(t, sends(t, cfg), id3, "microsoft", want{"failed", "rejected", 1, 401})
	if !strings.Contains(s.Message, "InvalidCredentials") {
		t.Errorf("message %q does not quote Microsoft", s.Message)
	}
	before := len(m.fake.Requests())
	if rep := send(t, cfg, "Acme"); rep != (Report{}) {
		t.Fatalf("a send after the refusal did something: %+v", rep)
	}
	if n := len(m.fake.Requests()); n != before {
		t.Fatalf("a failed send was sent again: %d requests, was %d", n, before)
	}

	// 4. Each skip reason, and nothing reaches the fake. Microsoft needs no
	// click_timestamp, so it has no missing_click_timestamp skip.
	skips := map[string]string{}
	noClick := event("skip-signal", 100)
	delete(noClick, "msclkid") // email and phone alone are no signal for Microsoft
	skips[post(t, m.url, m.acme[0], noClick)] = "no_click_id"
	skips[post(t, m.url, m.acme[1], event("skip-mapping", 101))] = "no_mapping"
	old := event("skip-window", 102)
	old["click_timestamp"], old["data_timestamp"] = ts(now.Add(-100*24*time.Hour)), ts(now.Add(-95*24*time.Hour))
	skips[post(t, m.url, m.acme[0], old)] = "outside_window"
	skips[post(t, m.url, m.beta[0], event("skip-connection", 103))] = "no_connection"
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 4, Skipped: 4}) {
		t.Fatalf("send of skipped events: %+v", rep)
	}
	got := sends(t, cfg)
	for id, reason := range skips {
		expect(t, got, id, "microsoft", want{"skipped", reason, 0, 0})
	}
	if n := len(m.fake.Requests()); n != before {
		t.Fatalf("skipped events reached the fake: %d requests, was %d", n, before)
	}
	for _, clk := range []int{100, 101, 102, 103} {
		if n := m.sentTimes(t)[msclkid(clk)]; n != 0 {
			t.Errorf("skipped click %s sent %d times", msclkid(clk), n)
		}
	}

	// 5. The audit log.
	checkLogShape(t, cfg)
	creds := []string{msAccount.DeveloperToken, msAccount.ClientSecret, msAccount.RefreshToken, "Bearer"}
	for _, id := range []string{id1, id2, id3} {
		for _, a := range attempts(t, cfg, id, "microsoft") {
			if a.EventID != id || a.Platform != "microsoft" {
				t.Errorf("attempt row %+v", a)
			}
			checkRedacted(t, "attempt summary", a.Summary, creds...)
			checkRedacted(t, "attempt message", a.Message, creds...)
			if !strings.Contains(a.Summary, emailHash[:8]) || !strings.Contains(a.Summary, msGoal) {
				t.Errorf("summary %q does not describe the conversion", a.Summary)
			}
		}
	}
	checkRedacted(t, "conversions log", run(t, cfg, "conversions", "log", "--json"), creds...)
	checkRedacted(t, "connection list", run(t, cfg, "connection", "list", "--json"), creds...)
}
