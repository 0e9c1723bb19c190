package server_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pruuv/pruuv/internal/pruuvtest"
)

// BenchmarkWebhook posts unique events over loopback HTTP to a real server,
// spread over 20 stages, from GOMAXPROCS×16 concurrent clients. For the full
// load test with latency percentiles and the no-op baseline, see cmd/pruuv-load.
func BenchmarkWebhook(b *testing.B) {
	for _, bk := range pruuvtest.Backends() {
		b.Run(bk.Name, func(b *testing.B) {
			cfg := bk.Config(b)
			srv := pruuvtest.Start(b, cfg)
			var stages []pruuvtest.Stage
			for f := range 4 {
				stages = append(stages, pruuvtest.Funnel(b, cfg, "Acme", fmt.Sprint("F", f), "A", "B", "C", "D", "E")...)
			}
			for _, s := range stages {
				pruuvtest.Run(b, cfg, "stage", "set-limit", s.ID, "--per-hour", "1000000")
			}
			var n atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					s := stages[i%int64(len(stages))]
					body := fmt.Sprintf(`{"reference":"ref-%d","utm_source":"google","utm_medium":"cpc","utm_campaign":"brand-search","gclid":"EAIaIQobCh%d","revenue_value":250,"currency":"GBP"}`, i, i)
					r, err := pruuvtest.PostErr(srv.URL, s.ID, s.WebhookToken, body)
					if err != nil || r.Status != 200 {
						b.Fatalf("post: %v %d %s", err, r.Status, r.Body)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
