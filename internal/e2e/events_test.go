package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion/meta/metafake"
	"github.com/pruuv/pruuv/internal/conversion/tiktok/tiktokfake"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// eventAPI describes a platform whose API takes a list of events, each with
// Pruuv's event id as its dedup key: Meta's Conversions API and TikTok's
// Events API.
type eventAPI struct {
	platform string
	fake     func(t *testing.T) (url string, f any)
	settings []string // connection add --set values
	creds    []string
	// event is a sendable event with its own click id n.
	event func(ref string, n int, conv time.Time) map[string]any
	// want is the expected payload (Meta: the data array; TikTok: the body)
	// for event id with the given conversion time and click id n.
	want func(id string, n int, conv time.Time) string
	// payloads returns, per request received, its payload and the event ids
	// in it.
	payloads func(t *testing.T, f any) ([]json.RawMessage, [][]string)
	// retry and refuse inject a transient failure and a refusal into the
	// next request; the log then shows these.
	retry, refuse                 func(f any)
	retryHTTP, refuseHTTP         int
	retryReason, refuseMessage    string
	noSignal                      []string // fields whose removal leaves no signal
	window                        time.Duration
	extraSkip                     func(ev map[string]any) // mutates a Paid-stage event into a platform-specific skip
	extraReason, extraStageMapped string
}

var metaAPI = eventAPI{
	platform: "meta",
	fake: func(t *testing.T) (string, any) {
		f := metafake.New(metafake.Options{Pixels: map[string]string{"1234567890": "EAAB-meta-token-e2e-0123456789"}})
		return serveFake(t, f), f
	},
	settings: []string{"pixel_id=1234567890", "access_token=EAAB-meta-token-e2e-0123456789"},
	creds:    []string{"EAAB-meta-token-e2e-0123456789"},
	event: func(ref string, n int, conv time.Time) map[string]any {
		return map[string]any{"reference": ref, "fbc": fmt.Sprintf("fb.1.1700000000000.IwAR-e2e-%d", n), "fbp": "fb.1.1700000000000.1234567890",
			"data_timestamp": ts(conv), "revenue_value": 49.99, "currency": "usd", "email": "jane.doe@example.com", "phone": "+1 415 555 0123",
			"client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0 (e2e)", "event_source_url": "https://shop.example/thanks"}
	},
	want: func(id string, n int, conv time.Time) string {
		return fmt.Sprintf(`[{"event_name":"Lead","event_time":%d,"event_id":%q,"action_source":"website",
			"event_source_url":"https://shop.example/thanks",
			"user_data":{"em":[%q],"ph":[%q],"fbc":"fb.1.1700000000000.IwAR-e2e-%d","fbp":"fb.1.1700000000000.1234567890",
				"client_ip_address":"203.0.113.7","client_user_agent":"Mozilla/5.0 (e2e)"},
			"custom_data":{"value":49.99,"currency":"USD"}}]`, conv.Unix(), id, emailHash, phoneMetaHash, n)
	},
	payloads: func(t *testing.T, f any) ([]json.RawMessage, [][]string) {
		var out []json.RawMessage
		var ids [][]string
		for _, r := range f.(*metafake.Fake).Requests() {
			if r.TokenIn != "form" {
				t.Errorf("the access token was sent in %q, not the form", r.TokenIn)
			}
			var evs []struct {
				ID string `json:"event_id"`
			}
			json.Unmarshal(r.Data, &evs)
			var in []string
			for _, e := range evs {
				in = append(in, e.ID)
			}
			out, ids = append(out, r.Data), append(ids, in)
		}
		return out, ids
	},
	retry:         func(f any) { f.(*metafake.Fake).FailNext(1, metafake.ServerError) },
	retryHTTP:     500,
	retryReason:   "transient",
	refuse:        func(f any) { f.(*metafake.Fake).FailNext(1, metafake.AuthError) },
	refuseHTTP:    400,
	refuseMessage: "190",
	noSignal:      []string{"fbc", "fbp", "email", "phone"},
	window:        8 * 24 * time.Hour,
	extraSkip: func(ev map[string]any) {
		delete(ev, "revenue_value")
	},
	extraReason:      "missing_value",
	extraStageMapped: "Purchase",
}

var tiktokAPI = eventAPI{
	platform: "tiktok",
	fake: func(t *testing.T) (string, any) {
		f := tiktokfake.New(tiktokfake.Options{Pixels: map[string]string{"C4E2EPIXEL0123456789": "tt-token-e2e-0123456789"}})
		return serveFake(t, f), f
	},
	settings: []string{"pixel_code=C4E2EPIXEL0123456789", "access_token=tt-token-e2e-0123456789"},
	creds:    []string{"tt-token-e2e-0123456789"},
	event: func(ref string, n int, conv time.Time) map[string]any {
		return map[string]any{"reference": ref, "ttclid": fmt.Sprintf("E2E.ttclid.%d", n),
			"data_timestamp": ts(conv), "revenue_value": 49.99, "currency": "USD", "email": "jane.doe@example.com", "phone": "+14155550123",
			"client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0 (e2e)", "event_source_url": "https://shop.example/thanks"}
	},
	want: func(id string, n int, conv time.Time) string {
		return fmt.Sprintf(`{"event_source":"web","event_source_id":"C4E2EPIXEL0123456789","data":[{"event":"Lead","event_time":%d,
			"event_id":%q,"user":{"ttclid":"E2E.ttclid.%d","email":%q,"phone":%q,"ip":"203.0.113.7","user_agent":"Mozilla/5.0 (e2e)"},
			"properties":{"value":49.99,"currency":"USD"},"page":{"url":"https://shop.example/thanks"}}]}`,
			conv.Unix(), id, n, emailHash, phoneHash)
	},
	payloads: func(t *testing.T, f any) ([]json.RawMessage, [][]string) {
		var out []json.RawMessage
		var ids [][]string
		for _, r := range f.(*tiktokfake.Fake).Requests() {
			var body struct {
				Data []struct {
					ID string `json:"event_id"`
				}
			}
			json.Unmarshal(r.Body, &body)
			var in []string
			for _, e := range body.Data {
				in = append(in, e.ID)
			}
			out, ids = append(out, r.Body), append(ids, in)
		}
		return out, ids
	},
	retry:       func(f any) { f.(*tiktokfake.Fake).FailNext(1, tiktokfake.ServerError) },
	retryHTTP:   502,
	retryReason: "transient",
	// TikTok answers its own refusals with HTTP 200 and a code.
	refuse:        func(f any) { f.(*tiktokfake.Fake).FailNext(1, tiktokfake.AuthError) },
	refuseHTTP:    200,
	refuseMessage: "40105",
	noSignal:      []string{"ttclid", "email", "phone"},
	window:        29 * 24 * time.Hour,
}

// Meta and TikTok, the same story as TestGoogle: the exact request, retry
// then success under the same event_id, a refusal, each skip reason, the
// audit log.
func TestMetaAndTikTok(t *testing.T) {
	for _, p := range []eventAPI{metaAPI, tiktokAPI} {
		for _, b := range pruuvtest.Backends() {
			t.Run(p.platform+"/"+b.Name, func(t *testing.T) { testEventAPI(t, b, p) })
		}
	}
}

func testEventAPI(t *testing.T, b pruuvtest.Backend, p eventAPI) {
	url, fake := p.fake(t)
	cfg := b.Config(t)
	cfg.ConversionsSchedule = "off"
	if p.platform == "meta" {
		cfg.Endpoints.Meta = url
	} else {
		cfg.Endpoints.TikTok = url
	}
	srv := startServer(t, cfg)
	acme := pruuvtest.Funnel(t, cfg, "Acme", "Leads", "Lead", "Won", "Paid")
	beta := pruuvtest.Funnel(t, cfg, "Beta", "Leads", "Lead")
	args := []string{"connection", "add", "--client", "Acme", "--platform", p.platform}
	for _, s := range p.settings {
		args = append(args, "--set", s)
	}
	run(t, cfg, args...)
	run(t, cfg, "connection", "map", "--client", "Acme", "--platform", p.platform, "--stage", acme[0].ID, "--event", "Lead")
	if p.extraStageMapped != "" {
		run(t, cfg, "connection", "map", "--client", "Acme", "--platform", p.platform, "--stage", acme[2].ID, "--event", p.extraStageMapped)
	}
	now := time.Now().UTC().Truncate(time.Second)
	conv := now.Add(-2 * time.Hour)
	requests := func() ([]json.RawMessage, [][]string) { return p.payloads(t, fake) }

	// 1. The exact request.
	id1 := post(t, srv, acme[0], p.event("order-1", 1, conv))
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 1, Requests: 1, Sent: 1}) {
		t.Fatalf("first send: %+v", rep)
	}
	bodies, _ := requests()
	if len(bodies) != 1 {
		t.Fatalf("the fake got %d requests", len(bodies))
	}
	wantBody := p.want(id1, 1, conv)
	if !reflect.DeepEqual(decodeJSON(t, string(bodies[0])), decodeJSON(t, wantBody)) {
		t.Fatalf("the fake received\n%s\nwant\n%s", bodies[0], wantBody)
	}
	expect(t, sends(t, cfg), id1, p.platform, want{"sent", "", 1, 200})

	// 2. A transient failure, then success under the same event_id.
	p.retry(fake)
	id2 := post(t, srv, acme[0], p.event("order-2", 2, conv))
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 1, Requests: 1, Retrying: 1}) {
		t.Fatalf("send into a failure: %+v", rep)
	}
	s := expect(t, sends(t, cfg), id2, p.platform, want{"retrying", p.retryReason, 1, p.retryHTTP})
	if s.Message == "" {
		t.Error("a retrying send without a message")
	}
	if rep := send(t, cfg, "Acme"); rep != (Report{Requests: 1, Sent: 1}) {
		t.Fatalf("second send: %+v", rep)
	}
	expect(t, sends(t, cfg), id2, p.platform, want{"sent", "", 2, 200})
	bodies, ids := requests()
	if len(bodies) != 3 || !reflect.DeepEqual(ids[1:], [][]string{{id2}, {id2}}) {
		t.Fatalf("requests carried %v, want the first event, then the second twice", ids)
	}
	if !reflect.DeepEqual(decodeJSON(t, string(bodies[1])), decodeJSON(t, string(bodies[2]))) {
		t.Fatalf("the retry differs:\n%s\n%s", bodies[1], bodies[2])
	}
	if got := outcomes(attempts(t, cfg, id2, p.platform)); !reflect.DeepEqual(got, []string{fmt.Sprintf("transient/%d", p.retryHTTP), "sent/200"}) {
		t.Fatalf("attempts of the retried send: %v", got)
	}

	// 3. A refusal is final.
	p.refuse(fake)
	id3 := post(t, srv, acme[0], p.event("order-3", 3, conv))
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: 1, Requests: 1, Failed: 1}) {
		t.Fatalf("send into a refusal: %+v", rep)
	}
	s = expect(t, sends(t, cfg), id3, p.platform, want{"failed", "rejected", 1, p.refuseHTTP})
	if !strings.Contains(s.Message, p.refuseMessage) {
		t.Errorf("message %q does not quote the platform's %s", s.Message, p.refuseMessage)
	}
	if rep := send(t, cfg, "Acme"); rep != (Report{}) {
		t.Fatalf("a send after the refusal did something: %+v", rep)
	}
	before := len(bodies) + 1
	if bodies, _ = requests(); len(bodies) != before {
		t.Fatalf("%d requests, want %d: a failed send went again", len(bodies), before)
	}

	// 4. Each skip reason; nothing reaches the fake.
	skips := map[string]string{}
	noSignal := p.event("skip-signal", 100, conv)
	for _, k := range p.noSignal {
		delete(noSignal, k)
	}
	skips[post(t, srv, acme[0], noSignal)] = "no_click_id"
	skips[post(t, srv, acme[1], p.event("skip-mapping", 101, conv))] = "no_mapping"
	skips[post(t, srv, acme[0], p.event("skip-window", 102, now.Add(-p.window)))] = "outside_window"
	skips[post(t, srv, beta[0], p.event("skip-connection", 103, conv))] = "no_connection"
	if p.extraSkip != nil {
		ev := p.event("skip-extra", 104, conv)
		p.extraSkip(ev)
		skips[post(t, srv, acme[2], ev)] = p.extraReason
	}
	if rep := send(t, cfg, "Acme"); rep != (Report{Planned: len(skips), Skipped: len(skips)}) {
		t.Fatalf("send of skipped events: %+v", rep)
	}
	got := sends(t, cfg)
	for id, reason := range skips {
		expect(t, got, id, p.platform, want{"skipped", reason, 0, 0})
	}
	if bodies, _ = requests(); len(bodies) != before {
		t.Fatalf("skipped events reached the fake: %d requests, want %d", len(bodies), before)
	}

	// 5. The audit log.
	checkLogShape(t, cfg)
	for _, id := range []string{id1, id2, id3} {
		for _, a := range attempts(t, cfg, id, p.platform) {
			checkRedacted(t, "attempt summary", a.Summary, p.creds...)
			checkRedacted(t, "attempt message", a.Message, p.creds...)
			if !strings.Contains(a.Summary, id) || !strings.Contains(a.Summary, emailHash[:8]) {
				t.Errorf("summary %q does not describe the conversion", a.Summary)
			}
		}
	}
	checkRedacted(t, "conversions log", run(t, cfg, "conversions", "log", "--json"), p.creds...)
	checkRedacted(t, "connection list", run(t, cfg, "connection", "list", "--json"), p.creds...)
}
