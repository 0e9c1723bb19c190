// Command pruuv-load measures the Webhook API under load. It starts `pruuv
// serve` and a no-op Go HTTP server as child processes, drives both over
// loopback with the same load from this one process, and reports throughput,
// latency and memory against the performance targets:
//
//   - closed loop, 64 connections: pruuv accepts at least 0.25× the requests
//     per second the no-op handler answers, with p99 under 25 ms;
//   - open loop at a fixed 5,000 events/s: p99 under 5 ms, measured from each
//     request's scheduled send time so a stalled server cannot hide its queue;
//   - pruuv's peak resident memory (VmHWM) under 150 MB.
//
// Every check of the real endpoint stays on: the stage lookup, the bearer
// token, body validation, the dedup query and the hourly counter. Only the
// hourly limit is raised, so that it does not cap throughput.
//
// Usage:
//
//	go run ./cmd/pruuv-load [--pruuv PATH] [--database-url postgres://…]
//	    [--conns 64] [--rate 5000] [--duration 10s] [--json]
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // creates and drops the PostgreSQL schema
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "pruuv-load: %v\n", err)
		os.Exit(1)
	}
}

// The targets of the performance requirement.
const (
	targetRatio     = 0.25
	targetClosedP99 = 25 * time.Millisecond
	targetOpenP99   = 5 * time.Millisecond
	targetHWM       = 150_000_000 // bytes: 150 MB
	// targetAchieved is the share of the fixed rate that must be answered
	// within the phase for the open-loop figures to mean anything.
	targetAchieved = 0.99
)

// noopMode is the hidden first argument that turns this binary into the no-op
// server it measures pruuv against.
const noopMode = "noop"

const stagesPerFunnel = 10

type options struct {
	pruuv       string
	databaseURL string
	durability  string
	stages      int
	conns       int
	openConns   int
	rate        int
	duration    time.Duration
	warmup      time.Duration
	phases      string
	asJSON      bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == noopMode {
		return serveNoop(ctx, args[1:], stderr)
	}
	opt := options{}
	fs := flag.NewFlagSet("pruuv-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opt.pruuv, "pruuv", "", "path to a built pruuv binary (default: go build ./cmd/pruuv into a temporary directory)")
	fs.StringVar(&opt.databaseURL, "database-url", getenv("PRUUV_LOAD_DATABASE_URL"), "postgres://… to measure PostgreSQL on a fresh schema (default: the embedded SQLite)")
	fs.StringVar(&opt.durability, "durability", "strict", "pruuv's PRUUV_DURABILITY: strict (SQLite synchronous=FULL) or relaxed")
	fs.IntVar(&opt.stages, "stages", 200, "stages to spread the load over, created in funnels of 10")
	fs.IntVar(&opt.conns, "conns", 64, "closed loop: connections, each with one request in flight")
	fs.IntVar(&opt.openConns, "open-conns", 128, "open loop: connections (and sending goroutines) available")
	fs.IntVar(&opt.rate, "rate", 5000, "open loop: requests per second")
	fs.DurationVar(&opt.duration, "duration", 10*time.Second, "measured time of each phase")
	fs.DurationVar(&opt.warmup, "warmup", 2*time.Second, "unmeasured load before each phase")
	fs.StringVar(&opt.phases, "phases", "closed,open", "phases to run: closed, open or both")
	fs.BoolVar(&opt.asJSON, "json", false, "print the report as JSON on stdout (the text report goes to stderr)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var bad []string
	if opt.stages < 1 || opt.conns < 1 || opt.openConns < 1 || opt.rate < 1 {
		bad = append(bad, "--stages, --conns, --open-conns and --rate must be positive")
	}
	if opt.duration <= 0 || opt.warmup < 0 {
		bad = append(bad, "--duration must be positive and --warmup not negative")
	}
	if opt.durability != "strict" && opt.durability != "relaxed" {
		bad = append(bad, "--durability must be strict or relaxed")
	}
	if opt.databaseURL != "" && !strings.HasPrefix(opt.databaseURL, "postgres://") && !strings.HasPrefix(opt.databaseURL, "postgresql://") {
		bad = append(bad, "--database-url must start with postgres:// or postgresql://")
	}
	for _, p := range strings.Split(opt.phases, ",") {
		if p != "closed" && p != "open" {
			bad = append(bad, fmt.Sprintf("--phases: unknown phase %q", p))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	rep, err := measure(ctx, opt, stderr)
	if err != nil {
		return err
	}
	text := stdout
	if opt.asJSON {
		text = stderr
	}
	printReport(text, rep)
	if opt.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if !rep.Pass {
		return errors.New("targets missed (see the report)")
	}
	return nil
}

// report is everything one run measured; it is also the --json output.
type report struct {
	Database   string       `json:"database"`
	Durability string       `json:"durability,omitempty"`
	GoVersion  string       `json:"go_version"`
	CPUs       int          `json:"cpus"`
	Stages     int          `json:"stages"`
	Funnels    int          `json:"funnels"`
	Closed     *closedPhase `json:"closed_loop,omitempty"`
	Open       *openPhase   `json:"open_loop,omitempty"`
	Memory     memory       `json:"memory"`
	Checks     []check      `json:"checks"`
	Warnings   []string     `json:"warnings,omitempty"`
	Pass       bool         `json:"pass"`
}

type closedPhase struct {
	Conns    int          `json:"conns"`
	Duration float64      `json:"duration_s"`
	Noop     closedResult `json:"noop"`
	Pruuv    closedResult `json:"pruuv"`
	// Ratio is pruuv's accepted events/s over the no-op's answered requests/s.
	Ratio float64 `json:"ratio"`
}

type closedResult struct {
	Requests       int            `json:"requests"`
	RequestsPerSec float64        `json:"requests_per_s"`
	Accepted       int            `json:"accepted"`
	AcceptedPerSec float64        `json:"accepted_per_s"`
	Errors         map[string]int `json:"errors,omitempty"`
	Latency        latency        `json:"latency_ms"`
	CPU            cpu            `json:"cpu"`
}

type openPhase struct {
	Rate     int        `json:"rate"`
	Conns    int        `json:"conns"`
	Duration float64    `json:"duration_s"`
	Noop     openResult `json:"noop"`
	Pruuv    openResult `json:"pruuv"`
}

type openResult struct {
	Scheduled   int            `json:"scheduled"`
	Accepted    int            `json:"accepted"`
	AchievedPer float64        `json:"achieved_per_s"`
	Failures    map[string]int `json:"failures,omitempty"`
	// Latency runs from each request's scheduled send time to its answer.
	Latency latency `json:"latency_ms"`
	// SendLag is how late requests left this process: the load generator's
	// own delay, included in Latency.
	SendLag latency `json:"send_lag_ms"`
	CPU     cpu     `json:"cpu"`
}

type latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// cpu is how many cores were busy during a phase's measured time: the server
// under load, this load generator, and everything else on the machine, which
// should be near zero for the figures to be trusted.
type cpu struct {
	Server   float64 `json:"server_cores"`
	Load     float64 `json:"load_cores"`
	Postgres float64 `json:"postgres_cores,omitempty"` // local postgres processes, when measuring PostgreSQL
	Other    float64 `json:"other_cores"`
	// Busiest names the other processes that used the most CPU, by name.
	Busiest []string `json:"busiest_other,omitempty"`
	// DiskWrite is what the server (and a local PostgreSQL) wrote towards the
	// disk, from write_bytes of /proc/PID/io: data, WAL and checkpoints.
	DiskWrite int64 `json:"server_disk_write_bytes"`
	// Started counts processes started on the machine meanwhile: none of
	// them are this run's, and short-lived ones escape Busiest.
	Started int64 `json:"processes_started"`
}

type memory struct {
	PruuvStartRSS int64 `json:"pruuv_start_rss_bytes"`
	PruuvHWM      int64 `json:"pruuv_peak_rss_bytes"`
	PruuvEndRSS   int64 `json:"pruuv_end_rss_bytes"`
	NoopHWM       int64 `json:"noop_peak_rss_bytes"`
}

type check struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	Got    string `json:"got"`
	Pass   bool   `json:"pass"`
}

// measure sets up both servers, runs the phases and judges the results.
func measure(ctx context.Context, opt options, log io.Writer) (*report, error) {
	tmp, err := os.MkdirTemp("", "pruuv-load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if opt.pruuv == "" {
		opt.pruuv = filepath.Join(tmp, "pruuv")
		fmt.Fprintln(log, "building pruuv…")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", opt.pruuv, "github.com/pruuv/pruuv/cmd/pruuv")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/pruuv (run from the repository, or pass --pruuv): %w\n%s", err, out)
		}
	}
	rep := &report{Database: "sqlite", Durability: opt.durability, GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Stages: opt.stages}
	key := make([]byte, 32)
	rand.Read(key)
	env := map[string]string{
		"PRUUV_ADDR":       "127.0.0.1:0",
		"PRUUV_DATA_DIR":   filepath.Join(tmp, "data"),
		"PRUUV_SECRET_KEY": base64.StdEncoding.EncodeToString(key),
		"PRUUV_DURABILITY": opt.durability,
		"PRUUV_LOG_LEVEL":  "info",
	}
	if opt.databaseURL != "" {
		rep.Database, rep.Durability = "postgres", ""
		dbURL, drop, err := freshSchema(ctx, opt.databaseURL)
		if err != nil {
			return nil, err
		}
		defer drop()
		env["PRUUV_DATABASE_URL"] = dbURL
	}
	childEnv := environ(env)

	fmt.Fprintf(log, "creating %d stages on %s…\n", opt.stages, rep.Database)
	stages, funnels, err := createStages(ctx, opt.pruuv, childEnv, opt.stages)
	if err != nil {
		return nil, err
	}
	rep.Funnels = funnels

	pruuv, err := startChild(ctx, "pruuv", opt.pruuv, []string{"serve"}, childEnv, filepath.Join(tmp, "pruuv.log"))
	if err != nil {
		return nil, err
	}
	defer pruuv.stop()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	noop, err := startChild(ctx, "no-op", self, []string{noopMode, "--addr", "127.0.0.1:0"}, environ(nil), filepath.Join(tmp, "noop.log"))
	if err != nil {
		return nil, err
	}
	defer noop.stop()
	if err := waitReady(ctx, pruuv.url+"/readyz"); err != nil {
		return nil, fmt.Errorf("pruuv: %w%s", err, pruuv.tail())
	}
	rep.Memory.PruuvStartRSS, _ = procMemory(pruuv.pid(), "VmRSS")

	l := &load{opt: opt, log: log}
	l.prefix, l.suffix = bodyTemplate()
	targets := map[string]*target{"no-op": newTarget(noop.url, stages), "pruuv": newTarget(pruuv.url, stages)}
	for _, name := range []string{"no-op", "pruuv"} {
		if o := l.once(ctx, targets[name]); o != "" {
			srv := noop
			if name == "pruuv" {
				srv = pruuv
			}
			return nil, fmt.Errorf("%s does not accept the load's requests: %s%s", name, o, srv.tail())
		}
	}

	for _, phase := range strings.Split(opt.phases, ",") {
		switch phase {
		case "closed":
			p := &closedPhase{Conns: opt.conns, Duration: opt.duration.Seconds()}
			fmt.Fprintf(log, "closed loop, %d connections, %s: no-op…\n", opt.conns, opt.duration)
			p.Noop = l.closed(ctx, targets["no-op"], noop.pid())
			fmt.Fprintf(log, "closed loop, %d connections, %s: pruuv…\n", opt.conns, opt.duration)
			p.Pruuv = l.closed(ctx, targets["pruuv"], pruuv.pid())
			if p.Noop.RequestsPerSec > 0 {
				p.Ratio = p.Pruuv.AcceptedPerSec / p.Noop.AcceptedPerSec
			}
			rep.Closed = p
		case "open":
			p := &openPhase{Rate: opt.rate, Conns: opt.openConns, Duration: opt.duration.Seconds()}
			fmt.Fprintf(log, "open loop, %d/s, %s: no-op…\n", opt.rate, opt.duration)
			p.Noop = l.open(ctx, targets["no-op"], noop.pid())
			fmt.Fprintf(log, "open loop, %d/s, %s: pruuv…\n", opt.rate, opt.duration)
			p.Pruuv = l.open(ctx, targets["pruuv"], pruuv.pid())
			rep.Open = p
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	rep.Memory.PruuvHWM, _ = procMemory(pruuv.pid(), "VmHWM")
	rep.Memory.PruuvEndRSS, _ = procMemory(pruuv.pid(), "VmRSS")
	rep.Memory.NoopHWM, _ = procMemory(noop.pid(), "VmHWM")
	if pruuv.exited() {
		return nil, fmt.Errorf("pruuv exited during the run%s", pruuv.tail())
	}
	judge(rep)
	return rep, nil
}

func judge(rep *report) {
	add := func(name, target, got string, pass bool) {
		rep.Checks = append(rep.Checks, check{Name: name, Target: target, Got: got, Pass: pass})
	}
	if c := rep.Closed; c != nil {
		add(fmt.Sprintf("closed loop, %d conns: accepted/s vs no-op", c.Conns), fmt.Sprintf("≥ %.2f×", targetRatio),
			fmt.Sprintf("%.3f× (%.0f vs %.0f/s)", c.Ratio, c.Pruuv.AcceptedPerSec, c.Noop.AcceptedPerSec), c.Ratio >= targetRatio)
		add(fmt.Sprintf("closed loop, %d conns: p99", c.Conns), "< "+ms(targetClosedP99),
			fmtMS(c.Pruuv.Latency.P99), c.Pruuv.Latency.P99 < msf(targetClosedP99))
		add("closed loop: errors", "0", strconv.Itoa(total(c.Pruuv.Errors)), total(c.Pruuv.Errors) == 0)
	}
	if o := rep.Open; o != nil {
		add(fmt.Sprintf("open loop, %d/s: p99 from scheduled time", o.Rate), "< "+ms(targetOpenP99),
			fmtMS(o.Pruuv.Latency.P99), o.Pruuv.Latency.P99 < msf(targetOpenP99))
		add(fmt.Sprintf("open loop, %d/s: achieved rate", o.Rate), fmt.Sprintf("≥ %.0f/s", targetAchieved*float64(o.Rate)),
			fmt.Sprintf("%.0f/s", o.Pruuv.AchievedPer), o.Pruuv.AchievedPer >= targetAchieved*float64(o.Rate))
		add("open loop: failures", "0", strconv.Itoa(total(o.Pruuv.Failures)), total(o.Pruuv.Failures) == 0)
	}
	add("pruuv peak resident memory (VmHWM)", fmt.Sprintf("< %d MB", targetHWM/1_000_000),
		fmt.Sprintf("%.1f MB", float64(rep.Memory.PruuvHWM)/1e6), rep.Memory.PruuvHWM > 0 && rep.Memory.PruuvHWM < targetHWM)
	busy := func(phase, name string, c cpu) {
		if c.Other > 0.15 {
			busiest := fmt.Sprintf(" (%d processes started meanwhile", c.Started)
			if len(c.Busiest) > 0 {
				busiest += "; busiest: " + strings.Join(c.Busiest, ", ")
			}
			busiest += ")"
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("other processes kept %.2f cores busy during the %s phase against %s%s: "+
				"its figures understate what this machine can do; rerun on a quiet machine", c.Other, phase, name, busiest))
		}
	}
	if c := rep.Closed; c != nil {
		busy("closed-loop", "the no-op", c.Noop.CPU)
		busy("closed-loop", "pruuv", c.Pruuv.CPU)
	}
	if o := rep.Open; o != nil {
		busy("open-loop", "the no-op", o.Noop.CPU)
		busy("open-loop", "pruuv", o.Pruuv.CPU)
	}
	rep.Pass = true
	for _, c := range rep.Checks {
		rep.Pass = rep.Pass && c.Pass
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// freshSchema creates an empty schema on the PostgreSQL at base and returns
// a URL that puts pruuv in it, and a function that drops it.
func freshSchema(ctx context.Context, base string) (string, func(), error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, fmt.Errorf("--database-url: %w", err)
	}
	defer db.Close()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "load_" + hex.EncodeToString(b)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(cctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema on --database-url: %w", err)
	}
	drop := func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db.ExecContext(dctx, "DROP SCHEMA "+schema+" CASCADE") // best effort: the run's figures are already taken
	}
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema, drop, nil
}

// environ is this process's environment without PRUUV_* variables, plus set.
func environ(set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PRUUV_") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

type stage struct {
	ID    string `json:"id"`
	Token string `json:"webhook_token"`
}

// createStages makes n stages in funnels of stagesPerFunnel through the CLI
// and lifts their hourly limits, so the limit check runs but never refuses.
func createStages(ctx context.Context, bin string, env []string, n int) ([]stage, int, error) {
	pruuv := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("pruuv %s: %w\n%s", strings.Join(args, " "), err, errOut.Bytes())
		}
		return out, nil
	}
	var stages []stage
	funnels := 0
	for len(stages) < n {
		k := min(stagesPerFunnel, n-len(stages))
		names := make([]string, k)
		for i := range names {
			names[i] = fmt.Sprintf("Stage %d", i+1)
		}
		funnels++
		out, err := pruuv("funnel", "create", "--client", "Load test", "--name", fmt.Sprintf("Funnel %d", funnels),
			"--stages", strings.Join(names, ","), "--json")
		if err != nil {
			return nil, 0, err
		}
		var created struct{ Stages []stage }
		if err := json.Unmarshal(out, &created); err != nil || len(created.Stages) != k {
			return nil, 0, fmt.Errorf("pruuv funnel create printed %q: want %d stages", out, k)
		}
		stages = append(stages, created.Stages...)
	}
	// The set-limit commands are independent: a few at once keeps start-up short.
	next := atomic.Int64{}
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(stages) || errs[w] != nil {
					return
				}
				_, errs[w] = pruuv("stage", "set-limit", stages[i].ID, "--per-hour", "1000000")
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	return stages, funnels, nil
}

// child is a server process this command started.
type child struct {
	name string
	cmd  *exec.Cmd
	url  string
	log  string
	done chan struct{}
	once sync.Once
}

// startChild runs a server that logs {"msg":"listening","addr":…} as JSON on
// stderr, and returns once it has. Its whole log goes to logPath.
func startChild(ctx context.Context, name, bin string, args, env []string, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	w := &listenWatch{log: f, addr: make(chan string, 1)}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = w
	// A grandchild holding stderr open must not keep Wait from seeing the
	// server exit.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(c.done)
	}()
	select {
	case a := <-w.addr:
		c.url = "http://" + a
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before listening: %v%s", name, cmd.ProcessState, c.tail())
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s did not start listening in 30 s%s", name, c.tail())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

// listenWatch passes a child's stderr to its log file and sends the address
// of the first {"msg":"listening"} line. exec calls Write from one goroutine.
type listenWatch struct {
	log     io.Writer
	addr    chan string
	pending []byte
	sent    bool
}

func (w *listenWatch) Write(p []byte) (int, error) {
	w.log.Write(p)
	if w.sent {
		return len(p), nil
	}
	w.pending = append(w.pending, p...)
	for {
		line, rest, ok := bytes.Cut(w.pending, []byte("\n"))
		if !ok {
			return len(p), nil
		}
		w.pending = rest
		var m struct{ Msg, Addr string }
		if json.Unmarshal(line, &m) == nil && m.Msg == "listening" {
			w.addr <- m.Addr
			w.sent, w.pending = true, nil
			return len(p), nil
		}
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the server to shut down and kills it if it takes too long.
func (c *child) stop() {
	c.once.Do(func() {
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
	})
}

// tail returns the end of the child's log, for error messages.
func (c *child) tail() string {
	b, _ := os.ReadFile(c.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return ""
	}
	lines = lines[max(0, len(lines)-10):]
	return "\n" + c.name + " log:\n  " + strings.Join(lines, "\n  ")
}

func waitReady(ctx context.Context, u string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer 200 within 20 s", u)
}

// procMemory reads a Vm* line of /proc/PID/status, in bytes.
func procMemory(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// cpuSnap is the CPU time used so far by every process and by the machine.
type cpuSnap struct {
	at      time.Time
	self    time.Duration
	busy    time.Duration
	started int64
	procs   map[int]procTime
}

type procTime struct {
	comm string
	used time.Duration
	disk int64 // write_bytes of /proc/PID/io
}

func snapCPU() *cpuSnap {
	c := &cpuSnap{at: time.Now(), procs: map[int]procTime{}}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			continue
		}
		if comm, used, ok := procCPU(path); ok {
			c.procs[pid] = procTime{comm, used, diskWritten(pid)}
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	c.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// /proc/stat's first line: user nice system idle iowait irq softirq steal,
	// in ticks of 1/100 s; its "processes" line counts forks since boot.
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if _, after, ok := strings.Cut(string(b), "\nprocesses "); ok {
			n, _, _ := strings.Cut(after, "\n")
			c.started, _ = strconv.ParseInt(n, 10, 64)
		}
		f := strings.Fields(line)
		for i, v := range f[1:min(len(f), 9)] {
			if i == 3 || i == 4 { // idle, iowait
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			c.busy += time.Duration(n) * 10 * time.Millisecond
		}
	}
	return c
}

// since returns the cores used from a to c. With postgres, the local
// PostgreSQL's processes are part of the system under test and counted apart
// from the rest of the machine.
func (c *cpuSnap) since(a *cpuSnap, server int, postgres bool) cpu {
	if a == nil {
		return cpu{}
	}
	secs := c.at.Sub(a.at).Seconds()
	byComm := map[string]float64{}
	var srv, pg float64
	var disk int64
	for pid, p := range c.procs {
		p0, ok := a.procs[pid]
		if !ok || p0.comm != p.comm || p.used < p0.used || pid == os.Getpid() {
			continue
		}
		d := (p.used - p0.used).Seconds()
		switch {
		case pid == server:
			srv, disk = d, disk+p.disk-p0.disk
		case postgres && p.comm == "postgres":
			pg, disk = pg+d, disk+p.disk-p0.disk
		default:
			byComm[p.comm] += d
		}
	}
	self, busy := (c.self - a.self).Seconds(), (c.busy - a.busy).Seconds()
	u := cpu{Server: srv / secs, Load: self / secs, Postgres: pg / secs, Other: max(busy-srv-self-pg, 0) / secs,
		DiskWrite: disk, Started: c.started - a.started}
	names := slices.Collect(maps.Keys(byComm))
	slices.SortFunc(names, func(x, y string) int { return cmp.Compare(byComm[y], byComm[x]) })
	for _, comm := range names[:min(len(names), 5)] {
		if byComm[comm]/secs >= 0.05 {
			u.Busiest = append(u.Busiest, fmt.Sprintf("%s %.2f", comm, byComm[comm]/secs))
		}
	}
	return u
}

// diskWritten reads write_bytes from /proc/PID/io.
func diskWritten(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	_, after, _ := strings.Cut(string(b), "\nwrite_bytes: ")
	v, _, _ := strings.Cut(after, "\n")
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// procCPU reads a process's name and its user and system time from
// /proc/PID/stat.
func procCPU(path string) (string, time.Duration, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	// utime and stime are the 14th and 15th fields, the 12th and 13th after
	// the parenthesised command name, in ticks of 1/100 s.
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 13 {
		return "", 0, false
	}
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	k, _ := strconv.ParseInt(fields[12], 10, 64)
	return s[open+1 : end], time.Duration(u+k) * 10 * time.Millisecond, true
}

// target is one server under load, with a request line and headers per stage.
type target struct {
	urls    []string
	headers []http.Header
}

func newTarget(base string, stages []stage) *target {
	t := &target{}
	for _, s := range stages {
		t.urls = append(t.urls, base+"/api/webhooks/funnel/"+s.ID)
		t.headers = append(t.headers, http.Header{
			"Authorization": {"Bearer " + s.Token},
			"Content-Type":  {"application/json"},
		})
	}
	return t
}

// bodyTemplate is the seed page's example payload around a reference, which
// the load makes unique for every request.
func bodyTemplate() (prefix, suffix []byte) {
	run := make([]byte, 4)
	rand.Read(run)
	prefix = []byte(`{"reference":"LOAD-` + hex.EncodeToString(run) + `-`)
	suffix = []byte(`","utm_source":"google","utm_medium":"cpc","utm_campaign":"brand-search",` +
		`"gclid":"EAIaIQobChMI8ZzA4a2-hQMVh5BQBh0","revenue_value":250,"currency":"GBP"}`)
	return prefix, suffix
}

// load holds what every phase shares.
type load struct {
	opt            options
	log            io.Writer
	prefix, suffix []byte
	seq            atomic.Uint64
}

func newTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
	}
}

// worker is one sending goroutine's state; nothing in it is shared.
type worker struct {
	rng   *mrand.Rand
	arena []byte
	resp  bytes.Buffer
	lat   []int64 // nanoseconds
	lag   []int64
	ok    int
	fails map[string]int
}

func newWorker(expect int) *worker {
	var seed [16]byte
	rand.Read(seed[:])
	return &worker{
		rng:   mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
		lat:   make([]int64, 0, expect),
		fails: map[string]int{},
	}
}

// body returns a new payload with a reference no other request has used. It is
// cut from a per-worker arena and never reused, so the transport may still be
// reading it when the answer arrives.
func (w *worker) body(l *load) []byte {
	need := len(l.prefix) + 20 + len(l.suffix)
	if cap(w.arena)-len(w.arena) < need {
		w.arena = make([]byte, 0, 256<<10)
	}
	start := len(w.arena)
	w.arena = append(w.arena, l.prefix...)
	w.arena = strconv.AppendUint(w.arena, l.seq.Add(1), 10)
	w.arena = append(w.arena, l.suffix...)
	return w.arena[start:len(w.arena):len(w.arena)]
}

// send posts one event to a random stage and returns "" if it was accepted (200
// with an event_id), or what went wrong.
func (l *load) send(ctx context.Context, c *http.Client, t *target, w *worker) string {
	i := w.rng.IntN(len(t.urls))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.urls[i], bytes.NewReader(w.body(l)))
	if err != nil {
		return "request: " + err.Error()
	}
	req.Header = t.headers[i] // read-only: the transport writes its own headers to the wire
	resp, err := c.Do(req)
	if err != nil {
		return describe(ctx, err)
	}
	w.resp.Reset()
	_, err = w.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return "reading answer: " + describe(ctx, err)
	case resp.StatusCode != http.StatusOK:
		return strconv.Itoa(resp.StatusCode)
	case !bytes.Contains(w.resp.Bytes(), []byte(`"event_id"`)):
		return "200 without event_id"
	}
	return ""
}

func describe(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "cancelled at the end of the phase"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// once sends a single request, to find out before measuring whether the
// server accepts the load's requests at all.
func (l *load) once(ctx context.Context, t *target) string {
	c := &http.Client{Transport: newTransport(1), Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	w := newWorker(0)
	if o := l.send(ctx, c, t, w); o != "" {
		return o + ": " + w.resp.String()
	}
	return ""
}

// closed runs the closed loop: opt.conns goroutines, each sending its next
// request as soon as the last is answered.
func (l *load) closed(ctx context.Context, t *target, pid int) closedResult {
	tr := newTransport(l.opt.conns)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, l.opt.warmup+l.opt.duration+time.Minute)
	defer cancel()
	start := time.Now()
	from, end := start.Add(l.opt.warmup), start.Add(l.opt.warmup+l.opt.duration)
	ws := make([]*worker, l.opt.conns)
	var wg sync.WaitGroup
	var cpu0 atomic.Pointer[cpuSnap]
	time.AfterFunc(l.opt.warmup, func() { cpu0.Store(snapCPU()) })
	for i := range ws {
		w := newWorker(4096)
		ws[i] = w
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				o := l.send(ctx, c, t, w)
				t1 := time.Now()
				if t1.Before(from) || t1.After(end) {
					continue
				}
				w.record(t1.Sub(t0), o)
			}
		})
	}
	time.Sleep(time.Until(end))
	used := snapCPU().since(cpu0.Load(), pid, l.opt.databaseURL != "")
	wg.Wait()
	lat, _, ok, fails := merge(ws)
	secs := l.opt.duration.Seconds()
	return closedResult{
		Requests: len(lat), RequestsPerSec: float64(len(lat)) / secs,
		Accepted: ok, AcceptedPerSec: float64(ok) / secs,
		Errors: fails, Latency: percentiles(lat),
		CPU: used,
	}
}

// open runs the open loop: requests are due at exact intervals whatever the
// server is doing, and each one's latency counts from when it was due, so a
// server that stalls pays for every request queued behind the stall.
func (l *load) open(ctx context.Context, t *target, pid int) openResult {
	rate := int64(l.opt.rate)
	due := func(i int) time.Duration { return time.Duration(int64(i) * int64(time.Second) / rate) }
	warm := int(rate * int64(l.opt.warmup) / int64(time.Second))
	n := warm + int(rate*int64(l.opt.duration)/int64(time.Second))
	tr := newTransport(l.opt.openConns)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(ctx, l.opt.warmup+l.opt.duration+30*time.Second)
	defer cancel()

	// Open the connections before the clock starts, as a steady sender would
	// have them.
	var pre sync.WaitGroup
	for range l.opt.openConns {
		pre.Go(func() { l.send(ctx, c, t, newWorker(0)) })
	}
	pre.Wait()

	jobs := make(chan int, n) // never full: the schedule does not wait for the server
	start := time.Now().Add(10 * time.Millisecond)
	go func() {
		defer close(jobs)
		for i := range n {
			if d := time.Until(start.Add(due(i))); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			jobs <- i
		}
	}()
	var cpu0 atomic.Pointer[cpuSnap]
	time.AfterFunc(time.Until(start.Add(due(warm))), func() { cpu0.Store(snapCPU()) })
	ws := make([]*worker, l.opt.openConns)
	var wg sync.WaitGroup
	var last atomic.Int64 // the latest answer, in ns after start
	for i := range ws {
		w := newWorker(n/len(ws) + 64)
		ws[i] = w
		wg.Go(func() {
			for i := range jobs {
				at := start.Add(due(i))
				t0 := time.Now()
				o := l.send(ctx, c, t, w)
				t1 := time.Now()
				if i < warm {
					continue
				}
				w.record(t1.Sub(at), o)
				w.lag = append(w.lag, int64(t0.Sub(at)))
				for d := int64(t1.Sub(start)); ; {
					old := last.Load()
					if d <= old || last.CompareAndSwap(old, d) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	used := snapCPU().since(cpu0.Load(), pid, l.opt.databaseURL != "")
	lat, lag, ok, fails := merge(ws)
	if missing := n - warm - len(lat); missing > 0 {
		fails["never sent: phase timed out"] += missing
	}
	// The achieved rate counts from the first measured request's due time to
	// the last answer, so a server that falls behind shows a lower rate.
	span := time.Duration(last.Load()) - due(warm)
	r := openResult{
		Scheduled: n - warm, Accepted: ok, Failures: fails,
		Latency: percentiles(lat), SendLag: percentiles(lag),
		CPU: used,
	}
	if span > 0 {
		r.AchievedPer = float64(ok) / max(span.Seconds(), l.opt.duration.Seconds())
	}
	return r
}

func (w *worker) record(d time.Duration, outcome string) {
	w.lat = append(w.lat, int64(d))
	if outcome == "" {
		w.ok++
	} else {
		w.fails[outcome]++
	}
}

func merge(ws []*worker) (lat, lag []int64, ok int, fails map[string]int) {
	fails = map[string]int{}
	for _, w := range ws {
		lat = append(lat, w.lat...)
		lag = append(lag, w.lag...)
		ok += w.ok
		for k, v := range w.fails {
			fails[k] += v
		}
	}
	return lat, lag, ok, fails
}

// percentiles sorts the samples (nanoseconds) and reads nearest-rank
// percentiles off them, in milliseconds.
func percentiles(ns []int64) latency {
	if len(ns) == 0 {
		return latency{}
	}
	slices.Sort(ns)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ns)))) - 1
		return float64(ns[min(max(i, 0), len(ns)-1)]) / 1e6
	}
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	return latency{Mean: sum / float64(len(ns)) / 1e6, P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: float64(ns[len(ns)-1]) / 1e6}
}

func ms(d time.Duration) string { return fmtMS(msf(d)) }
func msf(d time.Duration) float64 {
	return float64(d) / 1e6
}

func fmtMS(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func printReport(w io.Writer, r *report) {
	db := "SQLite (embedded"
	if r.Database == "postgres" {
		db = "PostgreSQL (synchronous_commit on"
	} else if r.Durability == "strict" {
		db += ", synchronous=FULL"
	} else {
		db += ", synchronous=NORMAL"
	}
	fmt.Fprintf(w, "\npruuv-load: %s), %d stages in %d funnels, %d CPUs, %s\n", db, r.Stages, r.Funnels, r.CPUs, r.GoVersion)
	pg := r.Database == "postgres"
	cpuHead := "CPU: server\tload\tother\t"
	if pg {
		cpuHead = "CPU: server\tpostgres\tload\tother\t"
	}
	cpuCols := func(c cpu) string {
		if pg {
			return fmt.Sprintf("%.2f\t%.2f\t%.2f\t%.2f\t", c.Server, c.Postgres, c.Load, c.Other)
		}
		return fmt.Sprintf("%.2f\t%.2f\t%.2f\t", c.Server, c.Load, c.Other)
	}
	if c := r.Closed; c != nil {
		fmt.Fprintf(w, "\nClosed loop: %d connections, %.0fs measured, unique reference per request\n", c.Conns, c.Duration)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\treq/s\taccepted/s\tp50\tp90\tp99\tmax\terrors\t"+cpuHead)
		for _, row := range []struct {
			name string
			r    closedResult
		}{{"no-op", c.Noop}, {"pruuv", c.Pruuv}} {
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\n", row.name, row.r.RequestsPerSec, row.r.AcceptedPerSec,
				fmtMS(row.r.Latency.P50), fmtMS(row.r.Latency.P90), fmtMS(row.r.Latency.P99), fmtMS(row.r.Latency.Max),
				total(row.r.Errors), cpuCols(row.r.CPU))
		}
		tw.Flush()
		printFailures(w, "no-op", c.Noop.Errors)
		printFailures(w, "pruuv", c.Pruuv.Errors)
		fmt.Fprintf(w, "  ratio pruuv/no-op: %.3f×\n", c.Ratio)
		diskLine(w, pg, c.Pruuv.CPU.DiskWrite, c.Pruuv.Accepted)
	}
	if o := r.Open; o != nil {
		fmt.Fprintf(w, "\nOpen loop: %d/s for %.0fs, up to %d connections, latency from the scheduled send time\n", o.Rate, o.Duration, o.Conns)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "\tachieved/s\tp50\tp99\tp99.9\tmax\tfailures\tsend lag p99\t"+cpuHead)
		for _, row := range []struct {
			name string
			r    openResult
		}{{"no-op", o.Noop}, {"pruuv", o.Pruuv}} {
			fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", row.name, row.r.AchievedPer,
				fmtMS(row.r.Latency.P50), fmtMS(row.r.Latency.P99), fmtMS(row.r.Latency.P999), fmtMS(row.r.Latency.Max),
				total(row.r.Failures), fmtMS(row.r.SendLag.P99), cpuCols(row.r.CPU))
		}
		tw.Flush()
		printFailures(w, "no-op", o.Noop.Failures)
		printFailures(w, "pruuv", o.Pruuv.Failures)
		diskLine(w, pg, o.Pruuv.CPU.DiskWrite, o.Pruuv.Accepted)
	}
	m := r.Memory
	fmt.Fprintf(w, "\n(CPU: cores busy during the measured time, of %d; other = the rest of the machine, which should be ~0)\n", r.CPUs)
	fmt.Fprintf(w, "\nMemory: pruuv peak RSS (VmHWM) %.1f MB, RSS %.1f MB after start-up and %.1f MB at the end; no-op peak %.1f MB\n",
		float64(m.PruuvHWM)/1e6, float64(m.PruuvStartRSS)/1e6, float64(m.PruuvEndRSS)/1e6, float64(m.NoopHWM)/1e6)
	fmt.Fprintln(w, "\nTargets:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range r.Checks {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", verdict, c.Name, c.Target, c.Got)
	}
	tw.Flush()
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "\nwarning: %s", warn)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w)
	}
	if r.Pass {
		fmt.Fprintln(w, "\nRESULT: PASS")
	} else {
		fmt.Fprintln(w, "\nRESULT: FAIL")
	}
}

// diskLine shows SQLite's write amplification. PostgreSQL's figure is left
// to the JSON: its checkpointer writes on its own schedule, not per phase.
func diskLine(w io.Writer, pg bool, written int64, accepted int) {
	if pg || accepted == 0 {
		return
	}
	fmt.Fprintf(w, "  pruuv wrote %.1f KB towards the disk per accepted event (database, WAL and checkpoints)\n", float64(written)/float64(accepted)/1e3)
}

func printFailures(w io.Writer, name string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	fmt.Fprintf(w, "  %s failures: %s\n", name, strings.Join(parts, ", "))
}

// noopBody is the no-op server's answer, shaped like pruuv's acceptance.
var noopBody = []byte(`{"received":true,"event_id":"0190c2d4-5e6f-7a8b-9c0d-1e2f3a4b5c6d"}`)

// serveNoop is the hidden `noop` mode: the cheapest Go HTTP server that
// answers the Webhook API's route, as the baseline pruuv is compared with.
func serveNoop(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("pruuv-load noop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/webhooks/funnel/{stageId}", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 64<<10))
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(noopBody)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ready"}`)) })
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}
