package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/sqlite"
)

// storeFlags are the flags that choose the storage backend.
type storeFlags struct {
	data     string
	postgres string
	migrate  bool
}

func (s *storeFlags) register(fs *flag.FlagSet, withMigrate bool) {
	fs.StringVar(&s.data, "data", "./fincore-data", "data directory of the embedded (SQLite) storage")
	fs.StringVar(&s.postgres, "postgres", "", "PostgreSQL URL; use PostgreSQL instead of embedded storage")
	if withMigrate {
		fs.BoolVar(&s.migrate, "migrate", false, "with --postgres: apply pending migrations at start")
	}
}

func (s *storeFlags) backend() string {
	if s.postgres != "" {
		return "postgres"
	}
	return "sqlite"
}

// openLedgerStore opens the chosen backend. Embedded storage always applies its migrations;
// PostgreSQL only with migrate.
func (s *storeFlags) openLedgerStore(ctx context.Context, migrate bool) (ledger.Store, error) {
	if s.postgres != "" {
		return openPostgresLedger(ctx, s.postgres, migrate)
	}
	if s.data == "" {
		return nil, errors.New("--data must name a directory")
	}
	return sqlite.OpenLedger(s.data)
}

// parseFlags parses args and refuses positional arguments, which no subcommand takes.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}
