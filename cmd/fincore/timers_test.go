package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/store/sqlite"
)

// waitFor polls cond until it holds or a 10-second deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The timer service as serve wires it, on embedded storage and the embedded bus: in-process
// handlers by name, bus timers published on their subject with a de-duplication id, and a
// timer that came due while the service was down firing at the next start.
func TestTimerServiceWiring(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	b, err := bus.Start(ctx, bus.Options{DataDir: filepath.Join(dir, "nats"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fired := make(chan string, 16)
	start := func() (ledger.Store, *timer.Service) {
		t.Helper()
		st, err := sqlite.OpenLedger(dir)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := newTimerService(ctx, st, b, obs.New(), log)
		if err != nil {
			t.Fatal(err)
		}
		svc.Register("test", func(_ context.Context, tm timer.Timer) error { fired <- tm.ID; return nil })
		if err := svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return st, svc
	}
	st, svc := start()
	now := time.Now()
	for _, tm := range []timer.Timer{
		{ID: "h1", Handler: "test", FireAt: now},
		{ID: "b1", Handler: timer.BusPrefix + "timer.test", FireAt: now, Payload: []byte("hello")},
	} {
		if err := svc.Schedule(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	if id := <-fired; id != "h1" {
		t.Fatalf("fired %s, want h1", id)
	}
	stream, err := b.JetStream().Stream(ctx, timerStream)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bus timer published", func() bool {
		m, err := stream.GetLastMsgForSubject(ctx, "timer.test")
		if err != nil {
			return false
		}
		if string(m.Data) != "hello" || m.Header.Get("Nats-Msg-Id") != fmt.Sprintf("timer:b1:%d", now.UnixNano()) {
			t.Fatalf("published %q with header %v", m.Data, m.Header)
		}
		return true
	})

	// h2 comes due a second from now, while the service is stopped.
	due := time.Now().Add(time.Second)
	if err := svc.Schedule(ctx, timer.Timer{ID: "h2", Handler: "test", FireAt: due}); err != nil {
		t.Fatal(err)
	}
	svc.Stop()
	st.Close()
	time.Sleep(time.Until(due))
	select {
	case id := <-fired:
		t.Fatalf("%s fired while the service was stopped", id)
	default:
	}
	st, svc = start()
	defer st.Close()
	defer svc.Stop()
	select {
	case id := <-fired:
		if id != "h2" {
			t.Fatalf("fired %s, want h2", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("overdue timer did not fire after the restart")
	}
	ts := st.(timer.Provider).Timers()
	waitFor(t, "h2 marked done", func() bool {
		r, ok, err := ts.Get(ctx, "h2")
		return err == nil && ok && !r.Pending()
	})
}

// Through `fincore serve`: a pending transfer expires on its timer while the server runs,
// and one that comes due while the server is down (killed with SIGKILL) expires promptly
// after the restart; both release the reserved amount.
func TestServeExpiresPendingOnTimers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server as a separate process")
	}
	// Without the statement fetches, the credit end-of-day timer is the only other one.
	srv := startServer(t, "--data", t.TempDir(), "--no-recon-fetch")
	defer func() {
		if srv.cmd.ProcessState == nil {
			srv.kill()
		}
	}()
	post := func(path string, body map[string]any) {
		t.Helper()
		if st, b, err := doJSON("POST", srv.url(path), body); err != nil || st != 201 {
			t.Fatalf("POST %s: %d %s %v", path, st, b, err)
		}
	}
	pending := func() int64 {
		t.Helper()
		st, b, err := doJSON("GET", srv.url("/v1/accounts/a"), nil)
		var acct ledger.Account
		if err != nil || st != 200 || json.Unmarshal(b, &acct) != nil {
			t.Fatalf("GET account: %d %s %v", st, b, err)
		}
		return acct.Balances.DebitsPending
	}
	hold := func(id string, amount int64, timeout int) time.Time {
		t.Helper()
		post("/v1/transfers", map[string]any{"id": id, "debit_account_id": "a", "credit_account_id": "b",
			"amount": amount, "currency": "CNY", "pending": true, "timeout_seconds": timeout})
		return time.Now().Add(time.Duration(timeout) * time.Second)
	}
	post("/v1/accounts", map[string]any{"id": "a", "currency": "CNY"})
	post("/v1/accounts", map[string]any{"id": "b", "currency": "CNY"})

	hold("p1", 10, 1)
	if got := pending(); got != 10 {
		t.Fatalf("debits pending %d after the hold", got)
	}
	waitFor(t, "p1 expired by its timer", func() bool { return pending() == 0 })
	if st, b, err := doJSON("GET", srv.url("/v1/transfers/"+url.PathEscape(ledger.ExpiryID("p1"))), nil); err != nil || st != 200 {
		t.Fatalf("expiry record of p1: %d %s %v", st, b, err)
	}

	// The timer is marked done just after its handler returned: poll the metrics.
	waitFor(t, "timer metrics of p1", func() bool {
		resp, err := client.Get(srv.url("/metrics"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			"\n" + `fincore_timer_fires_total{handler="ledger.expire",outcome="ok"} 1` + "\n",
			"\nfincore_timer_pending 1\n", // the credit end-of-day timer of today
			"\nfincore_timer_window_max 100000\n",
			"\nfincore_timer_lateness_seconds_count 1\n",
		} {
			if !strings.Contains(string(body), want) {
				return false
			}
		}
		return true
	})

	due := hold("p2", 20, 1)
	srv.kill()
	time.Sleep(time.Until(due.Add(100 * time.Millisecond)))
	srv.start()
	waitFor(t, "p2 expired after the restart", func() bool { return pending() == 0 })
	srv.kill()
}
