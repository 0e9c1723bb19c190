package dashboard

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/store"
)

// Connections › Ad platforms: each client's connection on each platform
// (secret settings only as hints), a form per platform built from its
// client's Keys, and what each stage sends to each platform.

// settingField is one setting of a platform's form.
type settingField struct {
	conversion.Key
	Value string // a plain setting's stored (or just submitted) value
	Hint  string // a secret setting's hint, when one is stored
}

type adPlatform struct {
	Platform  conversion.Platform
	Supported bool // this build has the platform's client
	Conn      *store.Connection
	Fields    []settingField
	Error     string // why the last submission of this form was refused
}

type mapCell struct {
	Platform conversion.Platform
	Event    string
}

type mapRow struct {
	Stage store.Stage
	Cells []mapCell
}

type adClient struct {
	Client    store.ClientDetail
	Platforms []adPlatform
	Stages    []mapRow
}

// formError is a refused submission shown again: which form, why, and the
// values it had (never a secret's).
type formError struct {
	ClientID, Platform, Msg string
	Form                    url.Values
}

func (d *Dashboard) adPlatformsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d.renderAdPlatforms(w, r, s, http.StatusOK, nil)
}

func (d *Dashboard) renderAdPlatforms(w http.ResponseWriter, r *http.Request, s *session, status int, fe *formError) {
	ctx := r.Context()
	clients, err := d.Store.ListClients(ctx)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	conns, err := d.Store.ListConnections(ctx)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	maps, err := d.Store.ListMappings(ctx)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	stages, err := d.Store.ListStages(ctx)
	if err != nil {
		d.failErr(w, r, err)
		return
	}
	var out []adClient
	for _, c := range clients {
		ac := adClient{Client: c}
		for _, p := range conversion.Platforms {
			ap := adPlatform{Platform: p}
			for i := range conns {
				if conns[i].ClientID == c.ID && conns[i].Platform == string(p) {
					ap.Conn = &conns[i]
				}
			}
			submitted := fe != nil && fe.ClientID == c.ID && fe.Platform == string(p)
			if submitted {
				ap.Error = fe.Msg
			}
			if cl, err := d.conns.Client(p); err == nil {
				ap.Supported = true
				for _, k := range cl.Keys() {
					f := settingField{Key: k}
					if ap.Conn != nil {
						f.Value, f.Hint = ap.Conn.Settings[k.Name], ap.Conn.Hints[k.Name]
					}
					if submitted && !k.Secret {
						f.Value = fe.Form.Get("set_" + k.Name)
					}
					ap.Fields = append(ap.Fields, f)
				}
			}
			ac.Platforms = append(ac.Platforms, ap)
		}
		for _, st := range stages {
			if st.ClientName != c.Name {
				continue
			}
			row := mapRow{Stage: st}
			for _, p := range conversion.Platforms {
				cell := mapCell{Platform: p}
				if i := slices.IndexFunc(maps, func(m store.Mapping) bool { return m.StageID == st.ID && m.Platform == string(p) }); i >= 0 {
					cell.Event = maps[i].EventName
				}
				row.Cells = append(row.Cells, cell)
			}
			ac.Stages = append(ac.Stages, row)
		}
		out = append(out, ac)
	}
	v := view{Title: "Ad platforms", Nav: "ads", Notice: notice(r), Data: out}
	if fe != nil {
		v.Error = fe.Msg
	}
	d.render(w, r, status, "adplatforms", s, v)
}

// platformOf reads the {platform} of a path.
func (d *Dashboard) platformOf(w http.ResponseWriter, r *http.Request) (conversion.Platform, bool) {
	p, err := conversion.ParsePlatform(r.PathValue("platform"))
	if err != nil {
		d.fail(w, r, http.StatusNotFound, "There is no such ad platform.", nil)
		return "", false
	}
	return p, true
}

// saveConnection adds or updates a client's connection on a platform, the
// way `pruuv connection add` does. A plain setting left blank is removed; a
// secret one left blank keeps its stored value, which the page never holds.
func (d *Dashboard) saveConnection(w http.ResponseWriter, r *http.Request, s *session) {
	p, ok := d.platformOf(w, r)
	if !ok {
		return
	}
	clientID := r.PathValue("client")
	cl, err := d.conns.Client(p)
	if err != nil {
		d.fail(w, r, http.StatusNotFound, "This build of Pruuv has no "+string(p)+" client.", nil)
		return
	}
	changes := map[string]string{}
	for _, k := range cl.Keys() {
		vals, present := r.PostForm["set_"+k.Name]
		if !present {
			continue
		}
		v := vals[0]
		if k.Secret && v == "" {
			continue
		}
		changes[k.Name] = v
	}
	_, err = d.conns.SaveConnection(r.Context(), clientID, p, changes, actor(s))
	if msg, ok := invalidMessage(err); ok {
		d.renderAdPlatforms(w, r, s, http.StatusUnprocessableEntity, &formError{ClientID: clientID, Platform: string(p), Msg: msg, Form: r.PostForm})
		return
	} else if err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/connections/ad-platforms?done=connection#client-"+clientID, http.StatusSeeOther)
}

// mapStage sets (or, with the Unmap button, removes) what a stage sends to a
// platform, like `pruuv connection map` and `unmap`.
func (d *Dashboard) mapStage(w http.ResponseWriter, r *http.Request, s *session) {
	p, ok := d.platformOf(w, r)
	if !ok {
		return
	}
	clientID := r.PathValue("client")
	ev, done := r.PostForm.Get("event"), "mapped"
	if r.PostForm.Get("op") == "unmap" {
		ev, done = "", "unmapped"
	}
	err := d.conns.Map(r.Context(), clientID, r.PostForm.Get("stage_id"), p, ev, actor(s))
	if msg, ok := invalidMessage(err); ok {
		d.renderAdPlatforms(w, r, s, http.StatusUnprocessableEntity, &formError{ClientID: clientID, Msg: msg})
		return
	} else if err != nil {
		d.failErr(w, r, err)
		return
	}
	http.Redirect(w, r, "/connections/ad-platforms?done="+done+"#client-"+clientID, http.StatusSeeOther)
}
