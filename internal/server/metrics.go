package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Webhook outcomes, the values of the outcome label.
const (
	outcomeAccepted     = "accepted"
	outcomeDuplicate    = "duplicate"
	outcomeInvalid      = "invalid"
	outcomeUnauthorized = "unauthorized"
	outcomeNotFound     = "not_found"
	outcomeRateLimited  = "rate_limited"
	outcomeTooLarge     = "too_large"
	outcomeBadMethod    = "method_not_allowed"
	outcomeError        = "error"
)

type metrics struct {
	events  *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pruuv_webhook_events_total",
			Help: "Webhook requests by outcome.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pruuv_webhook_request_duration_seconds",
			Help:    "Time from request to response on the Webhook API, by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
	}
	for _, o := range []string{outcomeAccepted, outcomeDuplicate, outcomeInvalid, outcomeUnauthorized, outcomeNotFound,
		outcomeRateLimited, outcomeTooLarge, outcomeBadMethod, outcomeError} {
		m.events.WithLabelValues(o) // export zeros so rates work from the start
		m.latency.WithLabelValues(o)
	}
	reg.MustRegister(m.events, m.latency)
	return m
}

// Registerer is where the rest of the process (the conversion queue)
// registers its metrics, so /metrics serves them with the server's own.
func (s *Server) Registerer() prometheus.Registerer { return s.registry }
