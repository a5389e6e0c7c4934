// Package sqlite is fincore's embedded storage: SQLite through a pure-Go driver, in WAL mode
// with synchronous=FULL so that nothing acknowledged is lost on a crash or power cut.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/fincore/fincore/store/migration"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open embedded database: one connection for the single writer, a pool for readers.
type DB struct {
	Path  string
	write *sql.DB
	read  *sql.DB
	lock  *os.File
}

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
	// wal_autocheckpoint: checkpoint every 16,384 pages (64 MiB) rather than SQLite's 1,000.
	// Index pages that many group commits rewrite are then copied into the database once per
	// checkpoint instead of again and again: +20% ledger throughput (BENCHMARKS.md).
	pragmas := "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(OFF)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(16384)"
	dsn := "file:" + url.PathEscape(path) + "?" + pragmas
	if d.write, err = sql.Open("sqlite", dsn+"&_txlock=immediate&_pragma=cache_size(-65536)"); err != nil {
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
	return d, nil
}

// Close closes the database and releases the directory lock.
func (d *DB) Close() error {
	var first error
	for _, db := range []*sql.DB{d.read, d.write} {
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
