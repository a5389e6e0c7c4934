package sqlite

import (
	"context"
	"testing"

	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/store/storetest"
)

// openAuth opens a fresh database in a temporary directory and returns its auth store.
func openAuth(t testing.TB) (auth.Store, func(ctx context.Context, sql string) error) {
	t.Helper()
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db.Auth(), func(ctx context.Context, sql string) error {
		_, err := db.write.ExecContext(ctx, sql)
		return err
	}
}

func TestAuthStore(t *testing.T) { storetest.TestAuthStore(t, openAuth) }

func TestAuthService(t *testing.T) { storetest.TestAuthService(t, openAuth) }

// The ledger store hands out the auth store of its database.
var _ auth.Provider = ownedLedger{}
