package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/api"
	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/token"
)

type resp struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func call(t *testing.T, method, url, key, body string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	r, err := pruuvtest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	out := resp{status: r.StatusCode, header: r.Header, body: string(b)}
	json.Unmarshal(b, &out.json)
	return out
}

func apiKey(t *testing.T, cfg config.Config) (string, string) {
	var out struct {
		APIKey string `json:"api_key"`
		ID     string `json:"id"`
	}
	js := pruuvtest.Run(t, cfg, "apikey", "create", "--name", "tests", "--json")
	if err := json.Unmarshal([]byte(js), &out); err != nil || !regexp.MustCompile(`^pruuv_key_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$`).MatchString(out.APIKey) {
		t.Fatalf("apikey create printed %q: %v", js, err)
	}
	return out.APIKey, out.ID
}

var allMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// TestOpenAPIMatchesRoutes checks the served document against what the
// server really answers: every documented operation is routed (401 without a
// key, not 404/405), every other method on a documented path is 405 with an
// Allow header naming exactly the documented ones, and the route table and
// the document list the same operations.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	srv := pruuvtest.Start(t, cfg)
	r := call(t, "GET", srv.URL+"/api/v1/openapi.json", "", "")
	if r.status != 200 || r.json["openapi"] != "3.1.0" {
		t.Fatalf("openapi.json: %d %.200s", r.status, r.body)
	}
	paths := r.json["paths"].(map[string]any)
	documented := map[string]bool{}
	for path, item := range paths {
		var methods []string
		for m := range item.(map[string]any) {
			methods = append(methods, strings.ToUpper(m))
			documented[strings.ToUpper(m)+" "+path] = true
		}
		sort.Strings(methods)
		url := srv.URL + regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x")
		for _, m := range allMethods {
			got := call(t, m, url, "", "")
			switch {
			case slices.Contains(methods, m) && path == "/api/v1/openapi.json":
				if got.status != 200 {
					t.Errorf("%s %s: %d", m, path, got.status)
				}
			case slices.Contains(methods, m):
				if got.status != 401 || got.body != "{\"error\":\"Unauthorized\"}\n" {
					t.Errorf("%s %s without a key: %d %s", m, path, got.status, got.body)
				}
			default:
				if got.status != 405 || got.header.Get("Allow") != strings.Join(methods, ", ") {
					t.Errorf("%s %s (undocumented): %d Allow=%q, want 405 Allow=%q", m, path, got.status, got.header.Get("Allow"), strings.Join(methods, ", "))
				}
			}
		}
	}
	a, err := api.New(api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]bool{}
	for _, rt := range a.Routes() {
		table[rt.Method+" "+rt.Path] = true
		if !documented[rt.Method+" "+rt.Path] {
			t.Errorf("route %s %s is not in the document", rt.Method, rt.Path)
		}
	}
	for op := range documented {
		if !table[op] {
			t.Errorf("documented %s is not a route", op)
		}
	}
	for _, p := range []string{"/api/v1/", "/api/v1/nope", "/api/v1/funnels/x/y/z"} {
		if got := call(t, "GET", srv.URL+p, "", ""); got.status != 404 || got.json["error"] != "Not found" {
			t.Errorf("GET %s: %d %s", p, got.status, got.body)
		}
	}
}

func TestAPIKeyAuth(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			cfg := be.Config(t)
			srv := pruuvtest.Start(t, cfg)
			key, id := apiKey(t, cfg)
			u := srv.URL + "/api/v1/clients"
			if r := call(t, "GET", u, key, ""); r.status != 200 {
				t.Fatalf("valid key: %d %s", r.status, r.body)
			}
			// "unknown" is well formed (its checksum holds) but was never
			// issued: only the store lookup can refuse it.
			unknown := token.NewAPIKey()
			if !token.IsAPIKey(unknown) {
				t.Fatalf("token.NewAPIKey made %q, which IsAPIKey refuses", unknown)
			}
			for name, k := range map[string]string{"missing": "", "garbage": "nope",
				"altered": strings.Replace(key, key[12:16], "abcd", 1), "unknown": unknown} {
				r := call(t, "GET", u, k, "")
				if r.status != 401 || r.header.Get("WWW-Authenticate") == "" || r.json["error"] != "Unauthorized" {
					t.Errorf("%s key: %d %s", name, r.status, r.body)
				}
			}
			pruuvtest.Run(t, cfg, "apikey", "revoke", id)
			if r := call(t, "GET", u, key, ""); r.status != 401 {
				t.Fatalf("revoked key: %d", r.status)
			}
		})
	}
}

func TestAPIOperations(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			cfg := be.Config(t)
			srv := pruuvtest.Start(t, cfg)
			key, _ := apiKey(t, cfg)
			v1 := srv.URL + "/api/v1"
			do := func(method, path, body string, want int) map[string]any {
				t.Helper()
				r := call(t, method, v1+path, key, body)
				if r.status != want {
					t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, want, r.body)
				}
				return r.json
			}
			c := do("POST", "/clients", `{"name":"Acme","time_zone":"Europe/London","currency":"usd"}`, 201)
			if c["currency"] != "USD" || c["time_zone"] != "Europe/London" {
				t.Fatalf("client %v", c)
			}
			do("POST", "/clients", `{"name":"Acme"}`, 409)
			bad := do("POST", "/clients", `{"name":"X","currency":"ABC"}`, 400)
			if d := bad["details"].(map[string]any); d["currency"] == nil || bad["error"] != "Validation failed" {
				t.Fatalf("validation body %v", bad)
			}
			if r := do("POST", "/clients", `{"name":"X","extra":1}`, 400); r["details"].(map[string]any)["body"] == nil {
				t.Fatalf("unknown field: %v", r)
			}
			do("POST", "/clients", `[1]`, 400)
			do("POST", "/clients", `{"name":"`+strings.Repeat("x", 70<<10)+`"}`, 413)

			f := do("POST", "/funnels", `{"client_id":"`+c["id"].(string)+`","name":"Leads","stages":["Lead","Qualified","Won"]}`, 201)
			stages := f["stages"].([]any)
			lead := stages[0].(map[string]any)
			won := stages[2].(map[string]any)
			fid := f["funnel"].(map[string]any)["id"].(string)
			do("POST", "/funnels", `{"client_id":"cli_nope","name":"L","stages":["A"]}`, 400)

			if r := pruuvtest.Post(t, srv.URL, lead["id"].(string), lead["webhook_token"].(string), `{"reference":"A-1"}`); r.Status != 200 {
				t.Fatalf("token from the API does not work: %d", r.Status)
			}
			got := do("GET", "/funnels/"+fid, "", 200)
			if got["funnel"].(map[string]any)["client_name"] != "Acme" || len(got["stages"].([]any)) != 3 {
				t.Fatalf("get funnel %v", got)
			}
			do("GET", "/funnels/fun_nope", "", 404)
			if r := do("PATCH", "/funnels/"+fid, `{"name":"Sales"}`, 200); r["funnel"].(map[string]any)["name"] != "Sales" {
				t.Fatalf("rename funnel %v", r)
			}
			st := do("PATCH", "/stages/"+won["id"].(string), `{"name":"Closed","hourly_limit":5,"position":1}`, 200)
			if st["name"] != "Closed" || st["hourly_limit"] != 5.0 || st["position"] != 1.0 {
				t.Fatalf("patched stage %v", st)
			}
			do("PATCH", "/stages/"+won["id"].(string), `{"name":"Renamed","hourly_limit":0}`, 400)
			if s := do("GET", "/stages/"+won["id"].(string), "", 200); s["name"] != "Closed" {
				t.Fatalf("a refused PATCH changed the name: %v", s)
			}
			order := do("GET", "/funnels/"+fid, "", 200)["stages"].([]any)
			if order[0].(map[string]any)["name"] != "Closed" || order[1].(map[string]any)["name"] != "Lead" {
				t.Fatalf("order after move: %v", order)
			}
			if s := do("POST", "/funnels/"+fid+"/stages", `{"name":"Repeat"}`, 201); s["position"] != 4.0 || s["webhook_token"] == "" {
				t.Fatalf("add stage %v", s)
			}
			if all := do("GET", "/stages", "", 200)["stages"].([]any); len(all) != 4 {
				t.Fatalf("stages: %d", len(all))
			}

			rev := do("POST", "/stages/"+lead["id"].(string)+"/reveal-token", "", 200)
			if rev["webhook_token"] != lead["webhook_token"] {
				t.Fatalf("reveal %v", rev)
			}
			rot := do("POST", "/stages/"+lead["id"].(string)+"/rotate-token", `{"overlap":"1h"}`, 200)
			if rot["webhook_token"] == lead["webhook_token"] || rot["previous_token_expires_at"] == nil {
				t.Fatalf("rotate %v", rot)
			}
			do("POST", "/stages/"+lead["id"].(string)+"/rotate-token", `{"overlap":"9999h"}`, 400)
			do("POST", "/stages/stg_nope/reveal-token", "", 404)
			if r := pruuvtest.Post(t, srv.URL, lead["id"].(string), rot["webhook_token"].(string), `{"reference":"A-2","utm_source":"google"}`); r.Status != 200 {
				t.Fatalf("rotated token: %d", r.Status)
			}
			if r := pruuvtest.Post(t, srv.URL, lead["id"].(string), lead["webhook_token"].(string), `{"reference":"A-3"}`); r.Status != 200 {
				t.Fatalf("old token within the overlap: %d", r.Status)
			}

			ev := do("GET", "/events?limit=2&stage_id="+lead["id"].(string), "", 200)
			list := ev["events"].([]any)
			if len(list) != 2 || ev["next_before"] != list[1].(map[string]any)["event_id"] {
				t.Fatalf("events page 1: %v", ev)
			}
			ev2 := do("GET", "/events?limit=2&stage_id="+lead["id"].(string)+"&before="+ev["next_before"].(string), "", 200)
			l2 := ev2["events"].([]any)
			if len(l2) != 1 || ev2["next_before"] != nil {
				t.Fatalf("events page 2: %v", ev2)
			}
			// Newest first by id; the three events, each once.
			var ids, refs []string
			for _, e := range append(list, l2...) {
				ids = append(ids, e.(map[string]any)["event_id"].(string))
				refs = append(refs, e.(map[string]any)["reference"].(string))
			}
			slices.Sort(refs)
			if !slices.IsSortedFunc(ids, func(a, b string) int { return strings.Compare(b, a) }) || strings.Join(refs, ",") != "A-1,A-2,A-3" {
				t.Fatalf("pages hold %v %v", ids, refs)
			}
			if l := do("GET", "/events?reference=A-2", "", 200)["events"].([]any); len(l) != 1 || l[0].(map[string]any)["utm_source"] != "google" {
				t.Fatalf("reference filter: %v", l)
			}
			if l := do("GET", "/events?source=pixel", "", 200)["events"].([]any); len(l) != 0 {
				t.Fatalf("source filter: %v", l)
			}
			if l := do("GET", "/events?from=2999-01-01T00:00:00Z", "", 200)["events"].([]any); len(l) != 0 {
				t.Fatalf("from filter: %v", l)
			}
			do("GET", "/events?from=yesterday", "", 400)
			do("GET", "/events?limit=0", "", 400)
			one := do("GET", "/events/"+list[0].(map[string]any)["event_id"].(string), "", 200)
			if one["reference"] != list[0].(map[string]any)["reference"] || !bytes.Contains([]byte(call(t, "GET", v1+"/events/"+one["event_id"].(string), key, "").body), []byte(`"gclid":null`)) {
				t.Fatalf("get event %v", one)
			}
			do("GET", "/events/nope", "", 404)
		})
	}
}

// TestReportAPI checks the report operations against the CLI: the same
// rows for the same query, the per-stage totals, the daily series, the CSV
// tables, and 400 with details for a wrong query.
func TestReportAPI(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			cfg := be.Config(t)
			srv := pruuvtest.Start(t, cfg)
			key, _ := apiKey(t, cfg)
			stages := pruuvtest.Funnel(t, cfg, "Acme", "Leads", "Lead", "Won")
			var funnels struct {
				Funnels []struct {
					ID       string `json:"id"`
					ClientID string `json:"client_id"`
				} `json:"funnels"`
			}
			json.Unmarshal([]byte(call(t, "GET", srv.URL+"/api/v1/funnels", key, "").body), &funnels)
			fid := funnels.Funnels[0].ID
			for _, e := range []struct{ stage, body string }{
				{stages[0].ID, `{"reference":"r1","utm_source":"google","gclid":"G"}`},
				{stages[0].ID, `{"reference":"r2","utm_source":"meta","fbc":"fb.1.1.x"}`},
				{stages[0].ID, `{"reference":"r3"}`},
				{stages[1].ID, `{"reference":"r1","utm_source":"google","revenue_value":250.75,"currency":"GBP"}`},
				{stages[1].ID, `{"reference":"r2","utm_source":"meta","revenue_value":0.1}`},
			} {
				tok := stages[0].WebhookToken
				if e.stage == stages[1].ID {
					tok = stages[1].WebhookToken
				}
				if r := pruuvtest.Post(t, srv.URL, e.stage, tok, e.body); r.Status != 200 {
					t.Fatalf("post: %d %s", r.Status, r.Body)
				}
			}
			today := time.Now().UTC()
			from, to := today.AddDate(0, 0, -2).Format(time.DateOnly), today.Format(time.DateOnly)
			compact := func(raw json.RawMessage) string {
				var b bytes.Buffer
				if err := json.Compact(&b, raw); err != nil {
					t.Fatalf("%v: %s", err, raw)
				}
				return b.String()
			}
			for _, by := range []string{"", "utm_source", "click_platform"} {
				args := []string{"report", "--funnel", fid, "--from", from, "--to", to, "--json"}
				path := "/api/v1/funnels/" + fid + "/report?from=" + from + "&to=" + to
				if by != "" {
					args = append(args, "--by", by)
					path += "&by=" + by
				}
				var cli, cliStages, got map[string]json.RawMessage
				json.Unmarshal([]byte(pruuvtest.Run(t, cfg, args...)), &cli)
				json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "report", "--funnel", fid, "--from", from, "--to", to, "--json")), &cliStages)
				r := call(t, "GET", srv.URL+path, key, "")
				if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
					t.Fatalf("GET %s: %d %s", path, r.status, r.body)
				}
				json.Unmarshal([]byte(r.body), &got)
				if compact(got["rows"]) != compact(cli["rows"]) {
					t.Errorf("by %q: API rows\n%s\nCLI rows\n%s", by, got["rows"], cli["rows"])
				}
				if compact(got["stages"]) != compact(cliStages["rows"]) {
					t.Errorf("by %q: API stages\n%s\nCLI rows without --by\n%s", by, got["stages"], cliStages["rows"])
				}
				var daily []struct {
					Date     string `json:"date"`
					StageID  string `json:"stage_id"`
					Contacts int    `json:"contacts"`
				}
				if err := json.Unmarshal(got["daily"], &daily); err != nil || len(daily) != 3*2 || daily[0].Date != from || daily[5].Date != to {
					t.Fatalf("daily %s (%v)", got["daily"], err)
				}
				sum := map[string]int{}
				for _, d := range daily {
					sum[d.StageID] += d.Contacts
				}
				if sum[stages[0].ID] != 3 || sum[stages[1].ID] != 2 {
					t.Errorf("daily sums %v, want 3 and 2", sum)
				}
			}
			// The CSV tables are the CLI's.
			for _, c := range []struct{ table, by string }{{"breakdown", "utm_source"}, {"", ""}, {"stages", "utm_source"}, {"daily", ""}} {
				path := "/api/v1/funnels/" + fid + "/report.csv?from=" + from + "&to=" + to + "&by=" + c.by + "&table=" + c.table
				r := call(t, "GET", srv.URL+path, key, "")
				if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" ||
					!strings.HasPrefix(r.header.Get("Content-Disposition"), `attachment; filename="pruuv-report-`+fid) {
					t.Fatalf("GET %s: %d %v", path, r.status, r.header)
				}
				lines := strings.Split(strings.TrimSuffix(r.body, "\r\n"), "\r\n")
				switch c.table {
				case "breakdown":
					if want := pruuvtest.Run(t, cfg, "report", "--funnel", fid, "--from", from, "--to", to, "--by", c.by, "--csv"); r.body != want {
						t.Errorf("breakdown CSV\n%s\nCLI\n%s", r.body, want)
					}
				case "", "stages":
					if want := pruuvtest.Run(t, cfg, "report", "--funnel", fid, "--from", from, "--to", to, "--csv"); r.body != want {
						t.Errorf("stages CSV (table %q)\n%s\nCLI\n%s", c.table, r.body, want)
					}
				case "daily":
					if lines[0] != "date,stage_id,stage_name,position,contacts" || len(lines) != 1+3*2 {
						t.Errorf("daily CSV\n%s", r.body)
					}
				}
			}
			// Wrong queries.
			for q, field := range map[string]string{
				"to=" + to:                                  "from",
				"from=" + from:                              "to",
				"from=" + to + "&to=" + from:                "to",
				"from=2020-01-01&to=2026-01-01":             "to",
				"from=" + from + "&to=" + to + "&by=email":  "by",
				"from=" + from + "&to=" + to + "&source=x":  "source",
				"from=" + from + "&to=" + to + "&table=all": "table",
			} {
				path := "/api/v1/funnels/" + fid + "/report.csv?" + q
				if field != "table" {
					path = strings.Replace(path, "report.csv", "report", 1)
				}
				r := call(t, "GET", srv.URL+path, key, "")
				if r.status != 400 || r.json["error"] != "Validation failed" || r.json["details"].(map[string]any)[field] == nil {
					t.Errorf("GET %s: %d %s, want 400 with details.%s", path, r.status, r.body, field)
				}
			}
			if r := call(t, "GET", srv.URL+"/api/v1/funnels/fun_nope/report?from="+from+"&to="+to, key, ""); r.status != 404 {
				t.Errorf("unknown funnel: %d", r.status)
			}

			// PATCH a client: checked, applied, audited.
			cid := funnels.Funnels[0].ClientID
			if r := call(t, "PATCH", srv.URL+"/api/v1/clients/"+cid, key, `{"time_zone":"Mars/Olympus","currency":"EUR"}`); r.status != 400 ||
				r.json["details"].(map[string]any)["time_zone"] == nil {
				t.Fatalf("bad time zone: %d %s", r.status, r.body)
			}
			if r := call(t, "PATCH", srv.URL+"/api/v1/clients/"+cid, key, `{"currency":"XYZ"}`); r.status != 400 || r.json["details"].(map[string]any)["currency"] == nil {
				t.Fatalf("bad currency: %d %s", r.status, r.body)
			}
			r := call(t, "PATCH", srv.URL+"/api/v1/clients/"+cid, key, `{"time_zone":"America/New_York"}`)
			if r.status != 200 || r.json["time_zone"] != "America/New_York" || r.json["currency"] != "GBP" {
				t.Fatalf("set time zone: %d %s", r.status, r.body)
			}
			r = call(t, "PATCH", srv.URL+"/api/v1/clients/"+cid, key, `{"currency":"usd"}`)
			if r.status != 200 || r.json["time_zone"] != "America/New_York" || r.json["currency"] != "USD" {
				t.Fatalf("set currency: %d %s", r.status, r.body)
			}
			if r := call(t, "PATCH", srv.URL+"/api/v1/clients/cli_nope", key, `{"currency":"USD"}`); r.status != 404 {
				t.Fatalf("unknown client: %d", r.status)
			}
			// r2's revenue had no currency: it now counts in USD.
			var rep struct {
				Stages []struct {
					Revenue map[string]float64 `json:"revenue"`
				} `json:"stages"`
			}
			json.Unmarshal([]byte(call(t, "GET", srv.URL+"/api/v1/funnels/"+fid+"/report?from="+from+"&to="+to, key, "").body), &rep)
			if len(rep.Stages) != 2 || rep.Stages[1].Revenue["USD"] != 0.1 || rep.Stages[1].Revenue["GBP"] != 250.75 {
				t.Fatalf("report after the currency change: %+v", rep)
			}
		})
	}
}
