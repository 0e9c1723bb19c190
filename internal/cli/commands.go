package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/funnel"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// quiet is the logger of operator commands: only warnings and errors.
func quiet(env Env) *slog.Logger {
	return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func ensureDir(dir string) string {
	os.MkdirAll(dir, 0o700) // LoadOrCreate reports a directory that cannot be made
	return dir
}

func funnelCreate(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("funnel create", &cfg)
	client := fs.String("client", "", "client (advertiser) name; created if new")
	name := fs.String("name", "", "funnel name")
	stagesArg := fs.String("stages", "", `comma-separated stage names in order, e.g. "Lead,Qualified,Won"`)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	*client, *name = strings.TrimSpace(*client), strings.TrimSpace(*name)
	if *client == "" || *name == "" || strings.TrimSpace(*stagesArg) == "" {
		return usagef("funnel create needs --client, --name and --stages")
	}
	if len(*client) > funnel.MaxName || len(*name) > funnel.MaxName {
		return usagef("names must be at most %d bytes", funnel.MaxName)
	}
	var names []string
	seen := map[string]bool{}
	for _, n := range strings.Split(*stagesArg, ",") {
		n = strings.TrimSpace(n)
		if n == "" || len(n) > funnel.MaxName {
			return usagef("--stages: each stage needs a name of 1 to %d bytes", funnel.MaxName)
		}
		if seen[strings.ToLower(n)] {
			return usagef("--stages: %q is given twice", n)
		}
		seen[strings.ToLower(n)] = true
		names = append(names, n)
	}
	if len(names) > funnel.MaxStages {
		return usagef("--stages: at most %d stages", funnel.MaxStages)
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()

	var out funnel.Created
	var stages []store.NewStage
	for i, n := range names {
		tok, row := funnel.NewToken(key)
		id := token.NewID("stg")
		stages = append(stages, store.NewStage{ID: id, Name: n, Token: row})
		out.Stages = append(out.Stages, funnel.NewStageOut{ID: id, Name: n, Position: i + 1, WebhookToken: tok})
	}
	out.Client, out.Funnel, err = st.CreateFunnel(ctx, token.NewID("cli"), *client, token.NewID("fun"), *name, stages, time.Now())
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("client %q already has a funnel named %q", *client, *name)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, out)
	}
	fmt.Fprintf(env.Stdout, "Client %s (%s)\nFunnel %s (%s)\n\n", out.Client.Name, out.Client.ID, out.Funnel.Name, out.Funnel.ID)
	tw := newTable(env.Stdout)
	fmt.Fprintln(tw, "POS\tSTAGE\tSTAGE ID\tWEBHOOK TOKEN")
	for _, s := range out.Stages {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Position, s.Name, s.ID, s.WebhookToken)
	}
	tw.Flush()
	fmt.Fprintln(env.Stdout, "\nKeep the tokens secret: anyone holding one can post events to its stage.")
	return nil
}

func stageList(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("stage list", &cfg)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	st, _, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	stages, err := st.ListStages(ctx)
	if err != nil {
		return err
	}
	return printList(env, *asJSON, stages, "CLIENT\tFUNNEL\tPOS\tSTAGE\tSTAGE ID\tLIMIT/H\tPIXEL/H\tTOKEN", "", func(w io.Writer, s store.Stage) {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n", s.ClientName, s.FunnelName, s.Position, s.Name, s.ID, s.HourlyLimit, s.PixelHourlyLimit, s.TokenHint)
	})
}

func stageRotate(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("stage rotate-token", &cfg)
	overlap := fs.Duration("overlap", funnel.DefaultOverlap, "how long the replaced token keeps working (0 revokes it at once; at most 168h)")
	asJSON := fs.Bool("json", false, "print JSON")
	id, err := oneArg(fs, args, env, "STAGE_ID")
	if err != nil {
		return err
	}
	if *overlap < 0 || *overlap > funnel.MaxOverlap {
		return usagef("--overlap must be between 0 and 168h")
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	tok, row := funnel.NewToken(key)
	now := time.Now()
	if err := st.RotateToken(ctx, id, row, now, now.Add(*overlap)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no stage with id %q (see: pruuv stage list)", id)
		}
		return err
	}
	if *asJSON {
		return printJSON(env.Stdout, map[string]string{"id": id, "webhook_token": tok})
	}
	fmt.Fprintf(env.Stdout, "New webhook token for stage %s:\n%s\n", id, tok)
	if *overlap > 0 {
		fmt.Fprintf(env.Stdout, "The previous token keeps working until %s.\n", now.Add(*overlap).UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(env.Stdout, "The previous token is revoked.")
	}
	return nil
}

func stageSetLimit(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("stage set-limit", &cfg)
	perHour := fs.Int("per-hour", 0, "accepted Webhook API events per UTC hour (1 to 1000000)")
	pixelPerHour := fs.Int("pixel-per-hour", 0, "accepted Pixel events per UTC hour, counted apart (1 to 1000000)")
	asJSON := fs.Bool("json", false, "print JSON")
	id, err := oneArg(fs, args, env, "STAGE_ID")
	if err != nil {
		return err
	}
	set := given(fs)
	if !set["per-hour"] && !set["pixel-per-hour"] {
		return usagef("stage set-limit needs --per-hour, --pixel-per-hour or both")
	}
	if set["per-hour"] && (*perHour < 1 || *perHour > funnel.MaxHourlyLimit) {
		return usagef("--per-hour must be between 1 and %d", funnel.MaxHourlyLimit)
	}
	if set["pixel-per-hour"] && (*pixelPerHour < 1 || *pixelPerHour > funnel.MaxHourlyLimit) {
		return usagef("--pixel-per-hour must be between 1 and %d", funnel.MaxHourlyLimit)
	}
	st, _, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	out := map[string]any{"id": id}
	for _, l := range []struct {
		flag, key string
		n         int
		set       func(context.Context, string, int) error
		what      string
	}{
		{"per-hour", "hourly_limit", *perHour, st.SetHourlyLimit, "Webhook API"},
		{"pixel-per-hour", "pixel_hourly_limit", *pixelPerHour, st.SetPixelHourlyLimit, "Pixel"},
	} {
		if !set[l.flag] {
			continue
		}
		if err := l.set(ctx, id, l.n); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no stage with id %q (see: pruuv stage list)", id)
			}
			return err
		}
		out[l.key] = l.n
		if !*asJSON {
			fmt.Fprintf(env.Stdout, "Stage %s now accepts %d %s events per hour.\n", id, l.n, l.what)
		}
	}
	if *asJSON {
		return printJSON(env.Stdout, out)
	}
	return nil
}

func eventsList(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("events list", &cfg)
	stage := fs.String("stage", "", "only this stage's events")
	limit := fs.Int("limit", 100, "at most this many events, newest first (1 to 100000)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	if *limit < 1 || *limit > 100_000 {
		return usagef("--limit must be between 1 and 100000")
	}
	st, _, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	if *stage != "" {
		if _, err := st.GetStage(ctx, *stage); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no stage with id %q (see: pruuv stage list)", *stage)
		} else if err != nil {
			return err
		}
	}
	events, err := st.ListEvents(ctx, store.EventFilter{StageID: *stage, Limit: *limit})
	if err != nil {
		return err
	}
	if *asJSON {
		if events == nil {
			events = []event.Event{}
		}
		return printJSON(env.Stdout, events)
	}
	for i, e := range events {
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		tw := newTable(env.Stdout)
		fmt.Fprintf(tw, "event_id\t%s\nstage_id\t%s\nsource\t%s\nreceived_at\t%s\n", e.ID, e.StageID, e.Source, e.ReceivedAt.Format(time.RFC3339Nano))
		for _, fd := range event.Schema {
			switch v := fd.Value(&e.Fields).(type) {
			case string:
				fmt.Fprintf(tw, "%s\t%s\n", fd.Name, v)
			case int64:
				fmt.Fprintf(tw, "%s\t%s\n", fd.Name, event.FormatMicros(v))
			}
		}
		tw.Flush()
	}
	if len(events) == 0 {
		fmt.Fprintln(env.Stderr, "no events")
	}
	return nil
}
