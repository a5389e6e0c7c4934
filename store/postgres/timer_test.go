package postgres

import (
	"testing"

	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/storetest"
)

func openTimers(t testing.TB) timer.Store {
	db := openDB(t, pgtest.URL(t))
	if err := db.Migrate(bg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db.Timers()
}

func TestTimerStore(t *testing.T) { storetest.TestTimerStore(t, openTimers) }

func TestTimerService(t *testing.T) { storetest.TestTimerService(t, openTimers) }
