package dashboard

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/pruuv/pruuv/internal/pixel"
	"github.com/pruuv/pruuv/internal/site"
	"github.com/pruuv/pruuv/internal/store"
)

// Pixel: each client's sites (public key, allowed origins) and the snippet
// that installs the Pixel on their pages, pointing at this instance.

type pixelSite struct {
	store.Site
	Snippet string
	Tag     string
}

type pixelData struct {
	Clients []store.ClientDetail
	Sites   []pixelSite
	Origin  string
	Form    url.Values
}

func (d *Dashboard) pixelPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderPixel(w, r, s, http.StatusOK, "")
}

func (d *Dashboard) renderPixel(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	clients, err := d.Store.ListClients(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	sites, err := d.Store.ListSites(r.Context())
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	data := pixelData{Clients: clients, Origin: d.origin(r), Form: r.PostForm}
	for _, st := range sites {
		data.Sites = append(data.Sites, pixelSite{Site: st, Snippet: pixel.Snippet(data.Origin, st.Key), Tag: pixel.Tag(data.Origin, st.Key)})
	}
	d.render(w, r, status, "pixel", s, view{Title: "Pixel", Nav: "pixel", Notice: notice(r), Error: msg, Data: data})
}

// afterSiteChange redirects to the site on the page, or shows why the change
// was refused.
func (d *Dashboard) afterSiteChange(w http.ResponseWriter, r *http.Request, s *session, st store.Site, done string, err error) {
	if msg, ok := invalidMessage(err); ok {
		d.renderPixel(w, r, s, http.StatusUnprocessableEntity, msg)
		return
	} else if err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/pixel?done="+done+"#site-"+st.ID, http.StatusSeeOther)
}

func (d *Dashboard) createSite(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	name, err := site.ClientName(r.Context(), d.Store, "client", f.Get("client_id"))
	var st store.Site
	if err == nil {
		st, err = d.sites.Create(r.Context(), name, f.Get("name"), []string{f.Get("origins")}, actor(s))
	}
	d.afterSiteChange(w, r, s, st, "site", err)
}

func (d *Dashboard) addOrigin(w http.ResponseWriter, r *http.Request, s *session) {
	st, err := d.sites.AddOrigins(r.Context(), r.PathValue("id"), []string{strings.TrimSpace(r.PostForm.Get("origin"))}, actor(s))
	d.afterSiteChange(w, r, s, st, "origin_added", err)
}

func (d *Dashboard) removeOrigin(w http.ResponseWriter, r *http.Request, s *session) {
	st, err := d.sites.RemoveOrigins(r.Context(), r.PathValue("id"), []string{strings.TrimSpace(r.PostForm.Get("origin"))}, actor(s))
	d.afterSiteChange(w, r, s, st, "origin_removed", err)
}
