package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/store"
)

// userCreate is `pruuv user create` and, with reset, `pruuv user set-password`.
func userCreate(ctx context.Context, cfg config.Config, args []string, env Env, reset bool) error {
	name := "user create"
	if reset {
		name = "user set-password"
	}
	fs := newFlags(name)
	cfg.StorageFlags(fs)
	email := fs.String("email", "", "the user's email address, used to log in")
	password := fs.String("password", "", "the password (visible to other users of this machine in ps; prefer --password-stdin)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	pos, err := parse(fs, args, env)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s takes no arguments, got %q", name, pos[0])
	}
	if *email == "" {
		return usagef("%s needs --email", name)
	}
	if (*password == "") == !*fromStdin {
		return usagef("%s needs exactly one of --password-stdin and --password", name)
	}
	pw := *password
	if *fromStdin {
		if env.Stdin == nil {
			return errors.New("--password-stdin: no standard input")
		}
		line, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("--password-stdin: read a password from standard input: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	au := auth.New(auth.Options{Store: st, Key: key, Log: quiet(env)})
	var inv *auth.InvalidError
	if reset {
		err = au.SetPassword(ctx, *email, pw)
		switch {
		case errors.As(err, &inv):
			return usagef("%s", inv.Error())
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("no user with email %q", *email)
		case err != nil:
			return err
		}
		au.Audit(ctx, "cli", "user.set_password", strings.ToLower(strings.TrimSpace(*email)))
		fmt.Fprintln(env.Stdout, "Password changed; the user's sessions have ended.")
		return nil
	}
	u, err := au.CreateUser(ctx, *email, pw)
	switch {
	case errors.As(err, &inv):
		return usagef("%s", inv.Error())
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("a user with email %q already exists (to change the password: pruuv user set-password)", *email)
	case err != nil:
		return err
	}
	au.Audit(ctx, "cli", "user.create", u.Email)
	fmt.Fprintf(env.Stdout, "Created user %s. Log in to the dashboard at /login.\n", u.Email)
	return nil
}

func apikeyCreate(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := newFlags("apikey create")
	cfg.StorageFlags(fs)
	name := fs.String("name", "", "what the key is for, e.g. \"CRM sync\"")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, env)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("apikey create takes no arguments, got %q", pos[0])
	}
	if strings.TrimSpace(*name) == "" {
		return usagef("apikey create needs --name")
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	au := auth.New(auth.Options{Store: st, Key: key, Log: quiet(env)})
	plain, k, err := au.CreateAPIKey(ctx, *name, "cli")
	var inv *auth.InvalidError
	if errors.As(err, &inv) {
		return usagef("%s", inv.Error())
	} else if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, map[string]string{"api_key": plain, "id": k.ID, "name": k.Name, "hint": k.Hint})
	}
	fmt.Fprintf(env.Stdout, "API key %s (%s):\n%s\nIt is shown only now; Pruuv keeps only a keyed hash.\n", k.Name, k.ID, plain)
	return nil
}

func apikeyList(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := newFlags("apikey list")
	cfg.StorageFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args, env)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("apikey list takes no arguments, got %q", pos[0])
	}
	st, _, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	keys, err := st.ListAPIKeys(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if keys == nil {
			keys = []store.APIKey{}
		}
		return printJSON(env.Stdout, keys)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tKEY\tCREATED\tSTATE")
	for _, k := range keys {
		state := "active"
		if k.RevokedAt != nil {
			state = "revoked " + k.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Hint, k.CreatedAt.Format(time.RFC3339), state)
	}
	return tw.Flush()
}

func apikeyRevoke(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := newFlags("apikey revoke")
	cfg.StorageFlags(fs)
	pos, err := parse(fs, args, env)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("apikey revoke needs exactly one KEY_ID (see: pruuv apikey list)")
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	au := auth.New(auth.Options{Store: st, Key: key, Log: quiet(env)})
	if err := au.RevokeAPIKey(ctx, pos[0], "cli"); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no API key with id %q (see: pruuv apikey list)", pos[0])
	} else if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "API key %s revoked.\n", pos[0])
	return nil
}
