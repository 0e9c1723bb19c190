package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/pixel"
	"github.com/pruuv/pruuv/internal/site"
	"github.com/pruuv/pruuv/internal/store"
)

// Connections, stage mappings, sites and the conversion log: the operations
// of the dashboard's Ad platforms, Pixel and Conversion log pages.

type (
	connectionsOut struct {
		Connections []conversion.ConnectionView `json:"connections"`
	}
	connectionIn struct {
		// Settings to change: a key given replaces its value, an empty value
		// removes it, keys not given keep theirs (like pruuv connection add).
		Settings map[string]string `json:"settings"`
	}
	mappingIn struct {
		// Event is what the stage sends: a Meta or TikTok event name, a
		// Google conversion action id, a Microsoft goal; "" removes it.
		Event string `json:"event"`
	}
	mappingOut struct {
		StageID  string  `json:"stage_id"`
		Platform string  `json:"platform"`
		Event    *string `json:"event"` // null: the stage sends nothing to the platform
	}
	siteOut struct {
		ID        string       `json:"site_id"`
		Key       string       `json:"site_key"`
		Name      string       `json:"name"`
		Client    store.Client `json:"client"`
		Origins   []string     `json:"origins"`
		CreatedAt time.Time    `json:"created_at"`
		Snippet   string       `json:"snippet"` // the async installer, recommended
		Tag       string       `json:"tag"`     // the plain script tag
	}
	sitesOut struct {
		Sites []siteOut `json:"sites"`
	}
	siteIn struct {
		ClientID string   `json:"client_id"`
		Name     string   `json:"name,omitempty"` // default: the first origin's host
		Origins  []string `json:"origins"`
	}
	originsIn struct {
		Add    []string `json:"add,omitempty"`
		Remove []string `json:"remove,omitempty"`
	}
	sendsOut struct {
		Sends     []store.SendRow `json:"sends"`
		NextAfter *string         `json:"next_after"`
	}
	attemptsOut struct {
		Attempts []store.AttemptRow `json:"attempts"`
	}
	retryIn struct {
		Platform string `json:"platform,omitempty"` // only the send to this platform; default every failed or skipped one
	}
	retryOut struct {
		EventID   string   `json:"event_id"`
		Platforms []string `json:"platforms"`
		Status    string   `json:"status"`
	}
)

// MaxSendsLimit is the most sends one list call returns.
const MaxSendsLimit = 1000

func (a *API) conversionRoutes() []Route {
	return []Route{
		{Method: "GET", Path: Prefix + "/clients/{id}/connections", ID: "listConnections",
			Summary: "List a client's ad platform connections (secret settings as hints) with their stage mappings", Result: connectionsOut{},
			h: a.listConnections},
		{Method: "GET", Path: Prefix + "/clients/{id}/connections/{platform}", ID: "getConnection",
			Summary: "Get a client's connection on a platform (secret settings as hints)", Result: conversion.ConnectionView{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				p, err := pathPlatform(r)
				if err != nil {
					return nil, err
				}
				c, err := a.Store.GetConnection(r.Context(), r.PathValue("id"), string(p))
				if err != nil {
					return nil, err
				}
				return a.view(r, c)
			}},
		{Method: "PUT", Path: Prefix + "/clients/{id}/connections/{platform}", ID: "saveConnection",
			Summary: "Create or update a client's connection on a platform; the platform's checks apply (audited)", Body: connectionIn{},
			Result: conversion.ConnectionView{}, h: a.saveConnection},
		{Method: "PUT", Path: Prefix + "/stages/{id}/mappings/{platform}", ID: "mapStage",
			Summary: "Set what a stage sends to a platform (audited)", Body: mappingIn{}, Result: mappingOut{},
			h: func(r *http.Request, k store.APIKey) (any, error) {
				var in mappingIn
				if err := decode(r, &in); err != nil {
					return nil, err
				}
				return a.mapStage(r, k, in.Event)
			}},
		{Method: "DELETE", Path: Prefix + "/stages/{id}/mappings/{platform}", ID: "unmapStage",
			Summary: "Make a stage send nothing to a platform (audited)", Result: mappingOut{},
			h: func(r *http.Request, k store.APIKey) (any, error) { return a.mapStage(r, k, "") }},

		{Method: "GET", Path: Prefix + "/sites", ID: "listSites", Summary: "List Pixel sites with their origins and install snippets", Result: sitesOut{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				ss, err := a.Store.ListSites(r.Context())
				out := sitesOut{Sites: []siteOut{}}
				for _, s := range ss {
					out.Sites = append(out.Sites, a.site(r, s))
				}
				return out, err
			}},
		{Method: "POST", Path: Prefix + "/sites", ID: "createSite", Summary: "Create a Pixel site for a client (audited)", Body: siteIn{},
			Status: http.StatusCreated, Result: siteOut{},
			h: func(r *http.Request, k store.APIKey) (any, error) {
				var in siteIn
				if err := decode(r, &in); err != nil {
					return nil, err
				}
				name, err := site.ClientName(r.Context(), a.Store, "client_id", in.ClientID)
				if err != nil {
					return nil, err
				}
				s, err := a.sites.Create(r.Context(), name, in.Name, in.Origins, actor(k))
				return a.site(r, s), err
			}},
		{Method: "POST", Path: Prefix + "/sites/{id}/origins", ID: "changeSiteOrigins",
			Summary: "Allow (add) and stop (remove) origins of a site, by id or key; additions first (audited)", Body: originsIn{}, Result: siteOut{},
			h: a.changeOrigins},

		{Method: "GET", Path: Prefix + "/conversions", ID: "listConversionSends",
			Summary: "List conversion sends (one event to one platform), most recently changed first; page with next_after",
			Query: []Param{
				{"platform", "string", "meta, google, tiktok or microsoft"},
				{"status", "string", "pending, retrying, sent, failed or skipped"},
				{"client_id", "string", "only this client's sends"},
				{"event_id", "string", "only this event's sends"},
				{"after", "string", "only sends after this place (the previous page's next_after)"},
				{"limit", "integer", "at most this many (1 to 1000, default 100)"},
			}, Result: sendsOut{}, h: a.listSends},
		{Method: "GET", Path: Prefix + "/conversions/{event_id}/attempts", ID: "listConversionAttempts",
			Summary: "List an event's send attempts, oldest first, with their redacted summaries",
			Query:   []Param{{"platform", "string", "only attempts on this platform"}}, Result: attemptsOut{},
			h: func(r *http.Request, _ store.APIKey) (any, error) {
				p, err := queryPlatform(r, "platform")
				if err != nil {
					return nil, err
				}
				atts, err := a.Store.ListAttempts(r.Context(), r.PathValue("event_id"), string(p))
				return attemptsOut{orEmpty(atts)}, err
			}},
		{Method: "POST", Path: Prefix + "/conversions/{event_id}/retry", ID: "retryConversion",
			Summary: "Re-queue an event's failed or skipped sends; they go with the next run (audited)", Body: retryIn{}, BodyOptional: true,
			Result: retryOut{}, h: a.retry},
	}
}

func pathPlatform(r *http.Request) (conversion.Platform, error) {
	p, err := conversion.ParsePlatform(r.PathValue("platform"))
	if err != nil {
		return "", store.ErrNotFound
	}
	return p, nil
}

func queryPlatform(r *http.Request, name string) (conversion.Platform, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return "", nil
	}
	p, err := conversion.ParsePlatform(v)
	if err != nil {
		return "", &auth.InvalidError{Field: name, Message: "must be meta, google, tiktok or microsoft"}
	}
	return p, nil
}

func (a *API) view(r *http.Request, c store.Connection) (conversion.ConnectionView, error) {
	maps, err := a.Store.ListMappings(r.Context())
	return conversion.ViewOf(c, maps), err
}

func (a *API) listConnections(r *http.Request, _ store.APIKey) (any, error) {
	id := r.PathValue("id")
	if _, err := a.Store.GetClient(r.Context(), id); err != nil {
		return nil, err
	}
	conns, err := a.Store.ListConnections(r.Context())
	if err != nil {
		return nil, err
	}
	maps, err := a.Store.ListMappings(r.Context())
	if err != nil {
		return nil, err
	}
	out := connectionsOut{Connections: []conversion.ConnectionView{}}
	for _, c := range conns {
		if c.ClientID == id {
			out.Connections = append(out.Connections, conversion.ViewOf(c, maps))
		}
	}
	return out, nil
}

func (a *API) saveConnection(r *http.Request, k store.APIKey) (any, error) {
	p, err := pathPlatform(r)
	if err != nil {
		return nil, err
	}
	var in connectionIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if len(in.Settings) == 0 {
		return nil, &auth.InvalidError{Field: "settings", Message: "must name at least one setting"}
	}
	c, err := a.conns.SaveConnection(r.Context(), r.PathValue("id"), p, in.Settings, actor(k))
	if errors.Is(err, conversion.ErrNoClients) {
		return nil, store.ErrNotFound // this build cannot send there
	} else if err != nil {
		return nil, err
	}
	return a.view(r, c)
}

func (a *API) mapStage(r *http.Request, k store.APIKey, ev string) (any, error) {
	p, err := pathPlatform(r)
	if err != nil {
		return nil, err
	}
	st, err := a.Store.GetStage(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	c, err := a.Store.ClientByName(r.Context(), st.ClientName)
	if err != nil {
		return nil, err
	}
	if err := a.conns.Map(r.Context(), c.ID, st.ID, p, ev, actor(k)); err != nil {
		return nil, err
	}
	out := mappingOut{StageID: st.ID, Platform: string(p)}
	if maps, err := a.Store.ListMappings(r.Context()); err != nil {
		return nil, err
	} else if i := slices.IndexFunc(maps, func(m store.Mapping) bool { return m.StageID == st.ID && m.Platform == string(p) }); i >= 0 {
		out.Event = &maps[i].EventName
	}
	return out, nil
}

// origin is the instance's external origin, for snippets.
func (a *API) origin(r *http.Request) string {
	if a.PublicURL != "" {
		return a.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (a *API) site(r *http.Request, s store.Site) siteOut {
	o := a.origin(r)
	return siteOut{ID: s.ID, Key: s.Key, Name: s.Name, Client: s.Client, Origins: orEmpty(s.Origins), CreatedAt: s.CreatedAt,
		Snippet: pixel.Snippet(o, s.Key), Tag: pixel.Tag(o, s.Key)}
}

func (a *API) changeOrigins(r *http.Request, k store.APIKey) (any, error) {
	var in originsIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if len(in.Add)+len(in.Remove) == 0 {
		return nil, &auth.InvalidError{Field: "body", Message: "must give origins to add or remove"}
	}
	id := r.PathValue("id")
	s, err := a.Store.GetSite(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if len(in.Add) > 0 {
		if s, err = a.sites.AddOrigins(r.Context(), s.ID, in.Add, actor(k)); err != nil {
			return nil, err
		}
	}
	if len(in.Remove) > 0 {
		if s, err = a.sites.RemoveOrigins(r.Context(), s.ID, in.Remove, actor(k)); err != nil {
			return nil, err
		}
	}
	return a.site(r, s), nil
}

func (a *API) listSends(r *http.Request, _ store.APIKey) (any, error) {
	q := r.URL.Query()
	f := store.SendFilter{Status: q.Get("status"), ClientID: q.Get("client_id"), EventID: q.Get("event_id"), Limit: 100}
	p, err := queryPlatform(r, "platform")
	if err != nil {
		return nil, err
	}
	f.Platform = string(p)
	if f.Status != "" && !slices.Contains([]string{"pending", "retrying", "sent", "failed", "skipped"}, f.Status) {
		return nil, &auth.InvalidError{Field: "status", Message: "must be pending, retrying, sent, failed or skipped"}
	}
	if v := q.Get("after"); v != "" {
		c, err := store.ParseSendCursor(v)
		if err != nil {
			return nil, &auth.InvalidError{Field: "after", Message: "must be a next_after value"}
		}
		f.After = &c
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxSendsLimit {
			return nil, &auth.InvalidError{Field: "limit", Message: "must be between 1 and " + strconv.Itoa(MaxSendsLimit)}
		}
		f.Limit = n
	}
	want := f.Limit
	f.Limit++
	rows, err := a.Store.ListSends(r.Context(), f)
	if err != nil {
		return nil, err
	}
	out := sendsOut{Sends: orEmpty(rows)}
	if len(rows) > want {
		out.Sends = rows[:want]
		next := store.CursorOf(rows[want-1]).String()
		out.NextAfter = &next
	}
	return out, nil
}

func (a *API) retry(r *http.Request, k store.APIKey) (any, error) {
	var in retryIn
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return nil, err
		}
	}
	var p conversion.Platform
	if in.Platform != "" {
		var err error
		if p, err = conversion.ParsePlatform(in.Platform); err != nil {
			return nil, err
		}
	}
	ps, err := a.conns.Retry(r.Context(), r.PathValue("event_id"), p, actor(k))
	return retryOut{EventID: r.PathValue("event_id"), Platforms: ps, Status: string(conversion.StatusPending)}, err
}
