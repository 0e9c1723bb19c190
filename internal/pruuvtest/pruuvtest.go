// Package pruuvtest starts real Pruuv servers for tests: in-process on a
// loopback port, or as `pruuv serve` child processes, on SQLite in a temporary
// directory or on a fresh schema of the test PostgreSQL.
package pruuvtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/pruuv/pruuv/internal/cli"
	"github.com/pruuv/pruuv/internal/config"
	"github.com/pruuv/pruuv/internal/conversion"
	"github.com/pruuv/pruuv/internal/store"
)

// PostgresEnv names the variable holding the test PostgreSQL's URL. When it is
// unset, PostgreSQL tests skip; when it is set, an unreachable server fails them.
const PostgresEnv = "PRUUV_TEST_POSTGRES_URL"

// SecretKey is a fixed test key, so several processes share one database.
const SecretKey = "dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXk="

// Backend is a database a suite runs on.
type Backend struct {
	Name string
	// Config returns a configuration on a fresh, empty database.
	Config func(t testing.TB) config.Config
}

// Backends lists SQLite and, when configured, PostgreSQL.
func Backends() []Backend {
	return []Backend{{Name: "sqlite", Config: SQLite}, {Name: "postgres", Config: Postgres}}
}

func base(t testing.TB) config.Config {
	c := config.Default()
	c.Addr = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.SecretKey = SecretKey
	c.LogLevel = "debug"
	c.ShutdownTimeout = 10 * time.Second
	c.DBMaxConns = 8 // test packages run side by side on one PostgreSQL
	return c
}

// SQLite returns a configuration on a new SQLite file.
func SQLite(t testing.TB) config.Config { return base(t) }

// Postgres returns a configuration on a new, empty schema of the test
// PostgreSQL, dropped when the test ends; it skips the test if PostgreSQL is
// not configured.
func Postgres(t testing.TB) config.Config {
	url := os.Getenv(PostgresEnv)
	if url == "" {
		t.Skipf("PostgreSQL tests skipped: set %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run them", PostgresEnv)
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	defer db.Close()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable or usable: %v", PostgresEnv, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", url)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	c := base(t)
	c.DatabaseURL = url + sep + "search_path=" + schema
	return c
}

type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Logger logs to t.Log until the test ends.
func Logger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Server is a running in-process server.
type Server struct {
	URL    string
	Config config.Config
	stop   func()
}

// Stop shuts the server down gracefully and waits for it.
func (s *Server) Stop() { s.stop() }

// Start runs cli.Serve on a loopback port until the test ends.
func Start(t testing.TB, cfg config.Config) *Server {
	t.Helper()
	return StartLogged(t, cfg, Logger(t))
}

// StartLogged is Start with the server's logs going to log.
func StartLogged(t testing.TB, cfg config.Config, log *slog.Logger) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cli.Serve(ctx, cfg, log, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	s := &Server{URL: "http://" + ln.Addr().String(), Config: cfg, stop: stop}
	waitReady(t, s.URL)
	return s
}

func waitReady(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := httpClient.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server at %s did not become ready", url)
}

// Env turns a configuration into PRUUV_* variables for a child process.
func Env(cfg config.Config) []string {
	return []string{
		"PRUUV_ADDR=" + cfg.Addr, "PRUUV_DATA_DIR=" + cfg.DataDir, "PRUUV_DATABASE_URL=" + cfg.DatabaseURL,
		"PRUUV_SECRET_KEY=" + cfg.SecretKey, "PRUUV_LOG_LEVEL=" + cfg.LogLevel, "PRUUV_DURABILITY=" + cfg.Durability,
		"PRUUV_DB_MAX_CONNS=" + strconv.Itoa(cfg.DBMaxConns), "PRUUV_DRAIN_DELAY=" + cfg.DrainDelay.String(),
		"PRUUV_TRUSTED_PROXIES=" + cfg.TrustedProxies, "PRUUV_PIXEL_IP_RATE=" + strconv.Itoa(cfg.PixelIPRate),
		"PRUUV_PIXEL_IP_BURST=" + strconv.Itoa(cfg.PixelIPBurst),
		"PRUUV_CONVERSIONS_SCHEDULE=" + cfg.ConversionsSchedule, "PRUUV_CONVERSIONS_POLL=" + cfg.ConversionsPoll.String(),
		"PRUUV_CONVERSIONS_LEASE=" + cfg.ConversionsLease.String(),
		"PRUUV_META_API_URL=" + cfg.Endpoints.Meta, "PRUUV_GOOGLE_DATAMANAGER_URL=" + cfg.Endpoints.GoogleDataManager,
		"PRUUV_GOOGLE_ADS_API_URL=" + cfg.Endpoints.GoogleAds, "PRUUV_GOOGLE_OAUTH_URL=" + cfg.Endpoints.GoogleOAuth,
		"PRUUV_TIKTOK_API_URL=" + cfg.Endpoints.TikTok, "PRUUV_MICROSOFT_API_URL=" + cfg.Endpoints.Microsoft,
		"PRUUV_MICROSOFT_OAUTH_URL=" + cfg.Endpoints.MicrosoftOAuth,
		"PRUUV_PUBLIC_URL=" + cfg.PublicURL, "PRUUV_CLIENT_IP_HEADER=" + cfg.ClientIPHeader,
	}
}

// Run runs a CLI command in-process against cfg's database and returns stdout.
func Run(t testing.TB, cfg config.Config, args ...string) string {
	t.Helper()
	out, errOut, err := RunErr(cfg, args...)
	if err != nil {
		t.Fatalf("pruuv %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// RunErr runs a CLI command in-process and returns stdout, stderr and the error.
func RunErr(cfg config.Config, args ...string) (string, string, error) {
	return RunErrWith(cfg, nil, args...)
}

// RunWith is Run with the given platform clients in place of the real ones.
func RunWith(t testing.TB, cfg config.Config, clients conversion.Registry, args ...string) string {
	t.Helper()
	out, errOut, err := RunErrWith(cfg, clients, args...)
	if err != nil {
		t.Fatalf("pruuv %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// RunInput is Run with stdin as the command's standard input, as in
// `pruuv user create --password-stdin`.
func RunInput(t testing.TB, cfg config.Config, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := run(cfg, nil, strings.NewReader(stdin), args...)
	if err != nil {
		t.Fatalf("pruuv %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// RunErrWith is RunErr with the given platform clients (nil: the real ones).
func RunErrWith(cfg config.Config, clients conversion.Registry, args ...string) (string, string, error) {
	return run(cfg, clients, nil, args...)
}

func run(cfg config.Config, clients conversion.Registry, stdin io.Reader, args ...string) (string, string, error) {
	env := map[string]string{}
	for _, kv := range Env(cfg) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), args, cli.Env{Getenv: func(k string) string { return env[k] }, Stdin: stdin, Stdout: &out, Stderr: &errOut,
		Platforms: clients})
	return out.String(), errOut.String(), err
}

// Stage is one stage of a funnel created by Funnel.
type Stage struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Position     int    `json:"position"`
	WebhookToken string `json:"webhook_token"`
}

// Funnel creates a funnel with the given stages through the CLI.
func Funnel(t testing.TB, cfg config.Config, client, name string, stages ...string) []Stage {
	t.Helper()
	var out struct {
		Stages []Stage `json:"stages"`
	}
	js := Run(t, cfg, "funnel", "create", "--client", client, "--name", name, "--stages", strings.Join(stages, ","), "--json")
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		t.Fatalf("funnel create printed %q: %v", js, err)
	}
	return out.Stages
}

// RawConnections returns every connections row as text, read past the store,
// so tests can check that secrets are not stored in clear.
func RawConnections(t testing.TB, cfg config.Config) string {
	t.Helper()
	driver, dsn := "sqlite", filepath.Join(cfg.DataDir, store.SQLiteFile)
	if cfg.DatabaseURL != "" {
		driver, dsn = "pgx", cfg.DatabaseURL
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT id, client_id, platform, settings, sealed, hints FROM connections")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var cols [6]string
		if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5]); err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(cols[:], "|") + "\n")
	}
	return b.String()
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds cmd/pruuv once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pruuv-bin")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "pruuv")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/pruuv")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Process is a `pruuv serve` child process.
type Process struct {
	URL  string
	Cmd  *exec.Cmd
	done chan error
}

// StartProcess runs `pruuv serve` with cfg on a free loopback port and waits
// until it is ready. It is killed when the test ends, if still running.
func StartProcess(t testing.TB, cfg config.Config) *Process {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	cmd := exec.Command(Binary(t), "serve")
	cmd.Env = append(os.Environ(), Env(cfg)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	logw := &tWriter{t: t}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			if !sent {
				var m struct{ Msg, Addr string }
				if json.Unmarshal(line, &m) == nil && m.Msg == "listening" {
					addr <- m.Addr
					sent = true
				}
			}
			logw.Write(line)
		}
		io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		logw.mu.Lock()
		logw.done = true
		logw.mu.Unlock()
		p.done <- nil
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case err := <-p.done:
		p.done <- err
		t.Fatalf("pruuv serve exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("pruuv serve did not start listening in 30 s")
	}
	waitReady(t, p.URL)
	return p
}

// Kill sends SIGKILL and waits for the process to die.
func (p *Process) Kill() {
	p.Cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// Signal sends sig without waiting.
func (p *Process) Signal(sig os.Signal) { p.Cmd.Process.Signal(sig) }

// Wait returns the process's exit error once it ends.
func (p *Process) Wait() error {
	err := <-p.done
	p.done <- err
	return err
}

// Terminate sends SIGTERM and returns the process's exit error once it ends.
func (p *Process) Terminate() error {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	err := <-p.done
	p.done <- err
	return err
}
