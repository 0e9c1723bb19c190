// Package store keeps Pruuv's data in SQLite (the embedded default) or
// PostgreSQL (several processes sharing one database). Both run the same SQL
// wherever the dialects agree; the few places they differ are in dialect.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// ErrNotFound means the row asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict means a write broke a uniqueness rule (a name already taken).
var ErrConflict = errors.New("already exists")

//go:embed migrations
var migrations embed.FS

// Options says which database to open and how.
type Options struct {
	// DatabaseURL selects PostgreSQL when it starts with postgres:// or
	// postgresql://; empty means SQLite in DataDir.
	DatabaseURL string
	DataDir     string
	// Relaxed lowers SQLite to synchronous=NORMAL: faster, but the last commits
	// may be lost on an OS crash or power loss (never on a process crash).
	Relaxed bool
	// MaxConns is the PostgreSQL pool size (default 12). Each process needs
	// few: ingest commits in batches, and processes share max_connections.
	MaxConns int
	Logger   *slog.Logger
}

// SQLiteFile is the database file's name inside the data directory.
const SQLiteFile = "pruuv.db"

// Store is an open database. Writes go through w; reads that may run beside a
// write go through r (the same pool on PostgreSQL).
type Store struct {
	w, r    *sql.DB
	dialect dialect
	log     *slog.Logger
	hot     hotStatements

	ckpt     *sql.DB // SQLite: the background checkpointer's connection
	ckptStop chan struct{}
	ckptDone chan struct{}
}

type dialect struct {
	name string
	// lockStage serialises writers of one stage inside a transaction; SQLite
	// needs nothing since BEGIN IMMEDIATE already admits a single writer.
	lockStage  string
	isConflict func(error) bool
}

// Postgres reports whether the store runs on PostgreSQL.
func (s *Store) Postgres() bool { return s.dialect.name == "postgres" }

// Open connects, checks the durability settings and brings the schema up to
// date, refusing a schema newer than this binary knows.
func Open(ctx context.Context, opt Options) (*Store, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var s *Store
	var err error
	switch {
	case strings.HasPrefix(opt.DatabaseURL, "postgres://"), strings.HasPrefix(opt.DatabaseURL, "postgresql://"):
		s, err = openPostgres(ctx, opt.DatabaseURL, cmp.Or(opt.MaxConns, 12))
	case opt.DatabaseURL == "":
		s, err = openSQLite(ctx, opt.DataDir, opt.Relaxed)
	default:
		return nil, fmt.Errorf("database URL must start with postgres:// or postgresql:// (or be empty for the embedded SQLite)")
	}
	if err != nil {
		return nil, err
	}
	s.log = log
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepareHot(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.ckpt != nil {
		s.ckptStop, s.ckptDone = make(chan struct{}), make(chan struct{})
		go s.checkpointer(CheckpointEvery)
	}
	return s, nil
}

// CheckpointEvery is how often the background connection copies committed
// WAL pages into the SQLite database file.
const CheckpointEvery = 250 * time.Millisecond

// checkpointer runs PASSIVE checkpoints, which never block the writer or
// readers; the writer restarts the WAL from its start once a checkpoint has
// caught up, so the WAL stays small.
func (s *Store) checkpointer(every time.Duration) {
	defer close(s.ckptDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ckptStop:
			return
		case <-t.C:
			if _, err := s.ckpt.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
				s.log.Warn("checkpoint failed", "err", err)
			}
		}
	}
}

func openSQLite(ctx context.Context, dir string, relaxed bool) (*Store, error) {
	if dir == "" {
		return nil, errors.New("data directory is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if err := registerReportScan(); err != nil {
		return nil, fmt.Errorf("register report function: %w", err)
	}
	sync := "FULL"
	if relaxed {
		sync = "NORMAL"
	}
	path := filepath.Join(dir, SQLiteFile)
	q := url.Values{}
	// The writer never checkpoints: copying WAL pages into the database and
	// syncing it would sit on the commit path. A background connection does it.
	for _, p := range []string{"journal_mode(WAL)", "synchronous(" + sync + ")", "busy_timeout(10000)", "foreign_keys(1)",
		"wal_autocheckpoint(0)",
		// A multi-row insert keeps a statement journal; in memory it costs no
		// file writes.
		"temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	// Only the writer gets a large page cache: it touches index pages all
	// over the database, while readers look up a few stage rows.
	w, err := sql.Open("sqlite", dsn+"&_pragma=cache_size(-16000)")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One writer connection: SQLite admits one writer at a time anyway, and a
	// single connection turns contention into an orderly queue.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	ck, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	ck.SetMaxOpenConns(1)
	s := &Store{w: w, r: r, ckpt: ck, dialect: dialect{name: "sqlite", isConflict: sqliteConflict}}
	var mode string
	var level int
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&level); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	want := 2 // FULL
	if relaxed {
		want = 1
	}
	if mode != "wal" || level != want {
		s.Close()
		return nil, fmt.Errorf("sqlite %s: journal_mode=%s synchronous=%d, want wal and %d; is the file on a local disk?", path, mode, level, want)
	}
	return s, nil
}

func sqliteConflict(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func openPostgres(ctx context.Context, dsn string, conns int) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{w: db, r: db, dialect: dialect{name: "postgres", isConflict: pgConflict}}
	var commit string
	if err := db.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&commit); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if commit == "off" {
		db.Close()
		return nil, errors.New("postgres has synchronous_commit=off: acknowledged events could be lost on a crash; set it to on for this database or role")
	}
	return s, nil
}

func pgConflict(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SQLSTATE 23505")
}

// Close releases the database.
func (s *Store) Close() error {
	if s.ckptStop != nil {
		close(s.ckptStop)
		<-s.ckptDone
		s.ckptStop = nil
	}
	if s.ckpt != nil {
		s.ckpt.Close()
	}
	s.hot.close()
	err := s.w.Close()
	if s.r != s.w {
		if rerr := s.r.Close(); err == nil {
			err = rerr
		}
	}
	return err
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Dialect names the database in use: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect.name }

// wrap translates driver errors into the store's sentinels.
func (s *Store) wrap(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case s.dialect.isConflict(err):
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// scanner is a row or rows: what the scan functions read one row from.
type scanner interface{ Scan(...any) error }

// queryList runs a query on the readers and scans each row with scan; what
// names the query in errors.
func queryList[T any](ctx context.Context, s *Store, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.wrap(err, what)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.wrap(err, what)
		}
		out = append(out, v)
	}
	return out, s.wrap(rows.Err(), what)
}

// writeTx runs fn in a write transaction: BEGIN IMMEDIATE on SQLite, READ
// COMMITTED on PostgreSQL. READ COMMITTED is required, not merely the default:
// under REPEATABLE READ the snapshot predates the stage lock and the hourly
// counter over-accepts.
func (s *Store) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	opts := &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	if s.dialect.name == "sqlite" {
		opts = nil // the DSN makes this BEGIN IMMEDIATE
	}
	tx, err := s.w.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		// The outcome may be unknown (a connection lost during COMMIT on
		// PostgreSQL): callers answer 500, and a retry within the dedup
		// window is then a duplicate if the commit did happen.
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func (s *Store) loadMigrations() ([]migration, error) {
	dir := "migrations/" + s.dialect.name
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(migrations, dir+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations must be numbered 1, 2, 3…; found %s at position %d", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the newest migration this binary carries.
func (s *Store) SchemaVersion() int {
	ms, _ := s.loadMigrations()
	return len(ms)
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := s.loadMigrations()
	if err != nil {
		return err
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		if s.dialect.name == "postgres" {
			// Several processes may start at once: one migrates, the rest wait.
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7291)"); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if current > len(ms) {
			return fmt.Errorf("the database schema is at version %d but this pruuv knows only %d: run a newer pruuv", current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
				m.version, m.name, time.Now().UnixMilli()); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			s.log.Info("applied migration", "migration", m.name, "dialect", s.dialect.name)
		}
		return nil
	})
}

// ErrSecretMismatch means the database was set up with another secret key.
var ErrSecretMismatch = errors.New("the secret key does not match the one this database was created with")

// CheckSecret records the secret key's fingerprint on first use and afterwards
// refuses a different key, which would otherwise reject every webhook token.
func (s *Store) CheckSecret(ctx context.Context, check string) error {
	if _, err := s.w.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('secret_check', $1) ON CONFLICT (key) DO NOTHING", check); err != nil {
		return s.wrap(err, "check secret key")
	}
	var stored string
	if err := s.w.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'secret_check'").Scan(&stored); err != nil {
		return s.wrap(err, "check secret key")
	}
	if stored != check {
		return ErrSecretMismatch
	}
	return nil
}
