// Package pgtest gives tests a private PostgreSQL schema. Set FINCORE_TEST_POSTGRES to the URL
// of a database the tests may create schemas in, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable; without it, tests that need
// PostgreSQL skip.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the environment variable that holds the test database's URL.
const EnvVar = "FINCORE_TEST_POSTGRES"

// URL creates a fresh schema with a random name in the test database and returns a URL whose
// connections use it (search_path=<schema>, sent as a run-time parameter, which every pgx
// client honours, in this process or another). The schema and everything in it are dropped
// when the test ends. If FINCORE_TEST_POSTGRES is unset, the test is skipped.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		t.Skipf("%s is not set: skipping a PostgreSQL test", EnvVar)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("pgtest: random schema name: %v", err)
	}
	schema := "fincore_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, base, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema in %s: %v", redact(base), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := exec(ctx, base, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Logf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := WithSearchPath(base, schema)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// WithSearchPath returns base (a URL or a keyword/value connection string) with its
// search_path set to schema.
func WithSearchPath(base, schema string) (string, error) {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return base + " search_path=" + schema, nil
}

func exec(ctx context.Context, connString, sql string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// redact hides a password in a URL for error messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return "the test database"
	}
	return u.Redacted()
}
