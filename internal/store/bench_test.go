package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/event"
	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/store"
	"github.com/pruuv/pruuv/internal/token"
)

// BenchmarkIngest measures the storage cost of one event inside group-commit
// batches of 64, durable settings on: the ceiling the HTTP path works under.
func BenchmarkIngest(b *testing.B) {
	for _, bk := range pruuvtest.Backends() {
		b.Run(bk.Name, func(b *testing.B) {
			cfg := bk.Config(b)
			st, err := store.Open(context.Background(), store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var stages []string
			for f := range 4 {
				var ns []store.NewStage
				for s := range 5 {
					id := token.NewID("stg")
					ns = append(ns, store.NewStage{ID: id, Name: fmt.Sprint(s), Token: store.StageToken{ID: token.NewID("tok"), Hash: []byte(id), Sealed: "x", Hint: "h"}})
					stages = append(stages, id)
				}
				if _, _, err := st.CreateFunnel(context.Background(), token.NewID("cli"), "Acme", token.NewID("fun"), fmt.Sprint(f), ns, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			f, err := event.Decode([]byte(`{"reference":"x","utm_source":"google","utm_medium":"cpc","utm_campaign":"brand-search","gclid":"EAIaIQobCh","revenue_value":250,"currency":"GBP"}`), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			const batch = 64
			items := make([]*store.Item, batch)
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				now := time.Now()
				for j := range items {
					fields := f
					fields.Reference = fmt.Sprint("ref-", i+j)
					items[j] = &store.Item{Event: event.Event{ID: token.NewEventID(now), StageID: stages[(i+j)%len(stages)], Source: event.SourceWebhook, ReceivedAt: now, Fields: fields},
						HourlyLimit: 1 << 30, DedupSince: now.Add(-time.Minute).UnixMilli(), HourStart: now.Truncate(time.Hour).UnixMilli()}
				}
				if err := st.Ingest(context.Background(), items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
