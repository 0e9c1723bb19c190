// Package cli is the pruuv command: `serve` and the operator commands, all
// working against the same database as a running server.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
)

const usage = `pruuv — conversion tracking and ad attribution

Usage:
  pruuv serve [--addr :8080] [--data-dir DIR] [--database-url URL]
  pruuv client set --client NAME [--time-zone Europe/London] [--currency GBP] [--json]
  pruuv funnel create --client NAME --name NAME --stages "Lead,Qualified,Won" [--json]
  pruuv stage list [--json]
  pruuv stage rotate-token STAGE_ID [--overlap 24h] [--json]
  pruuv stage set-limit STAGE_ID [--per-hour N] [--pixel-per-hour N] [--json]
  pruuv events list [--stage STAGE_ID] [--limit N] [--json]
  pruuv site create --client NAME --origin URL [--origin URL…] [--name NAME] [--server-url URL] [--json]
  pruuv site list [--json]
  pruuv site add-origin SITE_KEY --origin URL [--json]
  pruuv site remove-origin SITE_KEY --origin URL [--json]
  pruuv connection add --client NAME --platform meta|google|tiktok|microsoft --set KEY=VALUE… [--set-file KEY=PATH…] [--json]
  pruuv connection list [--json]
  pruuv connection map --client NAME --platform P --stage STAGE_ID --event NAME [--json]   (--event '' removes it)
  pruuv connection unmap --client NAME --platform P --stage STAGE_ID [--json]
  pruuv conversions send [--client NAME] [--dry-run] [--json]
  pruuv conversions log [--platform P] [--status S] [--client NAME] [--event EVENT_ID] [--limit N] [--json]
  pruuv conversions attempts EVENT_ID [--platform P] [--json]
  pruuv conversions retry EVENT_ID [--platform P] [--json]
  pruuv user create --email EMAIL (--password-stdin | --password PASSWORD)
  pruuv user set-password --email EMAIL (--password-stdin | --password PASSWORD)
  pruuv apikey create --name NAME [--json]      # prints {"api_key":…} once
  pruuv apikey list [--json]
  pruuv apikey revoke KEY_ID
  pruuv report --funnel FUNNEL_ID --from YYYY-MM-DD --to YYYY-MM-DD [--by FIELD] [--source SOURCE] [--json|--csv]

Every command reads PRUUV_DATA_DIR, PRUUV_DATABASE_URL and PRUUV_SECRET_KEY,
and takes --data-dir and --database-url to override them.
Run "pruuv COMMAND -h" for a command's flags.
`

// UsageError means the command line was wrong; main prints usage and exits 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// Env is what a command gets from its process.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader // nil reads as empty
	Stdout io.Writer
	Stderr io.Writer
	// Platforms replaces the platform clients (tests); nil means the real
	// ones, platformClients.
	Platforms conversion.Registry
}

// Run executes the command line args (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
	err := dispatch(ctx, args, env)
	var uerr *UsageError
	if errors.As(err, &uerr) {
		fmt.Fprint(env.Stderr, usage)
	}
	return err
}

// commandFunc runs one command with the arguments after its name.
type commandFunc func(ctx context.Context, cfg config.Config, args []string, env Env) error

// with makes a commandFunc of a command that takes one more bool, fixed to b.
func with(f func(ctx context.Context, cfg config.Config, args []string, env Env, b bool) error, b bool) commandFunc {
	return func(ctx context.Context, cfg config.Config, args []string, env Env) error {
		return f(ctx, cfg, args, env, b)
	}
}

// commands is every command by name; a two-word name is a group and its
// subcommand.
var commands = map[string]commandFunc{
	"serve":                runServe,
	"client set":           clientSet,
	"funnel create":        funnelCreate,
	"stage list":           stageList,
	"stage rotate-token":   stageRotate,
	"stage set-limit":      stageSetLimit,
	"events list":          eventsList,
	"site create":          siteCreate,
	"site list":            siteList,
	"site add-origin":      with(siteOrigins, true),
	"site remove-origin":   with(siteOrigins, false),
	"connection add":       connectionAdd,
	"connection list":      connectionList,
	"connection map":       with(connectionMap, false),
	"connection unmap":     with(connectionMap, true),
	"conversions send":     conversionsSend,
	"conversions log":      conversionsLog,
	"conversions attempts": conversionsAttempts,
	"conversions retry":    conversionsRetry,
	"user create":          with(userCreate, false),
	"user set-password":    with(userCreate, true),
	"apikey create":        apikeyCreate,
	"apikey list":          apikeyList,
	"apikey revoke":        apikeyRevoke,
	"report":               reportCmd,
}

// isGroup reports whether name is the first word of a two-word command.
func isGroup(name string) bool {
	for c := range commands {
		if group, _, ok := strings.Cut(c, " "); ok && group == name {
			return true
		}
	}
	return false
}

func dispatch(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usagef("no command given")
	}
	cfg, err := config.FromEnv(env.Getenv)
	if err != nil {
		return err
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	if len(rest) > 0 && isGroup(name) {
		name, rest = name+" "+rest[0], rest[1:]
	}
	run, ok := commands[name]
	if !ok || strings.Contains(args[0], " ") { // "stage list" as one argument is no command
		return usagef("unknown command %q", name)
	}
	return run(ctx, cfg, rest, env)
}

// parse parses flags that may come before or after positional arguments, as
// in `pruuv stage rotate-token STAGE_ID --json`, and returns the positionals.
func parse(fs *flag.FlagSet, args []string, env Env) ([]string, error) {
	fs.SetOutput(env.Stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &UsageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

func newFlags(name string) *flag.FlagSet {
	return flag.NewFlagSet("pruuv "+name, flag.ContinueOnError)
}

// command is the flag set of an operator command, with the storage flags
// every one of them takes bound to cfg.
func command(name string, cfg *config.Config) *flag.FlagSet {
	fs := newFlags(name)
	cfg.StorageFlags(fs)
	return fs
}

// noArgs parses the flags of a command that takes no positional arguments.
func noArgs(fs *flag.FlagSet, args []string, env Env) error {
	pos, err := parse(fs, args, env)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s takes no arguments, got %q", strings.TrimPrefix(fs.Name(), "pruuv "), pos[0])
	}
	return nil
}

// given is the names of the flags set on the command line, after parsing.
func given(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// oneArg parses the flags and the single positional argument of a command,
// named by what (e.g. "STAGE_ID") when it is missing.
func oneArg(fs *flag.FlagSet, args []string, env Env, what string) (string, error) {
	pos, err := parse(fs, args, env)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", usagef("%s needs exactly one %s", strings.TrimPrefix(fs.Name(), "pruuv "), what)
	}
	return pos[0], nil
}

// openStore opens the database and the secret key a command needs, refusing a
// key that does not match the database.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (*store.Store, secret.Key, error) {
	if err := cfg.Validate(); err != nil {
		return nil, secret.Key{}, err
	}
	var key secret.Key
	var err error
	if cfg.SecretKey != "" {
		key, err = secret.Parse(cfg.SecretKey)
		if err != nil {
			err = fmt.Errorf("PRUUV_SECRET_KEY: %w", err)
		}
	} else {
		key, err = secret.LoadOrCreate(ensureDir(cfg.DataDir))
	}
	if err != nil {
		return nil, key, err
	}
	st, err := store.Open(ctx, store.Options{
		DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Relaxed: cfg.Durability == "relaxed", MaxConns: cfg.DBMaxConns, Logger: log,
	})
	if err != nil {
		return nil, key, err
	}
	if err := st.CheckSecret(ctx, key.Check()); err != nil {
		st.Close()
		return nil, key, fmt.Errorf("%w: use the key it was created with (PRUUV_SECRET_KEY or %s in the data directory)", err, secret.FileName)
	}
	return st, key, nil
}

// cliAuth is the auth service of a command, auditing as the CLI does.
func cliAuth(env Env, st *store.Store, key secret.Key) *auth.Service {
	return auth.New(auth.Options{Store: st, Key: key, Log: quiet(env)})
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable is the layout of every table the commands print.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// printList prints rows as a JSON array (empty, never null) or as a table:
// header, then a line per row. With no rows, none (when not "") goes to
// standard error.
func printList[T any](env Env, asJSON bool, rows []T, header, none string, line func(w io.Writer, row T)) error {
	if asJSON {
		if rows == nil {
			rows = []T{}
		}
		return printJSON(env.Stdout, rows)
	}
	tw := newTable(env.Stdout)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		line(tw, r)
	}
	err := tw.Flush()
	if len(rows) == 0 && none != "" {
		fmt.Fprintln(env.Stderr, none)
	}
	return err
}
