// Package sqlite is fincore's embedded storage: SQLite through a pure-Go driver, in WAL mode
// with synchronous=FULL so that nothing acknowledged is lost on a crash or power cut.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/fincore/fincore/store/migration"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open embedded database: one connection for the single writer, a pool for readers,
// and one connection that checkpoints the WAL in the background.
type DB struct {
	Path  string
	write *sql.DB
	read  *sql.DB
	ckpt  *sql.DB
	lock  *os.File
	// stopCkpt stops the checkpointer; ckptDone is closed when it has stopped.
	stopCkpt func()
	ckptDone chan struct{}
	// riskLog holds the risk log's insert statements (RiskStore.AppendLog).
	riskLog riskLogStmts
}

// CheckpointEvery is how often the background checkpointer copies the WAL into the database.
const CheckpointEvery = 200 * time.Millisecond

// walAutoCheckpoint is the WAL size, in pages, at which a commit of the writer checkpoints
// by itself: a safety net for a checkpointer that falls behind (SQLite's default is 1,000).
const walAutoCheckpoint = 65536

// Open opens (creating if needed) the database in dir, takes the directory's lock so that no
// other process uses it, and applies pending migrations.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "fincore.db")
	d := &DB{Path: path, lock: lock}
	// Checkpoints — copying the WAL into the database file, with an fsync — run on their own
	// connection every CheckpointEvery (checkpoints), not inside a commit of the writer: an
	// automatic checkpoint of 64 MiB made the commit that triggered it last 20–50 ms, the
	// tail of every request's latency (BENCHMARKS.md, "Payments (issue 4)"). Index pages
	// that many group commits rewrite are still copied once per checkpoint rather than once
	// per commit. The writer checkpoints by itself only past walAutoCheckpoint pages.
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(OFF)&_pragma=temp_store(MEMORY)"
	dsn := "file:" + url.PathEscape(path) + "?" + pragmas
	if d.write, err = sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma=cache_size(-65536)&_pragma=wal_autocheckpoint("+strconv.Itoa(walAutoCheckpoint)+")"); err != nil {
		d.Close()
		return nil, err
	}
	d.write.SetMaxOpenConns(1)
	d.write.SetMaxIdleConns(1)
	d.write.SetConnMaxLifetime(0)
	if err := d.migrate(context.Background()); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.releaseDeadLeases(context.Background()); err != nil {
		d.Close()
		return nil, fmt.Errorf("release the leases of earlier processes: %w", err)
	}
	if d.read, err = sql.Open("sqlite", dsn+"&_pragma=query_only(ON)"); err != nil {
		d.Close()
		return nil, err
	}
	n := 2 * runtime.GOMAXPROCS(0)
	d.read.SetMaxOpenConns(n)
	d.read.SetMaxIdleConns(n)
	if d.ckpt, err = sql.Open("sqlite", dsn); err != nil {
		d.Close()
		return nil, err
	}
	d.ckpt.SetMaxOpenConns(1)
	d.ckpt.SetMaxIdleConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	d.stopCkpt, d.ckptDone = cancel, make(chan struct{})
	go d.checkpoints(ctx)
	return d, nil
}

// checkpoints copies the WAL into the database every CheckpointEvery, without waiting for
// readers or the writer (PASSIVE: what a reader still needs stays in the WAL for the next
// round). The writer then starts the WAL over once everything in it has been copied.
func (d *DB) checkpoints(ctx context.Context) {
	defer close(d.ckptDone)
	t := time.NewTicker(CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		if err := d.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			slog.Default().Warn("sqlite: background checkpoint", "path", d.Path, "err", err)
		}
	}
}

// Checkpoint copies what it can of the WAL into the database now (a PASSIVE checkpoint).
func (d *DB) Checkpoint(ctx context.Context) error {
	var busy, logFrames, copied int
	return d.ckpt.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &copied)
}

// Close closes the database and releases the directory lock.
func (d *DB) Close() error {
	if d.stopCkpt != nil {
		d.stopCkpt()
		<-d.ckptDone
		d.stopCkpt = nil
	}
	var first error
	for _, db := range []*sql.DB{d.ckpt, d.read, d.write} {
		if db != nil {
			if err := db.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	if d.lock != nil {
		unlockDir(d.lock)
		d.lock = nil
	}
	return first
}

// Migration is one embedded schema change.
type Migration = migration.Migration

// Migrations lists the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	return migration.Load(migrations, "migrations")
}

func (d *DB) migrate(ctx context.Context) error {
	if _, err := d.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	ms, err := Migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		tx, err := d.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
			tx.Rollback()
			return err
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}
