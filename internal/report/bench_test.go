package report_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pruuv/pruuv/internal/pruuvtest"
	"github.com/pruuv/pruuv/internal/report"
	"github.com/pruuv/pruuv/internal/store"
)

// BenchmarkFunnelReport times the 30-day report broken down by utm_campaign
// on the benchmark dataset (dataset_test.go): 1,000,000 events, 20 stages,
// 200 campaigns. Building the dataset is not timed; the SQLite file is kept
// in the system's temporary directory for the next run.
func BenchmarkFunnelReport(b *testing.B) { benchReport(b, "utm_campaign") }

// BenchmarkFunnelReportNoBreakdown times the same report without a breakdown.
func BenchmarkFunnelReportNoBreakdown(b *testing.B) { benchReport(b, "") }

func benchReport(b *testing.B, by string) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			st, funnelID := benchStore(b, backend)
			to := report.DateOf(benchEnd.Add(-time.Hour))
			q := report.Query{FunnelID: funnelID, From: to.AddDays(-29), To: to, By: by}
			ctx := context.Background()
			r, err := report.Run(ctx, st, q) // warms the caches, and checks the dataset
			if err != nil {
				b.Fatal(err)
			}
			if r.Totals[0].Contacts == 0 || (by != "" && len(r.Rows) < 100*benchStages) {
				b.Fatalf("the benchmark dataset looks wrong: %d contacts at stage 1, %d rows", r.Totals[0].Contacts, len(r.Rows))
			}
			cpu := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				if _, err := report.Run(ctx, st, q); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// CPU time used by this process: on a busy machine, a steadier
			// figure than elapsed time (PostgreSQL's own work is not in it).
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type benchDB struct {
	once     sync.Once
	st       *store.Store
	funnelID string
	err      error
}

var benchDBs = map[string]*benchDB{"sqlite": {}, "postgres": {}}

// pgSchemas are the PostgreSQL schemas the benchmarks made, dropped by TestMain.
var pgSchemas []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range benchDBs {
		if d.st != nil {
			d.st.Close()
		}
	}
	if len(pgSchemas) > 0 {
		if db, err := sql.Open("pgx", os.Getenv(pruuvtest.PostgresEnv)); err == nil {
			for _, s := range pgSchemas {
				db.Exec("DROP SCHEMA " + s + " CASCADE")
			}
			db.Close()
		}
	}
	os.Exit(code)
}

// benchStore opens the dataset on the backend, building it on first use.
func benchStore(b *testing.B, backend string) (*store.Store, string) {
	d := benchDBs[backend]
	if backend == "postgres" && os.Getenv(pruuvtest.PostgresEnv) == "" {
		b.Skipf("set %s to benchmark PostgreSQL", pruuvtest.PostgresEnv)
	}
	d.once.Do(func() {
		start := time.Now()
		if backend == "sqlite" {
			d.st, d.funnelID, d.err = benchSQLite()
		} else {
			d.st, d.funnelID, d.err = benchPostgres()
		}
		b.Logf("%s dataset ready in %s", backend, time.Since(start).Round(time.Millisecond))
	})
	if d.err != nil {
		b.Fatal(d.err)
	}
	return d.st, d.funnelID
}

// benchSQLite opens the cached SQLite dataset, generating it if missing. It
// is built in a scratch directory and renamed into place once complete.
func benchSQLite() (*store.Store, string, error) {
	ctx := context.Background()
	dir := filepath.Join(os.TempDir(), "pruuv-report-bench-"+benchVersion)
	if _, err := os.Stat(filepath.Join(dir, "funnel")); err != nil {
		tmp, err := os.MkdirTemp(os.TempDir(), "pruuv-report-bench-build-")
		if err != nil {
			return nil, "", err
		}
		defer os.RemoveAll(tmp)
		st, err := store.Open(ctx, store.Options{DataDir: tmp, Relaxed: true})
		if err != nil {
			return nil, "", err
		}
		db, err := sql.Open("sqlite", "file:"+filepath.Join(tmp, store.SQLiteFile)+"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)")
		if err != nil {
			st.Close()
			return nil, "", err
		}
		funnelID, stageIDs, err := createBenchFunnel(ctx, st, db)
		st.Close()
		if err == nil {
			err = loadBench(ctx, db, stageIDs, func(int) string { return "?" })
		}
		if err == nil {
			_, err = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		}
		db.Close()
		if err == nil {
			err = os.WriteFile(filepath.Join(tmp, "funnel"), []byte(funnelID), 0o600)
		}
		if err != nil {
			return nil, "", fmt.Errorf("build the SQLite dataset: %w", err)
		}
		os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			return nil, "", err
		}
	}
	id, err := os.ReadFile(filepath.Join(dir, "funnel"))
	if err != nil {
		return nil, "", err
	}
	st, err := store.Open(ctx, store.Options{DataDir: dir})
	return st, string(id), err
}

// benchPostgres builds the dataset in a new schema of the test PostgreSQL.
func benchPostgres() (*store.Store, string, error) {
	ctx := context.Background()
	url := os.Getenv(pruuvtest.PostgresEnv)
	schema := fmt.Sprintf("report_bench_%d", time.Now().UnixNano())
	admin, err := sql.Open("pgx", url)
	if err != nil {
		return nil, "", err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, "", err
	}
	pgSchemas = append(pgSchemas, schema)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	dsn := url + sep + "search_path=" + schema
	st, err := store.Open(ctx, store.Options{DatabaseURL: dsn, MaxConns: 4})
	if err != nil {
		return nil, "", err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		st.Close()
		return nil, "", err
	}
	defer db.Close()
	funnelID, stageIDs, err := createBenchFunnel(ctx, st, db)
	if err == nil {
		err = loadBench(ctx, db, stageIDs, func(i int) string { return fmt.Sprintf("$%d", i) })
	}
	if err == nil {
		// Autovacuum would analyse the table soon after such a load.
		_, err = db.ExecContext(ctx, "VACUUM ANALYZE events")
	}
	if err != nil {
		st.Close()
		return nil, "", fmt.Errorf("build the PostgreSQL dataset: %w", err)
	}
	return st, funnelID, nil
}
