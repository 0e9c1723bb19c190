package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

func TestAuthorizePixel(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
			f := setup(t, b, start)
			ctx := context.Background()
			other := token.NewID("stg")
			_, _, err := f.st.CreateFunnel(ctx, token.NewID("cli"), "Other", token.NewID("fun"), "Main",
				[]store.NewStage{{ID: other, Name: "Lead", Token: store.StageToken{ID: token.NewID("tok"), Hash: []byte("h"), Sealed: "x", Hint: "h"}}}, start)
			must(t, err)
			key := token.NewSiteKey()
			_, err = f.st.CreateSite(ctx, store.NewSite{ID: token.NewID("site"), Key: key, Name: "shop", ClientName: "Acme",
				Origins: []string{"https://shop.example"}}, start)
			must(t, err)
			must(t, f.st.SetPixelHourlyLimit(ctx, f.stage, 5))

			cases := []struct {
				name, key, origin, stage string
				want                     error
			}{
				{"unknown key", token.NewSiteKey(), "https://shop.example", f.stage, ingest.ErrUnauthorized},
				{"webhook token as key", f.tok, "https://shop.example", f.stage, ingest.ErrUnauthorized},
				{"stage id as key", f.stage, "https://shop.example", f.stage, ingest.ErrUnauthorized},
				{"no origin", key, "", f.stage, ingest.ErrForbidden},
				{"another origin", key, "https://evil.example", f.stage, ingest.ErrForbidden},
				{"origin with a path", key, "https://shop.example/", f.stage, ingest.ErrForbidden},
				{"no stage", key, "https://shop.example", "", ingest.ErrStageNotFound},
				{"unknown stage", key, "https://shop.example", token.NewID("stg"), ingest.ErrStageNotFound},
				{"another client's stage", key, "https://shop.example", other, ingest.ErrStageNotFound},
			}
			for _, c := range cases {
				if _, err := f.svc.AuthorizePixel(ctx, c.key, c.origin, c.stage); !errors.Is(err, c.want) {
					t.Errorf("%s: %v, want %v", c.name, err, c.want)
				}
			}
			limit, err := f.svc.AuthorizePixel(ctx, key, "https://shop.example", f.stage)
			if err != nil || limit != 5 {
				t.Fatalf("allowed request: limit %d, %v", limit, err)
			}
			for origin, want := range map[string]bool{"https://shop.example": true, "https://evil.example": false, "": false} {
				if got, err := f.svc.OriginListed(ctx, origin); err != nil || got != want {
					t.Errorf("OriginListed(%q) = %v, %v", origin, got, err)
				}
			}
			// A running server sees a new origin of a cached site within CacheFor.
			_, err = f.st.AddSiteOrigins(ctx, key, []string{"https://m.shop.example"}, start)
			must(t, err)
			f.clk.Add(ingest.CacheFor)
			if _, err := f.svc.AuthorizePixel(ctx, key, "https://m.shop.example", f.stage); err != nil {
				t.Fatalf("new origin after CacheFor: %v", err)
			}
		})
	}
}

// The Pixel's quota and the webhook's are counted apart; a reference is a
// duplicate whichever way it came first.
func TestPixelQuotaAndDedup(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			f := setup(t, b, time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
			ctx := context.Background()
			offer := func(src event.Source, ref string, limit int) store.Outcome {
				t.Helper()
				r, err := f.svc.Ingest(ctx, f.stage, limit, src, fields(ref))
				must(t, err)
				return r.Outcome
			}
			if got := offer(event.SourcePixel, "p1", 1); got != store.Accepted {
				t.Fatalf("first pixel event: %v", got)
			}
			if got := offer(event.SourcePixel, "p2", 1); got != store.Limited {
				t.Fatalf("second pixel event over a limit of 1: %v", got)
			}
			if got := offer(event.SourceWebhook, "w1", 1); got != store.Accepted {
				t.Fatalf("webhook event with the Pixel's quota used up: %v", got)
			}
			if got := offer(event.SourceWebhook, "w2", 1); got != store.Limited {
				t.Fatalf("second webhook event over a limit of 1: %v", got)
			}
			if got := offer(event.SourceWebhook, "p1", 1); got != store.Duplicate {
				t.Fatalf("webhook repeat of a pixel reference: %v", got)
			}
			if got := offer(event.SourcePixel, "w1", 1); got != store.Duplicate {
				t.Fatalf("pixel repeat of a webhook reference: %v", got)
			}
			used, _, err := f.svc.HourlyUse(ctx, f.stage)
			if err != nil || used != 1 {
				t.Fatalf("webhook hour use %d, %v; the Pixel's event must not count", used, err)
			}
		})
	}
}
