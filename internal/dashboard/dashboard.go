// Package dashboard is Pruuv's server-rendered web interface: login, clients,
// funnels and stages, Connections > Funnel Webhooks and Ad platforms, the
// Pixel's sites and snippets, the events browser, the conversion log, funnel
// reports and admin API keys. Pages are html/template, styled by one embedded
// CSS file, and work without JavaScript; a small script only adds the copy
// buttons.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/funnel"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/site"
	"github.com/pruuv/pruuv/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is every page's Content-Security-Policy: nothing from elsewhere, no
// inline script or style, no framing.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// maxForm is the largest form body a page reads.
const maxForm = 64 << 10

// Options configures the dashboard.
type Options struct {
	Store   *store.Store
	Auth    *auth.Service
	Funnels *funnel.Service
	// Key opens and seals connections' secret settings.
	Key secret.Key
	// Clients are the platform clients, for their settings' keys and
	// checks; a platform without one is shown but cannot be connected.
	Clients conversion.Registry
	Log     *slog.Logger
	// PublicURL is the instance's external origin (PRUUV_PUBLIC_URL), used
	// in endpoint URLs and to mark cookies Secure; empty means the request's.
	PublicURL string
	// ClientIPHeader names a header a trusted reverse proxy sets to the
	// client's address (PRUUV_CLIENT_IP_HEADER), for the login limiter.
	ClientIPHeader string
}

// Dashboard serves the pages.
type Dashboard struct {
	Options
	conns  *conversion.Admin
	sites  *site.Admin
	pages  map[string]*template.Template
	static map[string]asset
	cop    *http.CrossOriginProtection
}

type asset struct {
	body  []byte
	ctype string
	hash  string
}

// New parses the templates and hashes the static files once.
func New(o Options) (*Dashboard, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	d := &Dashboard{Options: o, pages: map[string]*template.Template{}, static: map[string]asset{},
		conns: &conversion.Admin{Store: o.Store, Key: o.Key, Clients: o.Clients, Audit: o.Auth.Audit},
		sites: &site.Admin{Store: o.Store, Audit: o.Auth.Audit}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", base, err)
		}
		d.pages[strings.TrimSuffix(base, ".html")] = t
	}
	for name, ctype := range map[string]string{"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"} {
		b, err := staticFS.ReadFile("static/" + name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		d.static[name] = asset{body: b, ctype: ctype, hash: hex.EncodeToString(sum[:6])}
	}
	d.cop = http.NewCrossOriginProtection()
	if o.PublicURL != "" {
		if err := d.cop.AddTrustedOrigin(o.PublicURL); err != nil {
			return nil, fmt.Errorf("PRUUV_PUBLIC_URL: %w", err)
		}
	}
	d.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.fail(w, r, http.StatusForbidden, "This request came from another site and was refused.", nil)
	}))
	return d, nil
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"fieldValue": func(fd event.Field, e event.Event) string {
		switch v := fd.Value(&e.Fields).(type) {
		case string:
			return v
		case int64:
			return event.FormatMicros(v)
		}
		return ""
	},
	"revenue": func(e event.Event) string {
		if !e.HasRevenue {
			return ""
		}
		return event.FormatMicros(e.RevenueMicros) + " " + e.Currency
	},
	"add": func(a, b int) int { return a + b },
	// httpCode is an HTTP status, or — when no answer came.
	"httpCode": func(status *int) string {
		if status == nil {
			return "—"
		}
		return strconv.Itoa(*status)
	},
	"retryable": retryable,
}

// session is the logged-in user behind a request.
type session struct {
	sid  string
	user store.User
	csrf string
}

// route is one dashboard route: its pattern, whether it needs a session, and
// its handler.
type route struct {
	pattern string
	public  bool
	h       func(http.ResponseWriter, *http.Request, *session)
}

// routes is every dashboard route. POSTs change state and are all checked
// for the session's CSRF token (except the login form, which has its own).
func (d *Dashboard) routes() []route {
	return []route{
		{"GET /{$}", false, func(w http.ResponseWriter, r *http.Request, _ *session) {
			http.Redirect(w, r, "/funnels", http.StatusSeeOther)
		}},
		{"GET /login", true, d.loginPage},
		{"POST /login", true, d.login},
		{"POST /logout", false, d.logout},
		{"GET /static/{file}", true, d.serveStatic},

		{"GET /clients", false, d.clientsPage},
		{"POST /clients", false, d.createClient},
		{"POST /clients/{id}/settings", false, d.setClientSettings},
		{"GET /funnels", false, d.funnelsPage},
		{"POST /funnels", false, d.createFunnel},
		{"GET /funnels/{id}", false, d.funnelPage},
		{"POST /funnels/{id}/rename", false, d.renameFunnel},
		{"POST /funnels/{id}/stages", false, d.addStage},
		{"POST /stages/{id}/rename", false, d.renameStage},
		{"POST /stages/{id}/move", false, d.moveStage},
		{"POST /stages/{id}/limit", false, d.setLimit},

		{"GET /connections/webhooks", false, d.webhooksPage},
		{"POST /connections/webhooks/{id}/reveal", false, d.revealToken},
		{"POST /connections/webhooks/{id}/rotate", false, d.rotateToken},

		{"GET /events", false, d.eventsPage},
		{"GET /events/{id}", false, d.eventPage},

		{"GET /settings/api-keys", false, d.apiKeysPage},
		{"POST /settings/api-keys", false, d.createAPIKey},
		{"POST /settings/api-keys/{id}/revoke", false, d.revokeAPIKey},

		{"GET /connections/ad-platforms", false, d.adPlatformsPage},
		{"POST /connections/ad-platforms/{client}/{platform}", false, d.saveConnection},
		{"POST /connections/ad-platforms/{client}/{platform}/map", false, d.mapStage},

		{"GET /pixel", false, d.pixelPage},
		{"POST /pixel/sites", false, d.createSite},
		{"POST /pixel/sites/{id}/origins", false, d.addOrigin},
		{"POST /pixel/sites/{id}/origins/remove", false, d.removeOrigin},

		{"GET /conversions", false, d.conversionsPage},
		{"GET /conversions/{event}", false, d.conversionPage},
		{"POST /conversions/{event}/retry", false, d.retrySend},

		{"GET /reports", false, d.reportsPage},
		{"GET /reports/export.csv", false, d.exportReport},
	}
}

// Register adds the dashboard's routes to mux.
func (d *Dashboard) Register(mux *http.ServeMux) {
	for _, rt := range d.routes() {
		mux.Handle(rt.pattern, d.wrap(rt))
	}
}

// Patterns lists the dashboard's route patterns, for tests.
func (d *Dashboard) Patterns() []string {
	var out []string
	for _, rt := range d.routes() {
		out = append(out, rt.pattern)
	}
	return out
}

// wrap applies, in order: security headers, cross-origin refusal, the
// session (redirecting to /login without one), and the CSRF token on POST.
func (d *Dashboard) wrap(rt route) http.Handler {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if rt.public {
			rt.h(w, r, nil)
			return
		}
		hd.Set("Cache-Control", "no-store")
		s, err := d.session(r)
		if errors.Is(err, auth.ErrNoSession) {
			d.clearCookie(w, r, d.sessionCookie(r))
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			d.fail(w, r, http.StatusForbidden, "Your session has ended. Log in again and retry.", nil)
			return
		}
		if err != nil {
			d.fail(w, r, http.StatusInternalServerError, "", err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				d.fail(w, r, http.StatusBadRequest, "The form could not be read.", nil)
				return
			}
			if !d.Auth.CheckCSRF(s.sid, r.PostForm.Get("csrf")) {
				d.fail(w, r, http.StatusForbidden, "The form had expired or did not come from this dashboard. Reload the page and try again.", nil)
				return
			}
		}
		rt.h(w, r, s)
	})
	return d.cop.Handler(h)
}

// secure reports whether cookies must be Secure: the public URL is https, or
// this request came over TLS.
func (d *Dashboard) secure(r *http.Request) bool {
	return strings.HasPrefix(d.PublicURL, "https://") || r.TLS != nil
}

// sessionCookie is the session cookie's name: with the __Host- prefix when
// Secure, which browsers bind to this exact origin.
func (d *Dashboard) sessionCookie(r *http.Request) string {
	if d.secure(r) {
		return "__Host-pruuv_session"
	}
	return "pruuv_session"
}

func (d *Dashboard) loginCookie(r *http.Request) string {
	if d.secure(r) {
		return "__Host-pruuv_login"
	}
	return "pruuv_login"
}

func (d *Dashboard) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: d.secure(r), SameSite: http.SameSiteLaxMode})
}

func (d *Dashboard) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	if _, err := r.Cookie(name); err == nil {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: d.secure(r), SameSite: http.SameSiteLaxMode})
	}
}

func (d *Dashboard) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(d.sessionCookie(r))
	if err != nil {
		return nil, auth.ErrNoSession
	}
	ss, err := d.Auth.Session(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	return &session{sid: c.Value, user: ss.User, csrf: d.Auth.CSRFToken(c.Value)}, nil
}

// clientIP is the address the login limiter counts: the configured proxy
// header when set (the last X-Forwarded-For entry, which the proxy added),
// else the connection's peer. The last entry is that of the header's last
// line: a proxy may add its own line below one the client sent (HAProxy's
// option forwardfor does), and the client's first line is the client's to
// choose.
func (d *Dashboard) clientIP(r *http.Request) string {
	if d.ClientIPHeader != "" {
		if vs := r.Header.Values(d.ClientIPHeader); len(vs) > 0 {
			v := vs[len(vs)-1]
			if i := strings.LastIndexByte(v, ','); i >= 0 {
				v = v[i+1:]
			}
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// origin is the instance's external origin for endpoint URLs.
func (d *Dashboard) origin(r *http.Request) string {
	if d.PublicURL != "" {
		return d.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// view is what every page template gets.
type view struct {
	Title  string
	Nav    string
	User   string
	CSRF   string
	CSS    string
	JS     string
	Notice string
	Error  string
	Data   any
}

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, s *session, v view) {
	t, ok := d.pages[page]
	if !ok {
		d.Log.Error("no such page template", "page", page)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	if s != nil {
		v.User, v.CSRF = s.user.Email, s.csrf
	}
	v.CSS = "/static/app.css?v=" + d.static["app.css"].hash
	v.JS = "/static/app.js?v=" + d.static["app.js"].hash
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		d.Log.Error("render page", "page", page, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail answers with an error page; 5xx causes go to the log only.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
		msg = "Something went wrong on the server. The details are in its log."
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	d.Log.Log(r.Context(), level, "dashboard request failed", attrs...)
	s, _ := d.session(r)
	if s == nil || status == http.StatusForbidden {
		s = nil // a refused form gets a page without the user's token on it
	}
	d.render(w, r, status, "error", s, view{Title: http.StatusText(status), Error: msg})
}

// failErr maps a domain error to a page.
func (d *Dashboard) failErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		d.fail(w, r, http.StatusNotFound, "There is nothing here: it may have been removed, or the link is wrong.", nil)
	default:
		d.fail(w, r, http.StatusInternalServerError, "", err)
	}
}

func (d *Dashboard) serveStatic(w http.ResponseWriter, r *http.Request, _ *session) {
	a, ok := d.static[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	if r.URL.Query().Get("v") == a.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Write(a.body)
}
