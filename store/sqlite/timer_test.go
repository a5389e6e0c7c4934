package sqlite

import (
	"testing"

	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/store/storetest"
)

// OpenTimers opens a fresh database in a temporary directory and returns its timer store.
func OpenTimers(t testing.TB) timer.Store {
	t.Helper()
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	ts, err := db.Timers()
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestTimerStore(t *testing.T) { storetest.TestTimerStore(t, OpenTimers) }

func TestTimerService(t *testing.T) { storetest.TestTimerService(t, OpenTimers) }
