// Package api is Pruuv's admin JSON API under /api/v1/, for scripts: clients,
// funnels, stages (with their webhook tokens), events, ad platform
// connections and mappings, Pixel sites and the conversion log, authenticated by
// admin API keys. One route table drives both the mux and the OpenAPI 3.1
// document served at /api/v1/openapi.json, so the two cannot drift.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/funnel"
	"github.com/pruuv/pruuv/internal/secret"
	"github.com/pruuv/pruuv/internal/site"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// Prefix is where the admin API lives.
const Prefix = "/api/v1"

// maxBody is the largest request body the API reads.
const maxBody = 64 << 10

// Options configures the API.
type Options struct {
	Store   *store.Store
	Auth    *auth.Service
	Funnels *funnel.Service
	// Key opens and seals connections' secret settings.
	Key secret.Key
	// Clients are the platform clients, for their settings' keys and checks.
	Clients conversion.Registry
	// PublicURL is the instance's external origin (PRUUV_PUBLIC_URL), for
	// Pixel snippets; empty means the request's.
	PublicURL string
	Log       *slog.Logger
}

// API serves /api/v1/.
type API struct {
	Options
	conns *conversion.Admin
	sites *site.Admin
	spec  []byte
}

// New builds the API and its OpenAPI document.
func New(o Options) (*API, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	audit := func(ctx context.Context, actor, action, target string) { o.Auth.Audit(ctx, actor, action, target) }
	a := &API{Options: o, conns: &conversion.Admin{Store: o.Store, Key: o.Key, Clients: o.Clients, Audit: audit},
		sites: &site.Admin{Store: o.Store, Audit: audit}}
	spec, err := json.MarshalIndent(openAPI(a.routes()), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	a.spec = spec
	return a, nil
}

// Route is one operation of the admin API: what the mux registers and what
// the OpenAPI document describes.
type Route struct {
	Method  string
	Path    string // mux pattern syntax, which is also OpenAPI's: /api/v1/stages/{id}
	ID      string // operationId
	Summary string
	Public  bool    // no API key needed
	Query   []Param // query parameters
	Body    any     // a value of the request body's type, nil for none
	// BodyOptional marks a body that may be left out.
	BodyOptional bool
	Status       int // success status (200 when zero)
	Result       any // a value of the success body's type
	h            func(*http.Request, store.APIKey) (any, error)
}

// Param is a query parameter.
type Param struct {
	Name, Type, Description string
}

// Routes lists every operation, for tests and documentation.
func (a *API) Routes() []Route { return a.routes() }

// Register adds the API's routes to mux, plus JSON answers for unknown paths
// (404) and wrong methods (405) under the prefix.
func (a *API) Register(mux *http.ServeMux) {
	allowed := map[string][]string{}
	for _, rt := range a.routes() {
		mux.Handle(rt.Method+" "+rt.Path, a.handle(rt))
		allowed[rt.Path] = append(allowed[rt.Path], rt.Method)
	}
	paths := http.NewServeMux()
	for p, ms := range allowed {
		slices.Sort(ms)
		paths.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(ms, ", "))
			a.fail(w, r, http.StatusMethodNotAllowed, errorBody("Method not allowed"), nil)
		})
	}
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		if _, pat := paths.Handler(r); pat != "" {
			paths.ServeHTTP(w, r)
			return
		}
		a.fail(w, r, http.StatusNotFound, errorBody("Not found"), nil)
	})
}

type errorJSON struct {
	Error   string              `json:"error"`
	Details map[string][]string `json:"details,omitempty"`
}

func errorBody(msg string) errorJSON { return errorJSON{Error: msg} }

// errBadBody is a request body that is not the JSON the operation takes.
type errBadBody struct{ msg string }

func (e *errBadBody) Error() string { return e.msg }

// handle is every operation's sequence: authenticate, run, answer.
func (a *API) handle(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var key store.APIKey
		if !rt.Public {
			k, err := a.Auth.APIKey(r.Context(), token.Bearer(r.Header))
			if errors.Is(err, auth.ErrUnauthorized) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="pruuv"`)
				a.fail(w, r, http.StatusUnauthorized, errorBody("Unauthorized"), nil)
				return
			} else if err != nil {
				a.fail(w, r, http.StatusInternalServerError, errorBody("Internal error"), err)
				return
			}
			key = k
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		out, err := rt.h(r, key)
		var inv *auth.InvalidError
		var bad *errBadBody
		var tooLarge *http.MaxBytesError
		switch {
		case err == nil:
			if f, ok := out.(csvFile); ok {
				f.write(w)
				return
			}
			status := rt.Status
			if status == 0 {
				status = http.StatusOK
			}
			writeJSON(w, status, out)
		case errors.As(err, &tooLarge):
			a.fail(w, r, http.StatusRequestEntityTooLarge, errorBody("Payload too large"), nil)
		case errors.As(err, &inv):
			a.fail(w, r, http.StatusBadRequest, errorJSON{Error: "Validation failed", Details: map[string][]string{inv.Field: {inv.Message}}}, nil)
		case errors.As(err, &bad):
			a.fail(w, r, http.StatusBadRequest, errorJSON{Error: "Validation failed", Details: map[string][]string{"body": {bad.msg}}}, nil)
		case errors.Is(err, store.ErrNotFound):
			a.fail(w, r, http.StatusNotFound, errorBody("Not found"), nil)
		case errors.Is(err, store.ErrConflict):
			a.fail(w, r, http.StatusConflict, errorBody("Already exists"), nil)
		case errors.Is(err, store.ErrNotRetryable):
			a.fail(w, r, http.StatusConflict, errorBody("Only failed or skipped sends can be retried"), nil)
		default:
			a.fail(w, r, http.StatusInternalServerError, errorBody("Internal error"), err)
		}
	})
}

// csvFile is a success answer that is a CSV download rather than JSON.
type csvFile struct {
	name string // file name offered to save it as
	body []byte
}

func (f csvFile) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+f.name+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(f.body)
}

// fail logs a 4xx or 5xx the same way everywhere (never bodies or the
// Authorization header) and answers with body.
func (a *API) fail(w http.ResponseWriter, r *http.Request, status int, body errorJSON, err error) {
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	a.Log.Log(r.Context(), level, "api request failed", attrs...)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
}

// decode reads a JSON object body strictly: unknown fields and trailing
// data are refused.
func decode(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return &errBadBody{"must be a JSON object"}
		}
		return &errBadBody{"is not the JSON this operation takes: " + err.Error()}
	}
	if dec.More() {
		return &errBadBody{"must be exactly one JSON object"}
	}
	return nil
}
