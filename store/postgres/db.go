// Package postgres is fincore's PostgreSQL storage: the system of record when a deployment
// outgrows one machine. It talks to the server through a pgx connection pool, keeps
// synchronous commit on so that nothing acknowledged is lost, and keeps its SQL within what
// CockroachDB and YugabyteDB also accept where that is reasonable.
//
// The schema mirrors the SQLite adapter's table for table and column for column; its
// migrations are embedded and applied by Migrate.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fincore/fincore/store/migration"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open PostgreSQL database: a connection pool.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to the database at url, a PostgreSQL URL or keyword/value string as pgx
// accepts it. Parameters pgx does not know, such as search_path, are sent to the server as
// run-time parameters, so a URL with search_path=myschema uses that schema. Open refuses a URL
// that turns synchronous commit off, and turns it back on for connections whose server
// default has it off: the ledger acknowledges only what is durable. Unless the URL sets
// pool_max_conns, the pool holds up to max(8, 4 × GOMAXPROCS) connections.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if v, ok := cfg.ConnConfig.RuntimeParams["synchronous_commit"]; ok && strings.EqualFold(v, "off") {
		return nil, errors.New("postgres: synchronous_commit=off is not allowed: the ledger needs durable commits")
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default, max(4, cores), is small for a server whose writer, loader and
		// many request handlers share the pool.
		cfg.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !ok {
		// pgx prepares and caches statements per connection. With the default plan cache
		// mode PostgreSQL settles on a generic plan after five executions; a plan made while
		// the journal was small (a sequential scan) then stays until the next ANALYZE, and an
		// id look-up scans the whole journal. Planning every execution sees the table's
		// current size; it costs tens of microseconds.
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	cfg.AfterConnect = ensureSynchronousCommit
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	return &DB{pool: pool}, nil
}

// ensureSynchronousCommit turns synchronous commit on for a new connection whose server,
// database or role default has it off.
func ensureSynchronousCommit(ctx context.Context, c *pgx.Conn) error {
	var v string
	if err := c.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
		return fmt.Errorf("postgres: read synchronous_commit: %w", err)
	}
	if strings.EqualFold(v, "off") {
		if _, err := c.Exec(ctx, `SET synchronous_commit = on`); err != nil {
			return fmt.Errorf("postgres: turn synchronous_commit on: %w", err)
		}
	}
	return nil
}

// Pool returns the database's connection pool, for other domains' stores.
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// Close closes every connection of the pool, waiting for those in use to be released.
func (d *DB) Close() {
	if d.pool != nil {
		d.pool.Close()
	}
}

// Migration is one embedded schema change.
type Migration = migration.Migration

// Migrations lists the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	return migration.Load(migrations, "migrations")
}

// Migrate applies the embedded migrations that the database lacks, each in its own
// transaction together with its row in schema_migrations. It is idempotent, and safe when
// several processes run it at once: each migration transaction first locks schema_migrations,
// so one process applies a migration and the others find it applied.
func (d *DB) Migrate(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	return d.migrate(ctx, ms)
}

func (d *DB) migrate(ctx context.Context, ms []Migration) error {
	if err := d.createMigrationsTable(ctx); err != nil {
		return err
	}
	for _, m := range ms {
		if err := d.applyMigration(ctx, m); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// createMigrationsTable creates schema_migrations if it does not exist. Two processes doing so
// at once can collide in the catalog even with IF NOT EXISTS (a unique violation on the
// catalog, "relation already exists" or "type already exists"); the loser retries and finds it.
func (d *DB) createMigrationsTable(ctx context.Context) error {
	const q = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL)`
	var err error
	for range 5 {
		if _, err = d.pool.Exec(ctx, q); err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "23505" && pgErr.Code != "42P07" && pgErr.Code != "42710") {
			break
		}
	}
	return fmt.Errorf("postgres: create schema_migrations: %w", err)
}

func (d *DB) applyMigration(ctx context.Context, m Migration) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// The lock is held to the end of the transaction: a second process running Migrate waits
	// here, then sees the version applied.
	if _, err := tx.Exec(ctx, `LOCK TABLE schema_migrations IN EXCLUSIVE MODE`); err != nil {
		return err
	}
	var applied bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&applied); err != nil {
		return err
	}
	if applied {
		return nil
	}
	// No arguments: pgx sends the file with the simple protocol, which runs every statement.
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.Version, m.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// SchemaVersion returns the highest applied migration version, or 0 for a database that was
// never migrated.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	if err := d.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int64
	if err := d.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	return int(v), nil
}
