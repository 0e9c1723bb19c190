package cli_test

import (
	"encoding/json"
	"errors"
	"github.com/pruuv/pruuv/internal/pixel"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pruuv/pruuv/internal/cli"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

var siteKeyPattern = regexp.MustCompile(`^pk_[0-9A-Za-z]{22}$`)

type siteJSON struct {
	SiteID  string `json:"site_id"`
	SiteKey string `json:"site_key"`
	Name    string `json:"name"`
	Client  struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"client"`
	Origins []string `json:"origins"`
	Tag     string   `json:"tag"`
	Snippet string   `json:"snippet"`
}

func TestSiteCommands(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead")
			out := pruuvtest.Run(t, cfg, "site", "create", "--client", "Acme", "--origin", "https://Shop.Example:443/",
				"--origin", "https://www.shop.example, http://localhost:3000", "--server-url", "https://t.shop.example", "--json")
			var raw map[string]any
			if err := json.Unmarshal([]byte(out), &raw); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			var keys []string
			for k := range raw {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if want := []string{"client", "created_at", "name", "origins", "site_id", "site_key", "snippet", "tag"}; !reflect.DeepEqual(keys, want) {
				t.Fatalf("keys %v, want %v", keys, want)
			}
			var s siteJSON
			json.Unmarshal([]byte(out), &s)
			if !siteKeyPattern.MatchString(s.SiteKey) || !strings.HasPrefix(s.SiteID, "site_") || s.Client.Name != "Acme" ||
				!strings.HasPrefix(s.Client.ID, "cli_") || s.Name != "shop.example" {
				t.Fatalf("created %+v", s)
			}
			if want := []string{"http://localhost:3000", "https://shop.example", "https://www.shop.example"}; !reflect.DeepEqual(s.Origins, want) {
				t.Fatalf("origins %v, want %v", s.Origins, want)
			}
			if want := pixel.Snippet("https://t.shop.example", s.SiteKey); s.Snippet != want {
				t.Fatalf("snippet %s", s.Snippet)
			}
			if want := `<script src="https://t.shop.example/pixel.js" data-site-key="` + s.SiteKey + `"></script>`; s.Tag != want {
				t.Fatalf("tag %s", s.Tag)
			}

			var added siteJSON
			json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "site", "add-origin", s.SiteKey, "--origin", "https://m.shop.example,https://shop.example", "--json")), &added)
			if added.SiteKey != s.SiteKey || len(added.Origins) != 4 || !contains(added.Origins, "https://m.shop.example") {
				t.Fatalf("after add-origin %+v", added)
			}
			var removed siteJSON
			json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "site", "remove-origin", s.SiteID, "--origin", "http://localhost:3000", "--json")), &removed)
			if len(removed.Origins) != 3 || contains(removed.Origins, "http://localhost:3000") {
				t.Fatalf("after remove-origin %+v", removed)
			}

			pruuvtest.Run(t, cfg, "site", "create", "--client", "Acme", "--origin", "https://blog.example", "--name", "Blog")
			var list []siteJSON
			if err := json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "site", "list", "--json")), &list); err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].SiteKey != s.SiteKey || list[1].Name != "Blog" || !reflect.DeepEqual(list[1].Origins, []string{"https://blog.example"}) {
				t.Fatalf("list %+v", list)
			}
			if text := pruuvtest.Run(t, cfg, "site", "list"); !strings.Contains(text, s.SiteKey) || !strings.Contains(text, "https://m.shop.example") {
				t.Fatalf("text list:\n%s", text)
			}

			// A client is made with its first funnel; a site for a name that
			// matches none is refused, not made.
			_, _, err := pruuvtest.RunErr(cfg, "site", "create", "--client", "acme", "--origin", "https://x.example")
			var uerr *cli.UsageError
			if err == nil || errors.As(err, &uerr) || !strings.Contains(err.Error(), `no client named "acme"`) {
				t.Fatalf("unknown client: %v", err)
			}
			_, _, err = pruuvtest.RunErr(cfg, "site", "add-origin", "pk_nope", "--origin", "https://x.example")
			if err == nil || errors.As(err, &uerr) || !strings.Contains(err.Error(), "pk_nope") {
				t.Fatalf("unknown site: %v", err)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestSiteBadArguments(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead")
	for _, args := range [][]string{
		{"site"},
		{"site", "create", "--client", "Acme"},
		{"site", "create", "--origin", "https://shop.example"},
		{"site", "create", "--client", "Acme", "--origin", "shop.example"},
		{"site", "create", "--client", "Acme", "--origin", "http://shop.example"},
		{"site", "create", "--client", "Acme", "--origin", "https://shop.example/path"},
		{"site", "create", "--client", "Acme", "--origin", ","},
		{"site", "create", "--client", "Acme", "--origin", "https://shop.example", "--server-url", "pruuv.example"},
		{"site", "create", "--client", "Acme", "--origin", "https://shop.example", "extra"},
		{"site", "list", "extra"},
		{"site", "add-origin", "--origin", "https://shop.example"},
		{"site", "add-origin", "pk_x"},
		{"site", "remove-origin", "pk_x", "--origin", "ftp://x"},
		{"stage", "set-limit", "stg_x", "--pixel-per-hour", "0"},
	} {
		_, _, err := pruuvtest.RunErr(cfg, args...)
		var uerr *cli.UsageError
		if !errors.As(err, &uerr) {
			t.Errorf("pruuv %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}

func TestStagePixelLimitCommand(t *testing.T) {
	cfg := pruuvtest.SQLite(t)
	st := pruuvtest.Funnel(t, cfg, "Acme", "Main", "Lead")[0]
	var got map[string]any
	json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "stage", "set-limit", st.ID, "--pixel-per-hour", "30", "--json")), &got)
	if !reflect.DeepEqual(got, map[string]any{"id": st.ID, "pixel_hourly_limit": float64(30)}) {
		t.Fatalf("set-limit printed %v", got)
	}
	var list []struct {
		HourlyLimit      int `json:"hourly_limit"`
		PixelHourlyLimit int `json:"pixel_hourly_limit"`
	}
	json.Unmarshal([]byte(pruuvtest.Run(t, cfg, "stage", "list", "--json")), &list)
	if len(list) != 1 || list[0].HourlyLimit != 1000 || list[0].PixelHourlyLimit != 30 {
		t.Fatalf("stage list %+v", list)
	}
}
