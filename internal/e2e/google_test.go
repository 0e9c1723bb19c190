package e2e

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/conversion/google/googlefake"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// googleAction is the conversion action the stage is mapped to.
const googleAction = googlefake.ActionID

// googleSetup is a Google fake, a server and a client Acme connected to the
// fake through api, with its Lead stage mapped and its Won stage not; and a
// client Beta with no connection at all.
type googleSetup struct {
	cfg   config.Config
	url   string // the Pruuv server
	fake  *googlefake.Fake
	api   string
	acme  []pruuvtest.Stage
	beta  []pruuvtest.Stage
	creds []string // every credential the connection holds
}

func newGoogle(t *testing.T, b pruuvtest.Backend, api string) *googleSetup {
	g := &googleSetup{fake: googlefake.New(), api: api}
	fakeURL := serveFake(t, g.fake)
	g.cfg = b.Config(t)
	// Only `conversions send` sends here.
	g.cfg.ConversionsSchedule = "off"
	g.cfg.Endpoints.GoogleDataManager, g.cfg.Endpoints.GoogleAds, g.cfg.Endpoints.GoogleOAuth = fakeURL, fakeURL, fakeURL
	g.url = startServer(t, g.cfg)
	g.acme = pruuvtest.Funnel(t, g.cfg, "Acme", "Leads", "Lead", "Won")
	g.beta = pruuvtest.Funnel(t, g.cfg, "Beta", "Leads", "Lead")
	args := []string{"connection", "add", "--client", "Acme", "--platform", "google", "--set", "customer_id=123-456-7890",
		"--set", "client_id=" + googlefake.ClientID, "--set", "client_secret=" + googlefake.ClientSecret,
		"--set", "refresh_token=" + googlefake.RefreshToken}
	g.creds = []string{googlefake.ClientSecret, googlefake.RefreshToken, "ya29."}
	if api == "ads" {
		args = append(args, "--set", "api=ads", "--set", "developer_token="+googlefake.DeveloperToken)
		g.creds = append(g.creds, googlefake.DeveloperToken)
	}
	view := runJSON[map[string]any](t, g.cfg, args...)
	if view["platform"] != "google" {
		t.Fatalf("connection add printed %v", view)
	}
	run(t, g.cfg, "connection", "map", "--client", "Acme", "--platform", "google", "--stage", g.acme[0].ID, "--event", googleAction)
	return g
}

// apiRequests are the requests the fake got on the conversion API (not the
// token endpoint).
func (g *googleSetup) apiRequests() []googlefake.Request {
	var out []googlefake.Request
	for _, r := range g.fake.Requests() {
		if r.Endpoint == "ingest" || r.Endpoint == "upload" {
			out = append(out, r)
		}
	}
	return out
}

// conversions returns a request's conversions by their dedup key
// (transactionId or orderId).
func (g *googleSetup) conversions(t *testing.T, r googlefake.Request) map[string]any {
	t.Helper()
	list, key := "events", "transactionId"
	if g.api == "ads" {
		list, key = "conversions", "orderId"
	}
	items, _ := r.Body[list].([]any)
	out := map[string]any{}
	for _, it := range items {
		m, _ := it.(map[string]any)
		id, _ := m[key].(string)
		if id == "" {
			t.Fatalf("a conversion without %s: %s", key, r.Raw)
		}
		out[id] = m
	}
	return out
}

// sentTimes counts, per dedup key, how many requests carried it.
func (g *googleSetup) sentTimes(t *testing.T) map[string]int {
	n := map[string]int{}
	for _, r := range g.apiRequests() {
		for id := range g.conversions(t, r) {
			n[id]++
		}
	}
	return n
}

// An event posted to the Webhook API goes out to Google, through either API,
// as exactly the request Google documents; a transient failure is retried
// with the same key; a refusal is final; each skip reason keeps the event
// from the fake; the audit log and attempts say so, without secrets.
func TestGoogle(t *testing.T) {
	for _, api := range []string{"datamanager", "ads"} {
		for _, b := range pruuvtest.Backends() {
			t.Run(api+"/"+b.Name, func(t *testing.T) { testGoogle(t, b, api) })
		}
	}
}

func testGoogle(t *testing.T, b pruuvtest.Backend, api string) {
	g := newGoogle(t, b, api)
	cfg := g.cfg
	now := time.Now().UTC().Truncate(time.Second)
	click, conv := now.Add(-26*time.Hour), now.Add(-2*time.Hour)
	email, emailHashed := "Jane.Doe+promo@gmail.com", gmailGoogleHash // Google's own form of a gmail address
	if api == "ads" {
		email, emailHashed = "jane.doe@example.com", emailHash
	}
	event := func(ref, gclid string) map[string]any {
		g.fake.AddClick(gclid, click) // the Ads API knows its clicks
		return map[string]any{"reference": ref, "gclid": gclid, "click_timestamp": ts(click), "data_timestamp": ts(conv),
			"revenue_value": 49.99, "currency": "usd", "email": email, "phone": "+1 (415) 555-0123",
			"client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0 (e2e)", "event_source_url": "https://shop.example/thanks"}
	}

	// 1. One event, one request, exactly as documented.
	id1 := post(t, g.url, g.acme[0], event("order-1", "Cj0KCQiA-e2e-one"))
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 1, Requests: 1, Sent: 1}) {
		t.Fatalf("first send: %+v", rep)
	}
	reqs := g.apiRequests()
	if len(reqs) != 1 {
		t.Fatalf("the fake got %d API requests, want 1", len(reqs))
	}
	var wantBody string
	if api == "ads" {
		wantBody = fmt.Sprintf(`{"conversions":[{"gclid":"Cj0KCQiA-e2e-one",
			"conversionAction":"customers/1234567890/conversionActions/%s",
			"conversionDateTime":%q,"conversionValue":49.99,"currencyCode":"USD","orderId":%q,
			"userIdentifiers":[{"hashedEmail":%q},{"hashedPhoneNumber":%q}]}],"partialFailure":true}`,
			googleAction, conv.Format("2006-01-02 15:04:05")+"+00:00", id1, emailHashed, phoneHash)
		if got := reqs[0].Header.Get("developer-token"); got != googlefake.DeveloperToken {
			t.Errorf("developer-token %q", got)
		}
		if want := "/v26/customers/1234567890:uploadClickConversions"; reqs[0].Path != want {
			t.Errorf("path %s, want %s", reqs[0].Path, want)
		}
	} else {
		wantBody = fmt.Sprintf(`{"destinations":[{"reference":%[1]q,
			"operatingAccount":{"accountType":"GOOGLE_ADS","accountId":"1234567890"},"productDestinationId":%[1]q}],
			"encoding":"HEX",
			"events":[{"destinationReferences":[%[1]q],"transactionId":%[2]q,"eventTimestamp":%[3]q,
			"adIdentifiers":{"gclid":"Cj0KCQiA-e2e-one"},
			"userData":{"userIdentifiers":[{"emailAddress":%[4]q},{"phoneNumber":%[5]q}]},
			"conversionValue":49.99,"currency":"USD","eventSource":"WEB"}]}`,
			googleAction, id1, ts(conv), emailHashed, phoneHash)
		if reqs[0].Path != "/v1/events:ingest" {
			t.Errorf("path %s", reqs[0].Path)
		}
	}
	if want := decodeJSON(t, wantBody); !reflect.DeepEqual(map[string]any(reqs[0].Body), want) {
		t.Fatalf("the fake received\n%s\nwant\n%s", reqs[0].Raw, wantBody)
	}
	if !strings.HasPrefix(reqs[0].Header.Get("Authorization"), "Bearer ya29.") {
		t.Errorf("Authorization %q", reqs[0].Header.Get("Authorization"))
	}
	expect(t, sends(t, cfg), id1, "google", want{"sent", "", 1, 200})
	if got := g.fake.Accepted(); !reflect.DeepEqual(got, []string{id1}) {
		t.Fatalf("accepted %v", got)
	}

	// 2. A 503, then success on the next run, under the same key.
	g.fake.FailNext(1, googlefake.ServerError)
	id2 := post(t, g.url, g.acme[0], event("order-2", "Cj0KCQiA-e2e-two"))
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 1, Requests: 1, Retrying: 1}) {
		t.Fatalf("send into a 503: %+v", rep)
	}
	s := expect(t, sends(t, cfg), id2, "google", want{"retrying", "transient", 1, 503})
	if s.Message == "" {
		t.Error("a retrying send without the platform's message")
	}
	if rep := send(t, cfg, "Acme"); rep != (Report{Requests: 1, Sent: 1}) {
		t.Fatalf("second send: %+v", rep)
	}
	expect(t, sends(t, cfg), id2, "google", want{"sent", "", 2, 200})
	reqs = g.apiRequests()
	if len(reqs) != 3 {
		t.Fatalf("%d API requests, want 3", len(reqs))
	}
	first, second := g.conversions(t, reqs[1])[id2], g.conversions(t, reqs[2])[id2]
	if first == nil || !reflect.DeepEqual(first, second) || len(g.conversions(t, reqs[2])) != 1 {
		t.Fatalf("the retry is not the same conversion under the same key:\n%s\n%s", reqs[1].Raw, reqs[2].Raw)
	}
	if got := outcomes(attempts(t, cfg, id2, "google")); !reflect.DeepEqual(got, []string{"transient/503", "sent/200"}) {
		t.Fatalf("attempts of the retried send: %v", got)
	}

	// 3. A refusal is final: failed with Google's words, never sent again.
	g.fake.FailNext(1, googlefake.Validation)
	id3 := post(t, g.url, g.acme[0], event("order-3", "Cj0KCQiA-e2e-three"))
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 1, Requests: 1, Failed: 1}) {
		t.Fatalf("send into a refusal: %+v", rep)
	}
	refusal := "There was a problem with the request." // events:ingest's words
	if api == "ads" {
		refusal = "The request contains invalid input."
	}
	s = expect(t, sends(t, cfg), id3, "google", want{"failed", "rejected", 1, 400})
	if !strings.Contains(s.Message, refusal) {
		t.Errorf("message %q does not quote Google's %q", s.Message, refusal)
	}
	before := len(g.apiRequests())
	if rep := send(t, cfg, "Acme"); rep != (Report{}) {
		t.Fatalf("a send after the refusal did something: %+v", rep)
	}
	if n := len(g.apiRequests()); n != before {
		t.Fatalf("a failed send was sent again: %d requests, was %d", n, before)
	}
	expect(t, sends(t, cfg), id3, "google", want{"failed", "rejected", 1, 400})

	// 4. Each skip reason, and nothing reaches the fake.
	skips := map[string]string{}
	noSignal := event("skip-signal", "unused")
	for _, k := range []string{"gclid", "click_timestamp", "email", "phone"} {
		delete(noSignal, k)
	}
	skips[post(t, g.url, g.acme[0], noSignal)] = "no_click_id"
	skips[post(t, g.url, g.acme[1], event("skip-mapping", "Cj0KCQiA-e2e-unmapped"))] = "no_mapping"
	old := event("skip-window", "Cj0KCQiA-e2e-old")
	old["click_timestamp"], old["data_timestamp"] = ts(now.Add(-100*24*time.Hour)), ts(now.Add(-99*24*time.Hour))
	skips[post(t, g.url, g.acme[0], old)] = "outside_window"
	noTime := event("skip-time", "Cj0KCQiA-e2e-untimed")
	delete(noTime, "click_timestamp")
	skips[post(t, g.url, g.acme[0], noTime)] = "missing_click_timestamp"
	noConn := post(t, g.url, g.beta[0], event("skip-connection", "Cj0KCQiA-e2e-beta"))
	// Planning takes the whole outbox, Beta's event too.
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 5, Skipped: 5}) {
		t.Fatalf("send of skipped events: %+v", rep)
	}
	if rep := send(t, cfg, "Beta"); rep != (Report{}) {
		t.Fatalf("send for Beta: %+v", rep)
	}
	skips[noConn] = "no_connection"
	got := sends(t, cfg)
	for id, reason := range skips {
		expect(t, got, id, "google", want{"skipped", reason, 0, 0})
	}
	if n := len(g.apiRequests()); n != before {
		t.Fatalf("skipped events reached the fake: %d requests, was %d", n, before)
	}
	for id, n := range g.sentTimes(t) {
		if _, skipped := skips[id]; skipped {
			t.Errorf("skipped event %s was sent %d times", id, n)
		}
	}

	// 5. The audit log: every row's columns; attempts without secrets or
	// whole hashes, but with enough to recognise the conversion.
	checkLogShape(t, cfg)
	for _, id := range []string{id1, id2, id3} {
		as := attempts(t, cfg, id, "google")
		for _, a := range as {
			if a.EventID != id || a.Platform != "google" {
				t.Errorf("attempt row %+v", a)
			}
			checkRedacted(t, "attempt summary", a.Summary, g.creds...)
			checkRedacted(t, "attempt message", a.Message, g.creds...)
			if !strings.Contains(a.Summary, emailHashed[:8]) || !strings.Contains(a.Summary, googleAction) {
				t.Errorf("summary %q does not describe the conversion", a.Summary)
			}
		}
	}
	checkRedacted(t, "conversions log", run(t, cfg, "conversions", "log", "--json"), g.creds...)
	checkRedacted(t, "connection list", run(t, cfg, "connection", "list", "--json"), g.creds...)
}
