package conversion_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/event"
)

func TestMetricsCountOutcomes(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		e.connect(conversion.Meta)
		e.mapStage(0, conversion.Meta, "Lead")
		ids := e.ingest(0, event.Fields{FBC: "a"}, event.Fields{FBC: "b"}, event.Fields{FBC: "c"}, event.Fields{TTCLID: "t"})
		e.cls[conversion.Meta].Script(ids[1], conversion.Result{Outcome: conversion.Permanent})
		e.cls[conversion.Meta].Script(ids[2], conversion.Result{Outcome: conversion.Transient})
		reg := prometheus.NewRegistry()
		m := conversion.NewMetrics(reg, e.st, nil)
		q := e.queue(func(o *conversion.Options) { o.Metrics = m })
		e.run(q, true)
		want := `
# HELP pruuv_conversion_sends_total Conversion sends by platform and outcome (sent, retrying, failed, skipped), counted by this process.
# TYPE pruuv_conversion_sends_total counter
pruuv_conversion_sends_total{outcome="failed",platform="google"} 0
pruuv_conversion_sends_total{outcome="failed",platform="meta"} 1
pruuv_conversion_sends_total{outcome="failed",platform="microsoft"} 0
pruuv_conversion_sends_total{outcome="failed",platform="tiktok"} 0
pruuv_conversion_sends_total{outcome="retrying",platform="google"} 0
pruuv_conversion_sends_total{outcome="retrying",platform="meta"} 1
pruuv_conversion_sends_total{outcome="retrying",platform="microsoft"} 0
pruuv_conversion_sends_total{outcome="retrying",platform="tiktok"} 0
pruuv_conversion_sends_total{outcome="sent",platform="google"} 0
pruuv_conversion_sends_total{outcome="sent",platform="meta"} 1
pruuv_conversion_sends_total{outcome="sent",platform="microsoft"} 0
pruuv_conversion_sends_total{outcome="sent",platform="tiktok"} 0
pruuv_conversion_sends_total{outcome="skipped",platform="google"} 0
pruuv_conversion_sends_total{outcome="skipped",platform="meta"} 1
pruuv_conversion_sends_total{outcome="skipped",platform="microsoft"} 0
pruuv_conversion_sends_total{outcome="skipped",platform="tiktok"} 1
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pruuv_conversion_sends_total"); err != nil {
			t.Fatal(err)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pruuv_conversion_queue_depth Conversion sends waiting to go, by platform and status (pending, retrying).
# TYPE pruuv_conversion_queue_depth gauge
pruuv_conversion_queue_depth{platform="google",status="pending"} 0
pruuv_conversion_queue_depth{platform="google",status="retrying"} 0
pruuv_conversion_queue_depth{platform="meta",status="pending"} 0
pruuv_conversion_queue_depth{platform="meta",status="retrying"} 1
pruuv_conversion_queue_depth{platform="microsoft",status="pending"} 0
pruuv_conversion_queue_depth{platform="microsoft",status="retrying"} 0
pruuv_conversion_queue_depth{platform="tiktok",status="pending"} 0
pruuv_conversion_queue_depth{platform="tiktok",status="retrying"} 0
`), "pruuv_conversion_queue_depth"); err != nil {
			t.Fatal(err)
		}
	})
}
