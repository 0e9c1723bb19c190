package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

func TestSites(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		now := time.Now()
		newFunnel(t, st, "Acme", "Main", "Lead")
		newFunnel(t, st, "Beta", "Main", "Lead")

		if _, err := st.CreateSite(ctx, store.NewSite{ID: token.NewID("site"), Key: token.NewSiteKey(), Name: "x", ClientName: "Nobody",
			Origins: []string{"https://x.example"}}, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("site for an unknown client: %v, want ErrNotFound", err)
		}
		key := token.NewSiteKey()
		a, err := st.CreateSite(ctx, store.NewSite{ID: token.NewID("site"), Key: key, Name: "shop", ClientName: "Acme",
			Origins: []string{"https://shop.example", "https://www.shop.example"}}, now)
		if err != nil {
			t.Fatal(err)
		}
		if a.Key != key || a.Client.Name != "Acme" || a.Name != "shop" || !reflect.DeepEqual(a.Origins, []string{"https://shop.example", "https://www.shop.example"}) {
			t.Fatalf("created %+v", a)
		}
		if _, err := st.CreateSite(ctx, store.NewSite{ID: token.NewID("site"), Key: key, ClientName: "Beta"}, now); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a second site with the same key: %v, want ErrConflict", err)
		}
		b, err := st.CreateSite(ctx, store.NewSite{ID: token.NewID("site"), Key: token.NewSiteKey(), Name: "beta", ClientName: "Beta",
			Origins: []string{"http://localhost:3000"}}, now)
		if err != nil {
			t.Fatal(err)
		}

		auth, err := st.LookupSite(ctx, key)
		if err != nil || auth.SiteID != a.ID || auth.ClientID != a.Client.ID || !auth.Allows("https://www.shop.example") || auth.Allows("http://localhost:3000") {
			t.Fatalf("lookup %+v, %v", auth, err)
		}
		if _, err := st.LookupSite(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a site id is not a key: %v", err)
		}

		// Adding is idempotent and works by key or id; removing takes effect.
		got, err := st.AddSiteOrigins(ctx, a.ID, []string{"https://shop.example", "https://m.shop.example"}, now)
		if err != nil || !reflect.DeepEqual(got.Origins, []string{"https://m.shop.example", "https://shop.example", "https://www.shop.example"}) {
			t.Fatalf("after add: %v, %v", got.Origins, err)
		}
		got, err = st.RemoveSiteOrigins(ctx, key, []string{"https://shop.example", "https://never.example"})
		if err != nil || !reflect.DeepEqual(got.Origins, []string{"https://m.shop.example", "https://www.shop.example"}) {
			t.Fatalf("after remove: %v, %v", got.Origins, err)
		}
		if _, err := st.AddSiteOrigins(ctx, "pk_missing", []string{"https://a.example"}, now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("add to a missing site: %v", err)
		}

		for origin, want := range map[string]bool{"https://m.shop.example": true, "http://localhost:3000": true, "https://shop.example": false, "https://evil.example": false} {
			if ok, err := st.OriginListed(ctx, origin); err != nil || ok != want {
				t.Errorf("OriginListed(%s) = %v, %v; want %v", origin, ok, err, want)
			}
		}
		sites, err := st.ListSites(ctx)
		if err != nil || len(sites) != 2 || sites[0].ID != a.ID || sites[1].ID != b.ID || len(sites[1].Origins) != 1 {
			t.Fatalf("list %+v, %v", sites, err)
		}
	})
}

func TestStagePixelLimit(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() *store.Store) {
		ctx := context.Background()
		st := open()
		id := newFunnel(t, st, "Acme", "Main", "Lead")[0]
		auth, err := st.LookupStage(ctx, id, time.Now())
		if err != nil || auth.PixelHourlyLimit != store.DefaultHourlyLimit || auth.ClientID == "" {
			t.Fatalf("lookup %+v, %v", auth, err)
		}
		if err := st.SetPixelHourlyLimit(ctx, id, 7); err != nil {
			t.Fatal(err)
		}
		auth, err = st.LookupStage(ctx, id, time.Now())
		if err != nil || auth.PixelHourlyLimit != 7 || auth.HourlyLimit != store.DefaultHourlyLimit {
			t.Fatalf("after setting the Pixel's limit: %+v, %v", auth, err)
		}
		if err := st.SetPixelHourlyLimit(ctx, "stg_missing", 7); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing stage: %v", err)
		}
	})
}
