package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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
	fs := command(name, &cfg)
	email := fs.String("email", "", "the user's email address, used to log in")
	password := fs.String("password", "", "the password (visible to other users of this machine in ps; prefer --password-stdin)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	if err := noArgs(fs, args, env); err != nil {
		return err
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
	au := cliAuth(env, st, key)
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
		e, _ := auth.NormalizeEmail(*email) // SetPassword has accepted it
		au.Audit(ctx, "cli", "user.set_password", e)
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
	fs := command("apikey create", &cfg)
	name := fs.String("name", "", "what the key is for, e.g. \"CRM sync\"")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return usagef("apikey create needs --name")
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	au := cliAuth(env, st, key)
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
	fs := command("apikey list", &cfg)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
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
	return printList(env, *asJSON, keys, "ID\tNAME\tKEY\tCREATED\tSTATE", "", func(w io.Writer, k store.APIKey) {
		state := "active"
		if k.RevokedAt != nil {
			state = "revoked " + k.RevokedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Hint, k.CreatedAt.Format(time.RFC3339), state)
	})
}

func apikeyRevoke(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("apikey revoke", &cfg)
	id, err := oneArg(fs, args, env, "KEY_ID (see: pruuv apikey list)")
	if err != nil {
		return err
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	au := cliAuth(env, st, key)
	if err := au.RevokeAPIKey(ctx, id, "cli"); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no API key with id %q (see: pruuv apikey list)", id)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "API key %s revoked.\n", id)
	return nil
}
