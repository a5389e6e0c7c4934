package service

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/clock"
	"github.com/fincore/fincore/platform/outbox"
	"github.com/fincore/fincore/store/postgres"
	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/sqlite"
)

// factory opens (and reopens, as a restarted process would) one fresh storage.
type factory func(t testing.TB) func() ledger.Store

func sqliteFactory(t testing.TB) func() ledger.Store {
	dir := t.TempDir()
	return func() ledger.Store {
		st, err := sqlite.OpenLedger(dir)
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		return st
	}
}

func postgresFactory(t testing.TB) func() ledger.Store {
	url := pgtest.URL(t)
	migrated := false
	return func() ledger.Store {
		st, err := postgres.OpenLedger(context.Background(), url, !migrated)
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		migrated = true
		return st
	}
}

// onBackends runs fn on SQLite and on PostgreSQL (skipped without FINCORE_TEST_POSTGRES).
func onBackends(t *testing.T, fn func(t *testing.T, f factory)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteFactory) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgresFactory) })
}

// env is the service over a real engine on real storage, with a settable clock.
type env struct {
	t     testing.TB
	open  func() ledger.Store
	st    ledger.Store
	eng   *ledger.Engine
	svc   *Service
	clock *clock.Fake
	cfg   Config
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEnv(t testing.TB, f factory, cfg Config) *env {
	e := &env{t: t, open: f(t), clock: clock.NewFake(time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)), cfg: cfg}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	e.st = e.open()
	eng, err := ledger.Open(context.Background(), e.st, ledger.Config{Now: e.clock.Now, ExpiryInterval: time.Hour, Logger: quiet})
	if err != nil {
		e.t.Fatalf("open engine: %v", err)
	}
	e.eng = eng
	cfg := e.cfg
	cfg.Now, cfg.Logger = e.clock.Now, quiet
	if e.svc, err = New(eng, e.st, cfg); err != nil {
		e.t.Fatalf("new service: %v", err)
	}
}

func (e *env) stop() {
	if e.eng != nil {
		e.eng.Close()
		checkEventSubjects(e.t, e.st)
		e.st.Close()
		e.eng = nil
	}
}

// checkEventSubjects fails t if the service emitted an event whose subject is not in
// EventSubjects (serve makes sure a stream captures each of those, and only those).
func checkEventSubjects(t testing.TB, st ledger.Store) {
	subjects, err := outbox.Subjects(context.Background(), st.(outbox.Provider).Outbox())
	if err != nil {
		t.Error(err)
	}
	for s := range subjects {
		if !slices.Contains(EventSubjects, s) && !slices.Contains(ledger.EventSubjects, s) {
			t.Errorf("an event on %s, which is not in EventSubjects", s)
		}
	}
}

// restart closes the engine and storage and opens them again, as a new process would.
func (e *env) restart() {
	e.stop()
	e.start()
}

// day moves the clock to 10:00 on date s.
func (e *env) day(s string) {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		e.t.Fatal(err)
	}
	e.clock.Advance(d.Add(10 * time.Hour).Sub(e.clock.Now()))
}

// balance is an account's posted debits minus credits (0 for a missing account).
func (e *env) balance(id string) int64 {
	a, err := e.st.GetAccount(context.Background(), id)
	if err != nil {
		return 0
	}
	return a.Balances.DebitsPosted - a.Balances.CreditsPosted
}

// openLine approves an application for customer with a salaried income that prices tier A
// (5,000.00 at 10 %) and returns the line.
func (e *env) openLine(customer string) *Line {
	e.t.Helper()
	a, _, err := e.svc.Apply(context.Background(), ApplicationRequest{ID: "app_" + customer, CustomerID: customer, Name: "Test",
		IDNumber: validID("19900307"), MonthlyIncome: 2_500_000})
	if err != nil || a.Decision != Approved {
		e.t.Fatalf("apply: %+v %v", a, err)
	}
	l, err := e.svc.Line(context.Background(), a.Account)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// validID makes a valid ID number for a birth date YYYYMMDD.
func validID(birth string) string {
	base := "110105" + birth + "123"
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := range 17 {
		sum += int(base[i]-'0') * weights[i]
	}
	return base + string("10X98765432"[sum%11])
}
