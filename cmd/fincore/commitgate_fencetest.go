//go:build fencetest

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fincore/fincore/ledger"
)

// This file is compiled only into the binary that the fencing test builds (go build -tags
// fencetest). With FINCORE_TEST_COMMIT_GATE=DIR, a group commit holding a transfer whose id
// starts with "gated-" stops just before it reaches storage: it creates DIR/reached and waits
// until DIR/release exists. The test pauses the process there, after every check the writer
// makes before committing, so that what the resumed process sends is judged by storage alone.
func gateCommits(st ledger.Store) ledger.Store {
	dir := os.Getenv("FINCORE_TEST_COMMIT_GATE")
	if dir == "" {
		return st
	}
	return gatedStore{Store: st, dir: dir}
}

type gatedStore struct {
	ledger.Store
	dir string
}

func (g gatedStore) Commit(ctx context.Context, token int64, b *ledger.Batch) error {
	for _, t := range b.Transfers {
		if strings.HasPrefix(t.ID, "gated-") {
			os.WriteFile(filepath.Join(g.dir, "reached"), []byte(t.ID), 0o600)
			for {
				if _, err := os.Stat(filepath.Join(g.dir, "release")); err == nil {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			break
		}
	}
	return g.Store.Commit(ctx, token, b)
}
