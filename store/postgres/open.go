package postgres

import (
	"context"

	"github.com/fincore/fincore/ledger"
)

// ownedLedger closes its DB with the store.
type ownedLedger struct {
	*LedgerStore
	db *DB
}

func (o ownedLedger) Close() error {
	o.db.Close()
	return nil
}

// OpenLedger connects to the database at url, applies pending migrations if migrate is set,
// and returns its ledger store; closing the store closes the connection pool.
func OpenLedger(ctx context.Context, url string, migrate bool) (ledger.Store, error) {
	db, err := Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := db.Migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	ls, err := db.Ledger()
	if err != nil {
		db.Close()
		return nil, err
	}
	return ownedLedger{ls, db}, nil
}
