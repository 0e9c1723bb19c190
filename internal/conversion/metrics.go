package conversion

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pruuv/pruuv/internal/store"
)

// Metrics are the queue's Prometheus metrics: a counter of final and
// retrying outcomes kept by the process, and gauges read from the database
// at each scrape, so every process reports the whole queue.
type Metrics struct {
	sends *prometheus.CounterVec
	store *store.Store
	now   func() time.Time
	log   *slog.Logger

	depth, oldest, outbox *prometheus.Desc
}

// NewMetrics registers the queue's metrics with reg.
func NewMetrics(reg prometheus.Registerer, st *store.Store, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pruuv_conversion_sends_total",
			Help: "Conversion sends by platform and outcome (sent, retrying, failed, skipped), counted by this process.",
		}, []string{"platform", "outcome"}),
		store: st, now: time.Now, log: log,
		depth: prometheus.NewDesc("pruuv_conversion_queue_depth",
			"Conversion sends waiting to go, by platform and status (pending, retrying).", []string{"platform", "status"}, nil),
		oldest: prometheus.NewDesc("pruuv_conversion_oldest_pending_age_seconds",
			"Age of the oldest pending or retrying conversion send, by platform; 0 when none waits.", []string{"platform"}, nil),
		outbox: prometheus.NewDesc("pruuv_conversion_outbox_depth",
			"Stored events whose conversion sends are not planned yet.", nil, nil),
	}
	for _, p := range Platforms {
		for _, o := range []Status{StatusSent, StatusRetrying, StatusFailed, StatusSkipped} {
			m.sends.WithLabelValues(string(p), string(o))
		}
	}
	reg.MustRegister(m.sends, queueCollector{m})
	return m
}

// count adds one send outcome; a nil *Metrics counts nothing.
func (m *Metrics) count(platform string, st Status) {
	if m == nil {
		return
	}
	switch st {
	case StatusSent, StatusRetrying, StatusFailed, StatusSkipped:
		m.sends.WithLabelValues(platform, string(st)).Inc()
	}
}

type queueCollector struct{ m *Metrics }

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.depth
	ch <- c.m.oldest
	ch <- c.m.outbox
}

// Collect runs one grouped query over the due index (and a count of the
// outbox). A failing database leaves the gauges out of this scrape rather
// than failing it.
func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := m.store.QueueStats(ctx)
	if err != nil {
		m.log.Warn("conversion queue metrics unavailable", "err", err)
		return
	}
	type key struct{ p, s string }
	depth := map[key]int{}
	oldest := map[string]time.Time{}
	for _, s := range stats {
		depth[key{s.Platform, s.Status}] = s.Count
		if o, ok := oldest[s.Platform]; !ok || s.Oldest.Before(o) {
			oldest[s.Platform] = s.Oldest
		}
	}
	now := m.now()
	for _, p := range Platforms {
		for _, st := range []Status{StatusPending, StatusRetrying} {
			ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(depth[key{string(p), string(st)}]), string(p), string(st))
		}
		age := 0.0
		if o, ok := oldest[string(p)]; ok {
			age = max(0, now.Sub(o).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(m.oldest, prometheus.GaugeValue, age, string(p))
	}
	if n, err := m.store.OutboxDepth(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(m.outbox, prometheus.GaugeValue, float64(n))
	}
}
