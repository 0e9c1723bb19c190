package site

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// MaxName is the longest site name.
const MaxName = 200

// Admin creates sites and changes their origins: the rules the CLI, the
// dashboard and the admin API share. Refusals are *auth.InvalidError.
type Admin struct {
	Store *store.Store
	// Audit records an admin action (auth.Service.Audit); nil records nothing.
	Audit func(ctx context.Context, actor, action, target string)
}

func (a *Admin) audit(ctx context.Context, actor, action, target string) {
	if a.Audit != nil {
		a.Audit(ctx, actor, action, target)
	}
}

func invalid(field, format string, args ...any) error {
	return &auth.InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// origins parses origins given as lines or comma-separated lists.
func origins(raw []string) ([]string, error) {
	var fields []string
	for _, r := range raw {
		fields = append(fields, strings.FieldsFunc(r, func(c rune) bool { return c == '\n' || c == '\r' })...)
	}
	list, err := ParseOrigins(fields)
	if err != nil {
		return nil, invalid("origins", "%s", err)
	}
	if len(list) == 0 {
		return nil, invalid("origins", "needs at least one origin, e.g. https://shop.example")
	}
	return list, nil
}

// Create makes a site for the client named clientName, with a new site key,
// allowed to post from origins; the name defaults to the first origin's
// host. An unknown client is store.ErrNotFound. Audited as site.create.
func (a *Admin) Create(ctx context.Context, clientName, name string, rawOrigins []string, actor string) (store.Site, error) {
	name = strings.TrimSpace(name)
	if len(name) > MaxName {
		return store.Site{}, invalid("name", "must be at most %d bytes", MaxName)
	}
	list, err := origins(rawOrigins)
	if err != nil {
		return store.Site{}, err
	}
	if name == "" {
		u, _ := url.Parse(list[0]) // ParseOrigins made it a valid URL
		name = u.Hostname()
	}
	s, err := a.Store.CreateSite(ctx, store.NewSite{ID: token.NewID("site"), Key: token.NewSiteKey(), Name: name,
		ClientName: clientName, Origins: list}, time.Now())
	if err != nil {
		return s, err
	}
	a.audit(ctx, actor, "site.create", s.ID)
	return s, nil
}

// AddOrigins allows more origins for the site with this key or id, up to
// MaxOrigins in all. Audited as site.add_origins.
func (a *Admin) AddOrigins(ctx context.Context, keyOrID string, rawOrigins []string, actor string) (store.Site, error) {
	list, err := origins(rawOrigins)
	if err != nil {
		return store.Site{}, err
	}
	s, err := a.Store.GetSite(ctx, keyOrID)
	if err != nil {
		return s, err
	}
	union := slices.Clone(s.Origins)
	for _, o := range list {
		if !slices.Contains(union, o) {
			union = append(union, o)
		}
	}
	if len(union) > MaxOrigins {
		return s, invalid("origins", "a site may allow at most %d origins; it has %d", MaxOrigins, len(s.Origins))
	}
	if s, err = a.Store.AddSiteOrigins(ctx, s.ID, list, time.Now()); err != nil {
		return s, err
	}
	a.audit(ctx, actor, "site.add_origins", s.ID)
	return s, nil
}

// RemoveOrigins stops the site with this key or id taking events from
// origins. Audited as site.remove_origins.
func (a *Admin) RemoveOrigins(ctx context.Context, keyOrID string, rawOrigins []string, actor string) (store.Site, error) {
	list, err := origins(rawOrigins)
	if err != nil {
		return store.Site{}, err
	}
	s, err := a.Store.RemoveSiteOrigins(ctx, keyOrID, list)
	if err != nil {
		return s, err
	}
	a.audit(ctx, actor, "site.remove_origins", s.ID)
	return s, nil
}

// ClientName resolves a client id to its name, for Create; an unknown id is
// an *auth.InvalidError on field.
func ClientName(ctx context.Context, st *store.Store, field, clientID string) (string, error) {
	c, err := st.GetClient(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return "", invalid(field, "is not a client")
	}
	return c.Name, err
}
