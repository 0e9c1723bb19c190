package api_test

import (
	"context"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/conversion/conversiontest"
	"github.com/pruuv/pruuv/internal/pixel"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/store"
)

const metaToken = "EAAB-very-secret-access-token-9XyZ"

func TestAPIConnectionsSitesAndConversions(t *testing.T) {
	for _, be := range pruuvtest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			cfg := be.Config(t)
			cfg.ConversionsPoll = 10 * time.Minute // only the test's conversions send sends
			srv := pruuvtest.Start(t, cfg)
			key, keyID := apiKey(t, cfg)
			v1 := srv.URL + "/api/v1"
			do := func(method, path, body string, want int) resp {
				t.Helper()
				r := call(t, method, v1+path, key, body)
				if r.status != want {
					t.Fatalf("%s %s: %d, want %d: %s", method, path, r.status, want, r.body)
				}
				return r
			}
			c := do("POST", "/clients", `{"name":"Acme"}`, 201).json
			cid := c["id"].(string)
			f := do("POST", "/funnels", `{"client_id":"`+cid+`","name":"Leads","stages":["Lead","Won"]}`, 201).json
			lead := f["stages"].([]any)[0].(map[string]any)
			leadID := lead["id"].(string)

			// Connections.
			if l := do("GET", "/clients/"+cid+"/connections", "", 200).json["connections"].([]any); len(l) != 0 {
				t.Fatalf("connections before any: %v", l)
			}
			if r := call(t, "PUT", v1+"/clients/"+cid+"/connections/meta", "", `{"settings":{"pixel_id":"1"}}`); r.status != 401 {
				t.Fatalf("PUT without a key: %d", r.status)
			}
			r := do("PUT", "/clients/"+cid+"/connections/meta", `{"settings":{"pixel_id":"1","access_token":"`+metaToken+`"}}`, 200)
			settings := r.json["settings"].(map[string]any)
			if strings.Contains(r.body, metaToken) || settings["access_token"] != "…9XyZ" || settings["pixel_id"] != "1" ||
				!reflect.DeepEqual(r.json["secret_keys"], []any{"access_token"}) || r.json["client"] != "Acme" {
				t.Fatalf("saved connection %s", r.body)
			}
			connID := r.json["id"].(string)
			bad := do("PUT", "/clients/"+cid+"/connections/meta", `{"settings":{"pixel_id":"abc"}}`, 400).json
			if bad["details"].(map[string]any)["settings"] == nil {
				t.Fatalf("validation body %v", bad)
			}
			do("PUT", "/clients/"+cid+"/connections/meta", `{"settings":{"pixels":"1"}}`, 400)
			do("PUT", "/clients/"+cid+"/connections/meta", `{"settings":{}}`, 400)
			do("PUT", "/clients/"+cid+"/connections/myspace", `{"settings":{"pixel_id":"1"}}`, 404)
			do("PUT", "/clients/cli_nope/connections/meta", `{"settings":{"pixel_id":"1","access_token":"`+metaToken+`"}}`, 404)
			do("PUT", "/clients/"+cid+"/connections/google", `{"settings":{"customer_id":"x"}}`, 400)
			got := do("GET", "/clients/"+cid+"/connections/meta", "", 200)
			if got.json["id"] != connID || got.json["settings"].(map[string]any)["pixel_id"] != "1" || strings.Contains(got.body, metaToken) {
				t.Fatalf("a refused PUT changed the connection: %s", got.body)
			}
			do("GET", "/clients/"+cid+"/connections/google", "", 404)
			// An update keeps the secret it does not name.
			do("PUT", "/clients/"+cid+"/connections/meta", `{"settings":{"pixel_id":"2"}}`, 200)

			// Mappings.
			m := do("PUT", "/stages/"+leadID+"/mappings/meta", `{"event":"Lead"}`, 200).json
			if !reflect.DeepEqual(m, map[string]any{"stage_id": leadID, "platform": "meta", "event": "Lead"}) {
				t.Fatalf("map %v", m)
			}
			do("PUT", "/stages/stg_nope/mappings/meta", `{"event":"Lead"}`, 404)
			do("PUT", "/stages/"+leadID+"/mappings/meta", `{"event":"`+strings.Repeat("x", 201)+`"}`, 400)
			list := do("GET", "/clients/"+cid+"/connections", "", 200).json["connections"].([]any)
			if len(list) != 1 || len(list[0].(map[string]any)["mappings"].([]any)) != 1 {
				t.Fatalf("connections %v", list)
			}
			won := f["stages"].([]any)[1].(map[string]any)["id"].(string)
			do("PUT", "/stages/"+won+"/mappings/meta", `{"event":"Purchase"}`, 200)
			if m := do("DELETE", "/stages/"+won+"/mappings/meta", "", 200).json; m["event"] != nil {
				t.Fatalf("unmap %v", m)
			}

			// Sites.
			s := do("POST", "/sites", `{"client_id":"`+cid+`","origins":["https://Shop.example"]}`, 201).json
			siteKey, siteID := s["site_key"].(string), s["site_id"].(string)
			if s["snippet"] != pixel.Snippet(srv.URL, siteKey) || s["tag"] != pixel.Tag(srv.URL, siteKey) || s["name"] != "shop.example" {
				t.Fatalf("created site %v", s)
			}
			do("POST", "/sites", `{"client_id":"cli_nope","origins":["https://x.example"]}`, 400)
			do("POST", "/sites", `{"client_id":"`+cid+`","origins":["http://x.example"]}`, 400)
			do("POST", "/sites", `{"client_id":"`+cid+`","origins":[]}`, 400)
			s = do("POST", "/sites/"+siteKey+"/origins", `{"add":["https://m.shop.example"],"remove":["https://shop.example"]}`, 200).json
			if !reflect.DeepEqual(s["origins"], []any{"https://m.shop.example"}) {
				t.Fatalf("origins %v", s["origins"])
			}
			do("POST", "/sites/"+siteID+"/origins", `{"add":["ftp://x"]}`, 400)
			do("POST", "/sites/"+siteID+"/origins", `{}`, 400)
			do("POST", "/sites/site_nope/origins", `{"add":["https://x.example"]}`, 404)
			if l := do("GET", "/sites", "", 200).json["sites"].([]any); len(l) != 1 || l[0].(map[string]any)["site_id"] != siteID {
				t.Fatalf("sites %v", l)
			}

			// The conversion log, from the real queue with scripted clients.
			var ids []string
			for _, ref := range []string{"ok", "bad", "later"} {
				p := pruuvtest.Post(t, srv.URL, leadID, lead["webhook_token"].(string), `{"reference":"`+ref+`","fbc":"fb.1.1.`+ref+`"}`)
				if p.Status != 200 {
					t.Fatalf("webhook %d", p.Status)
				}
				ids = append(ids, p.JSON["event_id"].(string))
			}
			reg, cls := conversiontest.Registry(time.Now)
			cls[conversion.Meta].Script(ids[1], conversion.Result{Outcome: conversion.Permanent, HTTPStatus: 400, Message: "invalid fbc"})
			cls[conversion.Meta].Script(ids[2], conversion.Result{Outcome: conversion.Transient, HTTPStatus: 503, Message: "busy"})
			pruuvtest.RunWith(t, cfg, reg, "conversions", "send")

			failed := do("GET", "/conversions?status=failed&platform=meta&client_id="+cid, "", 200).json["sends"].([]any)
			if len(failed) != 1 || failed[0].(map[string]any)["event_id"] != ids[1] || failed[0].(map[string]any)["http_status"] != 400.0 ||
				failed[0].(map[string]any)["message"] != "invalid fbc" {
				t.Fatalf("failed sends %v", failed)
			}
			seen := map[string]bool{}
			q := url.Values{"limit": {"1"}}
			for range 5 {
				page := do("GET", "/conversions?"+q.Encode(), "", 200).json
				for _, s := range page["sends"].([]any) {
					id := s.(map[string]any)["event_id"].(string)
					if seen[id] {
						t.Fatalf("send %s on two pages", id)
					}
					seen[id] = true
				}
				if page["next_after"] == nil {
					break
				}
				q.Set("after", page["next_after"].(string))
			}
			if len(seen) != 3 {
				t.Fatalf("pages held %d sends", len(seen))
			}
			do("GET", "/conversions?status=lost", "", 400)
			do("GET", "/conversions?after=nope", "", 400)
			do("GET", "/conversions?limit=0", "", 400)
			atts := do("GET", "/conversions/"+ids[1]+"/attempts?platform=meta", "", 200).json["attempts"].([]any)
			if len(atts) != 1 || atts[0].(map[string]any)["summary"] != "meta event=Lead id="+ids[1] || atts[0].(map[string]any)["outcome"] != "permanent" {
				t.Fatalf("attempts %v", atts)
			}
			rt := do("POST", "/conversions/"+ids[1]+"/retry", `{"platform":"meta"}`, 200).json
			if !reflect.DeepEqual(rt, map[string]any{"event_id": ids[1], "platforms": []any{"meta"}, "status": "pending"}) {
				t.Fatalf("retry %v", rt)
			}
			do("POST", "/conversions/"+ids[1]+"/retry", "", 409)
			do("POST", "/conversions/"+ids[0]+"/retry", "", 409)
			do("POST", "/conversions/nope/retry", "", 404)
			if p := do("GET", "/conversions?event_id="+ids[1], "", 200).json["sends"].([]any); p[0].(map[string]any)["status"] != "pending" {
				t.Fatalf("after retry %v", p)
			}

			st, err := store.Open(context.Background(), store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			audit, err := st.ListAudit(context.Background(), 1000)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, e := range audit {
				if e.Actor == "apikey:"+keyID {
					counts[e.Action]++
				}
			}
			want := map[string]int{"connection.save": 2, "stage.map": 2, "stage.unmap": 1, "site.create": 1, "site.add_origins": 1,
				"site.remove_origins": 1, "conversion.retry": 1, "funnel.create": 1}
			if !reflect.DeepEqual(counts, want) {
				t.Fatalf("audit %v, want %v", counts, want)
			}
		})
	}
}
