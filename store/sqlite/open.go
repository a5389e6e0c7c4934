package sqlite

import (
	"github.com/fincore/fincore/ledger"
)

// ownedLedger closes its DB with the store.
type ownedLedger struct {
	*LedgerStore
	db *DB
}

func (o ownedLedger) Close() error { return o.db.Close() }

// OpenLedger opens the database in dir and returns its ledger store; closing the store
// closes the database.
func OpenLedger(dir string) (ledger.Store, error) {
	db, err := Open(dir)
	if err != nil {
		return nil, err
	}
	ls, err := db.Ledger()
	if err != nil {
		db.Close()
		return nil, err
	}
	return ownedLedger{ls, db}, nil
}
