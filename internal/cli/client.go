package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/funnel"
	"github.com/pruuv/pruuv/internal/store"
)

// clientSet is `pruuv client set`: a client's time zone and default
// currency, by the rules the dashboard and the admin API apply.
func clientSet(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("client set", &cfg)
	name := fs.String("client", "", "the client's name")
	tz := fs.String("time-zone", "", "IANA time zone the client's reports count days in, e.g. Europe/London")
	currency := fs.String("currency", "", "ISO 4217 code for revenue sent without a currency, e.g. GBP")
	asJSON := fs.Bool("json", false, "print the client as JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return usagef("client set needs --client")
	}
	var tzp, curp *string
	set := given(fs)
	if set["time-zone"] {
		tzp = tz
	}
	if set["currency"] {
		curp = currency
	}
	if tzp == nil && curp == nil {
		return usagef("client set needs --time-zone, --currency or both")
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.ClientByName(ctx, strings.TrimSpace(*name))
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no client named %q", *name)
	} else if err != nil {
		return err
	}
	au := cliAuth(env, st, key)
	out, err := funnel.New(st, key, au).SetClientSettings(ctx, c.ID, tzp, curp, "cli")
	var inv *auth.InvalidError
	if errors.As(err, &inv) {
		return usagef("--%s %s", strings.ReplaceAll(inv.Field, "_", "-"), inv.Message)
	} else if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, out)
	}
	fmt.Fprintf(env.Stdout, "Client %s (%s): time zone %s, currency %s.\n", out.Name, out.ID, out.TimeZone, out.Currency)
	return nil
}
