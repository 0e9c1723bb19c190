package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/report"
	"github.com/pruuv/pruuv/internal/store"
)

func reportCmd(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("report", &cfg)
	funnel := fs.String("funnel", "", "funnel id")
	fromArg := fs.String("from", "", "first day, YYYY-MM-DD, in the client's time zone")
	toArg := fs.String("to", "", "last day (included), YYYY-MM-DD")
	by := fs.String("by", "", "break down by one of: "+strings.Join(report.Fields, ", "))
	source := fs.String("source", "", "only events from this source: webhook, pixel or import")
	asJSON := fs.Bool("json", false, `print {"rows":[…]}`)
	asCSV := fs.Bool("csv", false, "print CSV")
	err := noArgs(fs, args, env)
	if err != nil {
		return err
	}
	if *funnel == "" || *fromArg == "" || *toArg == "" {
		return usagef("report needs --funnel, --from and --to")
	}
	if *asJSON && *asCSV {
		return usagef("report takes --json or --csv, not both")
	}
	if *by != "" && !report.ValidField(*by) {
		return usagef("--by %q is not a report field; use one of %s", *by, strings.Join(report.Fields, ", "))
	}
	switch event.Source(*source) {
	case "", event.SourceWebhook, event.SourcePixel, event.SourceImport:
	default:
		return usagef("--source must be webhook, pixel or import")
	}
	q := report.Query{FunnelID: *funnel, By: *by, Source: *source}
	if q.From, err = report.ParseDate(*fromArg); err != nil {
		return usagef("--from: %v", err)
	}
	if q.To, err = report.ParseDate(*toArg); err != nil {
		return usagef("--to: %v", err)
	}
	if q.To.Before(q.From) {
		return usagef("--to (%s) is before --from (%s)", q.To, q.From)
	}
	st, _, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := report.Run(ctx, st, q)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("no funnel with id %q", *funnel)
	case errors.Is(err, report.ErrInvalid):
		return &UsageError{err.Error()}
	case err != nil:
		return err
	}
	switch {
	case *asJSON:
		return printJSON(env.Stdout, reportJSON(r))
	case *asCSV:
		return report.WriteCSV(env.Stdout, r, report.TableBreakdown)
	}
	return printReport(env, r)
}

func reportJSON(r *report.Report) any {
	return map[string]any{"rows": r.JSONRows()}
}

func printReport(env Env, r *report.Report) error {
	fmt.Fprintf(env.Stdout, "%s / %s, %s to %s (%s)", r.ClientName, r.FunnelName, r.From, r.To, r.TimeZone)
	if r.Source != "" {
		fmt.Fprintf(env.Stdout, ", source %s", r.Source)
	}
	fmt.Fprintln(env.Stdout)
	fmt.Fprintln(env.Stdout)
	curs := r.Currencies()
	tw := newTable(env.Stdout)
	header := []string{}
	if r.By != "" {
		header = append(header, strings.ToUpper(r.By))
	}
	header = append(header, "POS", "STAGE", "CONTACTS", "CONV.")
	for _, c := range curs {
		header = append(header, c)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, row := range r.Rows {
		var rec []string
		if r.By != "" {
			rec = append(rec, row.Label())
		}
		conv := "-"
		if row.ConversionFromPrevious != nil {
			conv = strconv.FormatFloat(100**row.ConversionFromPrevious, 'f', 1, 64) + "%"
		}
		rec = append(rec, strconv.Itoa(row.Position), row.StageName, strconv.Itoa(row.Contacts), conv)
		for _, c := range curs {
			rec = append(rec, event.FormatMicros(row.Revenue[c]))
		}
		fmt.Fprintln(tw, strings.Join(rec, "\t")+"\t")
	}
	return tw.Flush()
}
