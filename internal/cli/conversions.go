package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/conversion/google"
	"github.com/pruuv/pruuv/internal/conversion/meta"
	"github.com/pruuv/pruuv/internal/conversion/microsoft"
	"github.com/pruuv/pruuv/internal/conversion/tiktok"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/store"
)

// platformClients builds the real platform clients, each with its own
// http.Client, pointed at cfg.Endpoints.
func platformClients(cfg config.Config) conversion.Registry {
	// Each client bounds its own requests; this only stops a connection that
	// never ends.
	// Redirects are not followed: a platform API never needs one, and a 307
	// would replay a body holding a token to wherever it points.
	hc := func() *http.Client {
		return &http.Client{Timeout: 2 * time.Minute,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return conversion.Registry{
		conversion.Meta:      meta.New(cfg.Endpoints.Meta, hc()),
		conversion.Google:    google.New(cfg.Endpoints, hc()),
		conversion.TikTok:    tiktok.New(cfg.Endpoints.TikTok, hc()),
		conversion.Microsoft: microsoft.New(cfg.Endpoints, hc()),
	}
}

// platforms returns the clients a command uses: the test's when given.
func platforms(cfg config.Config, env Env) conversion.Registry {
	if env.Platforms != nil {
		return env.Platforms
	}
	return platformClients(cfg)
}

func parsePlatform(s string) (conversion.Platform, error) {
	p, err := conversion.ParsePlatform(s)
	if err != nil {
		return "", usagef("--platform must be meta, google, tiktok or microsoft, got %q", s)
	}
	return p, nil
}

// platformFilter parses an optional --platform: "" when it is not given.
func platformFilter(arg string) (string, error) {
	if arg == "" {
		return "", nil
	}
	p, err := parsePlatform(arg)
	return string(p), err
}

// httpCode is an HTTP status as the tables print it: "-" when no answer came.
func httpCode(status *int) string {
	if status == nil {
		return "-"
	}
	return fmt.Sprint(*status)
}

// clientOf looks a platform's client up in the registry.
func clientOf(reg conversion.Registry, p conversion.Platform) (conversion.Client, error) {
	c, ok := reg[p]
	if !ok || c == nil {
		return nil, fmt.Errorf("this build of pruuv has no %s client", p)
	}
	return c, nil
}

// findClient resolves a client name, with a message saying how to make one.
func findClient(ctx context.Context, st *store.Store, name string) (store.Client, error) {
	c, err := st.ClientByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return c, fmt.Errorf("no client named %q (clients are created by: pruuv funnel create --client NAME …)", name)
	}
	return c, err
}

// admin is the connection and mapping rules the dashboard and the admin API
// share, audited as the CLI.
func admin(env Env, cfg config.Config, st *store.Store, key secret.Key) *conversion.Admin {
	au := cliAuth(env, st, key)
	return &conversion.Admin{Store: st, Key: key, Clients: platforms(cfg, env), Audit: au.Audit}
}

// connectionAdd creates a connection or, when the client already has one on
// the platform, changes the settings given and keeps the others (an upsert;
// an empty value removes a setting). The result must pass the client's
// Validate.
func connectionAdd(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("connection add", &cfg)
	clientName := fs.String("client", "", "client (advertiser) name")
	platformArg := fs.String("platform", "", "meta, google, tiktok or microsoft")
	var sets, files listFlag
	fs.Var(&sets, "set", "a setting as KEY=VALUE (repeatable; an empty VALUE removes the setting)")
	fs.Var(&files, "set-file", "a setting read from a file as KEY=PATH (repeatable), so secrets stay out of shell history")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	if strings.TrimSpace(*clientName) == "" || *platformArg == "" || len(sets)+len(files) == 0 {
		return usagef("connection add needs --client, --platform and at least one --set KEY=VALUE")
	}
	p, err := parsePlatform(*platformArg)
	if err != nil {
		return err
	}
	cl, err := clientOf(platforms(cfg, env), p)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, k := range cl.Keys() {
		known[k.Name] = true
	}
	changes := map[string]string{}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usagef("--set %q: want KEY=VALUE", kv)
		}
		changes[strings.TrimSpace(k)] = v
	}
	for _, kv := range files {
		k, path, ok := strings.Cut(kv, "=")
		if !ok {
			return usagef("--set-file %q: want KEY=PATH", kv)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--set-file %s: %w", k, err)
		}
		changes[strings.TrimSpace(k)] = strings.TrimRight(string(b), "\r\n")
	}
	for k := range changes {
		if !known[k] {
			return usagef("%s has no setting %q (settings: %s)", p, k, conversion.KeyNames(cl.Keys()))
		}
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	client, err := findClient(ctx, st, strings.TrimSpace(*clientName))
	if err != nil {
		return err
	}
	saved, err := admin(env, cfg, st, key).SaveConnection(ctx, client.ID, p, changes, "cli")
	var inv *auth.InvalidError
	switch {
	case errors.As(err, &inv):
		return fmt.Errorf("%s connection of %q: %s", p, client.Name, inv.Message)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w; run the command again", err)
	case err != nil:
		return err
	}
	maps, err := st.ListMappings(ctx)
	if err != nil {
		return err
	}
	v := conversion.ViewOf(saved, maps)
	if *asJSON {
		return printJSON(env.Stdout, v)
	}
	fmt.Fprintf(env.Stdout, "Connection %s: %s on %s\n", v.ID, v.Client, v.Platform)
	printSettings(env, v)
	return nil
}

func printSettings(env Env, v conversion.ConnectionView) {
	names := make([]string, 0, len(v.Settings))
	for k := range v.Settings {
		names = append(names, k)
	}
	sort.Strings(names)
	tw := newTable(env.Stdout)
	for _, k := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", k, v.Settings[k])
	}
	for _, m := range v.Mappings {
		fmt.Fprintf(tw, "  stage %s (%s / %s)\t→ %s\n", m.StageID, m.Funnel, m.Stage, m.Event)
	}
	tw.Flush()
}

func connectionList(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("connection list", &cfg)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	st, _, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	conns, err := st.ListConnections(ctx)
	if err != nil {
		return err
	}
	maps, err := st.ListMappings(ctx)
	if err != nil {
		return err
	}
	out := []conversion.ConnectionView{}
	for _, c := range conns {
		out = append(out, conversion.ViewOf(c, maps))
	}
	if *asJSON {
		return printJSON(env.Stdout, out)
	}
	for _, v := range out {
		fmt.Fprintf(env.Stdout, "%s  %s on %s\n", v.ID, v.Client, v.Platform)
		printSettings(env, v)
	}
	if len(out) == 0 {
		fmt.Fprintln(env.Stderr, "no connections")
	}
	return nil
}

// connectionMap sets or (unmap, or --event ”) removes what a stage sends to
// a platform. The stage must be one of the client's; a connection need not
// exist yet.
func connectionMap(ctx context.Context, cfg config.Config, args []string, env Env, unmap bool) error {
	name := "connection map"
	if unmap {
		name = "connection unmap"
	}
	fs := command(name, &cfg)
	clientName := fs.String("client", "", "client (advertiser) name")
	platformArg := fs.String("platform", "", "meta, google, tiktok or microsoft")
	stage := fs.String("stage", "", "stage id")
	ev := new(string)
	if !unmap {
		ev = fs.String("event", "", "what the stage sends: a Meta/TikTok event name, a Google conversion action, a Microsoft goal ('' removes the mapping)")
	}
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	eventSet := unmap || given(fs)["event"]
	if strings.TrimSpace(*clientName) == "" || *platformArg == "" || *stage == "" || !eventSet {
		if unmap {
			return usagef("connection unmap needs --client, --platform and --stage")
		}
		return usagef("connection map needs --client, --platform, --stage and --event")
	}
	*ev = strings.TrimSpace(*ev)
	if len(*ev) > conversion.MaxEventName {
		return usagef("--event must be at most %d bytes", conversion.MaxEventName)
	}
	p, err := parsePlatform(*platformArg)
	if err != nil {
		return err
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	client, err := findClient(ctx, st, strings.TrimSpace(*clientName))
	if err != nil {
		return err
	}
	if err := admin(env, cfg, st, key).Map(ctx, client.ID, *stage, p, *ev, "cli"); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("stage %q is not a stage of %q's funnels (see: pruuv stage list)", *stage, client.Name)
		}
		return err
	}
	var event any
	if *ev != "" {
		event = *ev
	}
	if *asJSON {
		return printJSON(env.Stdout, map[string]any{"client": client.Name, "platform": string(p), "stage_id": *stage, "event": event})
	}
	if *ev == "" {
		fmt.Fprintf(env.Stdout, "Stage %s sends nothing to %s.\n", *stage, p)
	} else {
		fmt.Fprintf(env.Stdout, "Stage %s sends %q to %s.\n", *stage, *ev, p)
	}
	return nil
}

// newQueue builds the queue a command runs, refusing a build without every
// platform's client.
func newQueue(cfg config.Config, env Env, st *store.Store, key secret.Key) (*conversion.Queue, error) {
	sched, err := conversion.ParseSchedule(cfg.ConversionsSchedule)
	if err != nil {
		return nil, err
	}
	q, err := conversion.New(conversion.Options{Store: st, Key: key, Clients: platforms(cfg, env), Schedule: sched, Log: quiet(env),
		Lease: cfg.ConversionsLease})
	if errors.Is(err, conversion.ErrNoClients) {
		return nil, fmt.Errorf("this build of pruuv cannot send conversions: %w", err)
	}
	return q, err
}

func conversionsSend(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("conversions send", &cfg)
	clientName := fs.String("client", "", "only this client's sends")
	dry := fs.Bool("dry-run", false, "show what would be sent, change nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	clientID := ""
	if *clientName != "" {
		c, err := findClient(ctx, st, *clientName)
		if err != nil {
			return err
		}
		clientID = c.ID
	}
	q, err := newQueue(cfg, env, st, key)
	if err != nil {
		return err
	}
	if *dry {
		pv, err := q.DryRun(ctx, clientID)
		if err != nil {
			return err
		}
		if pv == nil {
			pv = []conversion.Preview{}
		}
		if *asJSON {
			return printJSON(env.Stdout, map[string]any{"dry_run": true, "sends": pv})
		}
		tw := newTable(env.Stdout)
		fmt.Fprintln(tw, "WOULD\tPLATFORM\tBATCH\tEVENT ID\tREASON\tSUMMARY")
		for _, p := range pv {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", p.Would, p.Platform, p.Batch, p.EventID, p.Reason, p.Summary)
		}
		tw.Flush()
		fmt.Fprintln(env.Stderr, "dry run: nothing was planned, sent or changed")
		return nil
	}
	rep, err := q.Run(ctx, conversion.RunOptions{Force: true, ClientID: clientID})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, rep)
	}
	fmt.Fprintf(env.Stdout, "planned %d events; %d requests: %d sent, %d retrying, %d failed, %d skipped, %d deferred\n",
		rep.Planned, rep.Requests, rep.Sent, rep.Retrying, rep.Failed, rep.Skipped, rep.Deferred)
	return nil
}

var statuses = []conversion.Status{conversion.StatusPending, conversion.StatusRetrying, conversion.StatusSent, conversion.StatusFailed, conversion.StatusSkipped}

func conversionsLog(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("conversions log", &cfg)
	platformArg := fs.String("platform", "", "only this platform")
	status := fs.String("status", "", "only this status: pending, retrying, sent, failed or skipped")
	clientName := fs.String("client", "", "only this client")
	eventID := fs.String("event", "", "only this event")
	limit := fs.Int("limit", 100, "at most this many sends, most recently changed first (1 to 100000)")
	asJSON := fs.Bool("json", false, "print JSON")
	err := noArgs(fs, args, env)
	if err != nil {
		return err
	}
	f := store.SendFilter{Status: *status, EventID: *eventID, Limit: *limit}
	if *limit < 1 || *limit > 100_000 {
		return usagef("--limit must be between 1 and 100000")
	}
	if *status != "" && !slices.Contains(statuses, conversion.Status(*status)) {
		return usagef("--status must be pending, retrying, sent, failed or skipped")
	}
	if f.Platform, err = platformFilter(*platformArg); err != nil {
		return err
	}
	st, _, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	if *clientName != "" {
		c, err := findClient(ctx, st, *clientName)
		if err != nil {
			return err
		}
		f.ClientID = c.ID
	}
	rows, err := st.ListSends(ctx, f)
	if err != nil {
		return err
	}
	return printList(env, *asJSON, rows, "UPDATED\tCLIENT\tPLATFORM\tEVENT ID\tSTATUS\tREASON\tATTEMPTS\tHTTP\tMESSAGE", "no conversion sends", func(w io.Writer, r store.SendRow) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.UpdatedAt.Format(time.RFC3339), r.Client, r.Platform, r.EventID,
			r.Status, r.Reason, r.Attempts, httpCode(r.HTTPStatus), r.Message)
	})
}

func conversionsAttempts(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("conversions attempts", &cfg)
	platformArg := fs.String("platform", "", "only this platform")
	asJSON := fs.Bool("json", false, "print JSON")
	eventID, err := oneArg(fs, args, env, "EVENT_ID")
	if err != nil {
		return err
	}
	platform, err := platformFilter(*platformArg)
	if err != nil {
		return err
	}
	st, _, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	atts, err := st.ListAttempts(ctx, eventID, platform)
	if err != nil {
		return err
	}
	return printList(env, *asJSON, atts, "AT\tPLATFORM\tOUTCOME\tHTTP\tMESSAGE\tSUMMARY", "no attempts", func(w io.Writer, a store.AttemptRow) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.At.Format(time.RFC3339), a.Platform, a.Outcome, httpCode(a.HTTPStatus), a.Message, a.Summary)
	})
}

func conversionsRetry(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("conversions retry", &cfg)
	platformArg := fs.String("platform", "", "only the send to this platform")
	asJSON := fs.Bool("json", false, "print JSON")
	eventID, err := oneArg(fs, args, env, "EVENT_ID")
	if err != nil {
		return err
	}
	platform, err := platformFilter(*platformArg)
	if err != nil {
		return err
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	ps, err := admin(env, cfg, st, key).Retry(ctx, eventID, conversion.Platform(platform), "cli")
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("event %q has no conversion send%s (see: pruuv conversions log)", eventID, onPlatform(platform))
	case errors.Is(err, store.ErrNotRetryable):
		return fmt.Errorf("event %q has no failed or skipped send%s to retry", eventID, onPlatform(platform))
	case err != nil:
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, map[string]any{"event_id": eventID, "platforms": ps, "status": string(conversion.StatusPending)})
	}
	fmt.Fprintf(env.Stdout, "Re-queued event %s on %s; it goes with the next run (or: pruuv conversions send).\n", eventID, strings.Join(ps, ", "))
	return nil
}

func onPlatform(p string) string {
	if p == "" {
		return ""
	}
	return " on " + p
}
