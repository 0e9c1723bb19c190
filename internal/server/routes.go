// Package server is Pruuv's HTTP surface: the Webhook API, health checks and
// metrics. Every route is listed in routes.
package server

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pruuv/pruuv/internal/ingest"
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
	surfaces []Surface
}

// Surface is a set of routes mounted beside the Webhook API: the dashboard
// (internal/dashboard) and the admin API (internal/api) each keep theirs in
// one table and register them here.
type Surface interface {
	Register(mux *http.ServeMux)
}

// New builds the HTTP surface over an open store and a running ingest
// service, with the given surfaces mounted.
func New(st *store.Store, in *ingest.Service, log *slog.Logger, surfaces ...Surface) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return &Server{store: st, ingest: in, log: log, metrics: newMetrics(reg), registry: reg, surfaces: surfaces}
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
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	// The dashboard's pages (login, /funnels, /connections/webhooks, /events…)
	// and the admin API under /api/v1/.
	for _, sf := range s.surfaces {
		sf.Register(mux)
	}
	return mux
}
