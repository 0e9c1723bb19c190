package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/funnel"
	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/pixel"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/site"
	"github.com/pruuv/pruuv/internal/store"
)

// siteOut is a site as the site commands print it.
type siteOut struct {
	store.Site
	Snippet string `json:"snippet"` // the async installer, recommended
	Tag     string `json:"tag"`     // the plain script tag
}

func withSnippet(s store.Site, serverURL string) siteOut {
	return siteOut{Site: s, Snippet: pixel.Snippet(serverURL, s.Key), Tag: pixel.Tag(serverURL, s.Key)}
}

// siteAdmin is the site rules the dashboard and the admin API share, audited
// as the CLI.
func siteAdmin(env Env, st *store.Store, key secret.Key) *site.Admin {
	au := cliAuth(env, st, key)
	return &site.Admin{Store: st, Audit: au.Audit}
}

// listFlag collects a flag that may be repeated.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func serverURLFlag(fs *flag.FlagSet) *string {
	return fs.String("server-url", site.DefaultServerURL, "public address of this Pruuv server, for the snippet")
}

// originsArg parses the --origin values of command cmd: at least one is needed.
func originsArg(cmd string, origins listFlag) ([]string, error) {
	list, err := site.ParseOrigins(origins)
	if err != nil {
		return nil, usagef("--origin: %v", err)
	}
	if len(list) == 0 {
		return nil, usagef("%s needs at least one --origin", cmd)
	}
	return list, nil
}

func checkServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return usagef("--server-url must be an http(s) address such as https://pruuv.shop.example")
	}
	return nil
}

func siteCreate(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("site create", &cfg)
	client := fs.String("client", "", "the client (advertiser) the site belongs to; it must exist")
	var origins listFlag
	fs.Var(&origins, "origin", "an origin allowed to post, e.g. https://shop.example (repeat, or separate with commas)")
	name := fs.String("name", "", "a name for the site (default: the first origin's host)")
	serverURL := serverURLFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	*client, *name = strings.TrimSpace(*client), strings.TrimSpace(*name)
	if *client == "" || len(origins) == 0 {
		return usagef("site create needs --client and at least one --origin")
	}
	if len(*name) > funnel.MaxName {
		return usagef("--name must be at most %d bytes", funnel.MaxName)
	}
	list, err := originsArg("site create", origins)
	if err != nil {
		return err
	}
	if err := checkServerURL(*serverURL); err != nil {
		return err
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	created, err := siteAdmin(env, st, key).Create(ctx, *client, *name, list, "cli")
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no client named %q: clients are created with their first funnel (pruuv funnel create --client %q …)", *client, *client)
	}
	if err != nil {
		return err
	}
	out := withSnippet(created, *serverURL)
	if *asJSON {
		return printJSON(env.Stdout, out)
	}
	printSite(env.Stdout, out)
	fmt.Fprintln(env.Stdout, "\nThe site key is public: it goes in every page. Only the origins listed may post with it.")
	if *serverURL == site.DefaultServerURL {
		fmt.Fprintln(env.Stdout, "Give --server-url to put this server's public address in the snippet.")
	}
	return nil
}

func printSite(w io.Writer, s siteOut) {
	tw := newTable(w)
	fmt.Fprintf(tw, "site\t%s (%s)\nclient\t%s (%s)\nsite key\t%s\norigins\t%s\nsnippet\t%s\n",
		s.Name, s.ID, s.Client.Name, s.Client.ID, s.Key, strings.Join(s.Origins, " "), s.Snippet)
	tw.Flush()
}

func siteList(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := command("site list", &cfg)
	serverURL := serverURLFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	if err := checkServerURL(*serverURL); err != nil {
		return err
	}
	st, _, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	sites, err := st.ListSites(ctx)
	if err != nil {
		return err
	}
	out := make([]siteOut, 0, len(sites))
	for _, s := range sites {
		out = append(out, withSnippet(s, *serverURL))
	}
	return printList(env, *asJSON, out, "CLIENT\tSITE\tSITE KEY\tORIGINS", "no sites (create one with pruuv site create)", func(w io.Writer, s siteOut) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Client.Name, s.Name, s.Key, strings.Join(s.Origins, " "))
	})
}

// siteOrigins is `site add-origin` and `site remove-origin`.
func siteOrigins(ctx context.Context, cfg config.Config, args []string, env Env, add bool) error {
	cmd := "site remove-origin"
	if add {
		cmd = "site add-origin"
	}
	fs := command(cmd, &cfg)
	var origins listFlag
	fs.Var(&origins, "origin", "an origin, e.g. https://shop.example (repeat, or separate with commas)")
	serverURL := serverURLFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	siteKey, err := oneArg(fs, args, env, "SITE_KEY")
	if err != nil {
		return err
	}
	list, err := originsArg(cmd, origins)
	if err != nil {
		return err
	}
	if err := checkServerURL(*serverURL); err != nil {
		return err
	}
	st, key, err := openStore(ctx, cfg, quiet(env))
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := st.GetSite(ctx, siteKey)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no site with key or id %q (see: pruuv site list)", siteKey)
	}
	if err != nil {
		return err
	}
	adm := siteAdmin(env, st, key)
	if add {
		s, err = adm.AddOrigins(ctx, s.ID, list, "cli")
	} else {
		s, err = adm.RemoveOrigins(ctx, s.ID, list, "cli")
	}
	var inv *auth.InvalidError
	if errors.As(err, &inv) {
		return errors.New(inv.Message)
	} else if err != nil {
		return err
	}
	out := withSnippet(s, *serverURL)
	if *asJSON {
		return printJSON(env.Stdout, out)
	}
	printSite(env.Stdout, out)
	if !add {
		fmt.Fprintf(env.Stdout, "\nRunning servers stop taking events from removed origins within %s.\n", ingest.CacheFor)
	}
	return nil
}
