// Package server is Pruuv's HTTP surface: the Webhook API, the Pixel's
// browser endpoint, health checks and metrics. Every route is listed in routes.
package server

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/pixel"
	"github.com/pruuv/pruuv/internal/store"
)

// Server holds what the handlers share.
type Server struct {
	store    *store.Store
	ingest   *ingest.Service
	log      *slog.Logger
	metrics  *metrics
	registry *prometheus.Registry
	draining atomic.Bool
	browser  browser // the Pixel's endpoint (browser.go)
	surfaces []Surface
}

// Surface is a set of routes mounted beside the Webhook API: the dashboard
// (internal/dashboard) and the admin API (internal/api) each keep theirs in
// one table and register them here.
type Surface interface {
	Register(mux *http.ServeMux)
}

// Mount adds surfaces to the server's routes.
func Mount(surfaces ...Surface) Option {
	return func(s *Server) { s.surfaces = append(s.surfaces, surfaces...) }
}

// New builds the HTTP surface over an open store and a running ingest service.
func New(st *store.Store, in *ingest.Service, log *slog.Logger, opts ...Option) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	s := &Server{store: st, ingest: in, log: log, metrics: newMetrics(reg), registry: reg}
	s.initBrowser(reg)
	for _, o := range opts {
		o(s)
	}
	return s
}

// Drain makes /readyz fail so load balancers stop sending traffic before the
// listener closes.
func (s *Server) Drain() { s.draining.Store(true) }

// Handler returns every route.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// All methods reach the webhook handler so that a wrong method gets the
	// API's JSON error rather than the mux's plain-text one.
	mux.HandleFunc("/api/webhooks/funnel/{stageId}", s.handleWebhook)
	// Anything else under the prefix (no id, a trailing slash, extra segments)
	// is no stage: the API's JSON 404, not the mux's text one.
	mux.HandleFunc("/api/webhooks/funnel/", s.handleWebhook)
	// The Pixel posts here from the browser; OPTIONS is its CORS preflight.
	mux.HandleFunc(TrackPath, s.handleTrack)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.Handle("GET /pixel.js", pixel.Handler())
	// The dashboard's pages (login, /funnels, /connections/webhooks, /events…)
	// and the admin API under /api/v1/.
	for _, sf := range s.surfaces {
		sf.Register(mux)
	}
	return mux
}
