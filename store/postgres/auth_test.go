package postgres

import (
	"context"
	"testing"

	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/storetest"
)

func openAuth(t testing.TB) (auth.Store, func(ctx context.Context, sql string) error) {
	db := openDB(t, pgtest.URL(t))
	if err := db.Migrate(bg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db.Auth(), func(ctx context.Context, sql string) error {
		_, err := db.pool.Exec(ctx, sql)
		return err
	}
}

func TestAuthStore(t *testing.T) { storetest.TestAuthStore(t, openAuth) }

func TestAuthService(t *testing.T) { storetest.TestAuthService(t, openAuth) }

// The ledger store hands out the auth store of its database.
var _ auth.Provider = ownedLedger{}
