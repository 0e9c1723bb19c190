package cli_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pruuv/pruuv/internal/cli"
	"github.com/pruuv/pruuv/internal/pruuvtest"
)

func TestClientSet(t *testing.T) {
	for _, b := range pruuvtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			pruuvtest.Funnel(t, cfg, "Acme", "Leads", "Lead")
			var c struct {
				ID       string `json:"id"`
				Name     string `json:"name"`
				TimeZone string `json:"time_zone"`
				Currency string `json:"currency"`
			}
			out := pruuvtest.Run(t, cfg, "client", "set", "--client", "Acme", "--time-zone", "Europe/Berlin", "--json")
			if err := json.Unmarshal([]byte(out), &c); err != nil || c.Name != "Acme" || c.TimeZone != "Europe/Berlin" || c.Currency != "GBP" {
				t.Fatalf("client set --time-zone printed %q (%v)", out, err)
			}
			out = pruuvtest.Run(t, cfg, "client", "set", "--client", "Acme", "--currency", "eur")
			if !strings.Contains(out, "time zone Europe/Berlin, currency EUR") {
				t.Fatalf("client set --currency printed %q", out)
			}
			for _, args := range [][]string{
				{"--client", "Acme"},
				{"--time-zone", "UTC"},
				{"--client", "Acme", "--time-zone", "Mars/Olympus"},
				{"--client", "Acme", "--time-zone", "Local"},
				{"--client", "Acme", "--currency", "XYZ"},
				{"--client", "Acme", "--time-zone", ""},
			} {
				_, _, err := pruuvtest.RunErr(cfg, append([]string{"client", "set"}, args...)...)
				var uerr *cli.UsageError
				if !errors.As(err, &uerr) {
					t.Errorf("client set %q: %v, want a usage error", args, err)
				}
			}
			if _, _, err := pruuvtest.RunErr(cfg, "client", "set", "--client", "Nope", "--currency", "USD"); err == nil || !strings.Contains(err.Error(), `no client named "Nope"`) {
				t.Errorf("unknown client: %v", err)
			}
			out = pruuvtest.Run(t, cfg, "client", "set", "--client", "Acme", "--currency", "GBP", "--json")
			if json.Unmarshal([]byte(out), &c); c.TimeZone != "Europe/Berlin" || c.Currency != "GBP" {
				t.Fatalf("a refused change altered the client: %q", out)
			}
		})
	}
}
