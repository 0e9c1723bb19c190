package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/pruuv/pruuv/internal/api"
	"github.com/pruuv/pruuv/internal/auth"
	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/dashboard"
	"github.com/pruuv/pruuv/internal/funnel"
	"github.com/pruuv/pruuv/internal/ingest"
	"github.com/pruuv/pruuv/internal/server"
)

func runServe(ctx context.Context, cfg config.Config, args []string, env Env) error {
	fs := newFlags("serve")
	cfg.ServeFlags(fs)
	if err := noArgs(fs, args, env); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	level, _ := cfg.Level()
	hopts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	if cfg.LogFormat == "text" {
		log = slog.New(slog.NewTextHandler(env.Stderr, hopts))
	} else {
		log = slog.New(slog.NewJSONHandler(env.Stderr, hopts))
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set PRUUV_ADDR or --addr)", cfg.Addr, err)
	}
	return serve(ctx, cfg, log, ln, platforms(cfg, env))
}

// Serve runs the server on ln until ctx is done, then shuts down gracefully:
// readiness fails first, in-flight requests finish, queued events commit.
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger, ln net.Listener) error {
	return serve(ctx, cfg, log, ln, platformClients(cfg))
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, ln net.Listener, clients conversion.Registry) error {
	defer ln.Close()
	st, key, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	writers := 1
	if st.Postgres() {
		writers = min(4*runtime.GOMAXPROCS(0), max(1, cfg.DBMaxConns/2)) // leave connections for lookups
	}
	in := ingest.New(ingest.Options{Store: st, Key: key, Log: log, Writers: writers})
	defer in.Close()
	proxies, err := cfg.TrustedProxyPrefixes()
	if err != nil {
		return err
	}
	au := auth.New(auth.Options{Store: st, Key: key, Log: log})
	fu := funnel.New(st, key, au)
	dash, err := dashboard.New(dashboard.Options{Store: st, Auth: au, Funnels: fu, Key: key, Clients: clients, Log: log, PublicURL: cfg.PublicURL, ClientIPHeader: cfg.ClientIPHeader})
	if err != nil {
		return err
	}
	adm, err := api.New(api.Options{Store: st, Auth: au, Funnels: fu, Key: key, Clients: clients, PublicURL: cfg.PublicURL, Log: log})
	if err != nil {
		return err
	}
	srv := server.New(st, in, log, server.WithBrowser(server.BrowserOptions{
		TrustedProxies: proxies, IPRate: cfg.PixelIPRate, IPBurst: cfg.PixelIPBurst}),
		server.Mount(dash, adm))
	metrics := conversion.NewMetrics(srv.Registerer(), st, log)
	sched, err := conversion.ParseSchedule(cfg.ConversionsSchedule)
	if err != nil {
		return err
	}
	q, err := conversion.New(conversion.Options{Store: st, Key: key, Clients: clients, Schedule: sched, Log: log, Metrics: metrics,
		Lease: cfg.ConversionsLease, Busy: func() bool { return in.IdleFor() < 10*time.Millisecond }})
	switch {
	case errors.Is(err, conversion.ErrNoClients):
		// Events still queue in the outbox and are planned once a build
		// with the platform clients runs.
		log.Warn("conversion sending is disabled: this build has no platform clients", "err", err)
	case err != nil:
		return err
	default:
		// The loop stops with ctx, and is waited for before the store
		// closes; a send in flight is cancelled and, with no answer, retried
		// later under the same event id.
		qctx, stopQueue := context.WithCancel(ctx)
		queueDone := make(chan struct{})
		go func() {
			defer close(queueDone)
			q.Loop(qctx, cfg.ConversionsPoll)
		}()
		defer func() {
			stopQueue()
			<-queueDone
		}()
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "config", cfg, "dialect", st.Dialect())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String(), "drain_delay", cfg.DrainDelay.String())
	srv.Drain()
	// Behind a load balancer, keep serving while /readyz fails so it stops
	// routing here before the listener closes.
	time.Sleep(cfg.DrainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}
