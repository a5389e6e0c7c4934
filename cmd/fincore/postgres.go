package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/postgres"
	"github.com/fincore/fincore/store/sqlite"
)

func openPostgresLedger(ctx context.Context, url string, migrate bool) (ledger.Store, error) {
	return postgres.OpenLedger(ctx, url, migrate)
}

// cmdMigrate applies pending migrations. Embedded storage migrates itself at every start;
// the command exists for it too, for symmetry and for scripted upgrades.
func cmdMigrate(args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx := context.Background()
	if sf.postgres != "" {
		db, err := postgres.Open(ctx, sf.postgres)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "migrate: PostgreSQL schema is up to date")
		return nil
	}
	if sf.data == "" {
		return errors.New("give --postgres URL or --data DIR")
	}
	db, err := sqlite.Open(sf.data)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "migrate: embedded schema in %s is up to date\n", sf.data)
	return db.Close()
}
