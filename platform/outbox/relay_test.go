package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/outbox"
	"github.com/fincore/fincore/store/sqlite"
	"github.com/fincore/fincore/store/storetest"
)

var ctx = context.Background()

// checkFor polls cond until it holds or the deadline passes.
func checkFor(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type rig struct {
	st  ledger.Store
	ob  outbox.Store
	eng *ledger.Engine
	bus *bus.Bus
}

func newRig(t *testing.T, relay func(outbox.Store, *bus.Bus) *outbox.Relay) (*rig, *outbox.Relay) {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Start(ctx, bus.Options{DataDir: t.TempDir(), Logger: storetest.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureStream(ctx, "LEDGER", []string{"ledger.>"}); err != nil {
		t.Fatal(err)
	}
	r := &rig{st: st, ob: st.(outbox.Provider).Outbox(), bus: b}
	rl := relay(r.ob, b)
	r.eng, err = ledger.Open(ctx, st, ledger.Config{Logger: storetest.QuietLogger(), Committed: rl.Notify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rl.Stop()
		r.eng.Close()
		b.Close()
		st.Close()
	})
	return r, rl
}

// transfers creates accounts a and b and n transfers t0..t(n-1), some concurrently.
func (r *rig) transfers(t *testing.T, n int) {
	t.Helper()
	if _, err := r.eng.CreateAccounts(ctx, []ledger.AccountInput{{ID: "a", Currency: "USD"}, {ID: "b", Currency: "USD"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 10 {
		var wg sync.WaitGroup
		for j := i; j < min(i+10, n); j++ {
			wg.Go(func() {
				if _, _, err := r.eng.CreateTransfer(ctx, ledger.TransferInput{ID: fmt.Sprint("t", j), DebitAccountID: "a", CreditAccountID: "b", Amount: int64(j + 1), Currency: "USD"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
}

// streamEvents reads the LEDGER stream from its start once it holds want messages.
func streamEvents(t *testing.T, b *bus.Bus, want int) []jetstream.RawStreamMsg {
	t.Helper()
	s, err := b.JetStream().Stream(ctx, "LEDGER")
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, 20*time.Second, func() error {
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if int(info.State.Msgs) != want {
			return fmt.Errorf("LEDGER holds %d messages, want %d", info.State.Msgs, want)
		}
		return nil
	})
	out := make([]jetstream.RawStreamMsg, 0, want)
	for seq := uint64(1); seq <= uint64(want); seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *m)
	}
	return out
}

// checkEvents checks the stream against the journal: the two accounts, then one event per
// transfer, each once, in commit (timestamp) order, with its event id as the message id and
// the data of its record.
func checkEvents(t *testing.T, r *rig, msgs []jetstream.RawStreamMsg, transfers int) {
	t.Helper()
	seen := map[string]bool{}
	nTransfers := 0
	var lastTs string
	for i, m := range msgs {
		var env struct {
			SchemaVersion int    `json:"schema_version"`
			Type          string `json:"type"`
			ID            string `json:"id"`
			OccurredAt    string `json:"occurred_at"`
			Data          struct {
				ID     string `json:"id"`
				Amount int64  `json:"amount"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &env); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if env.Type != m.Subject || env.SchemaVersion != 1 || m.Header.Get(jetstream.MsgIDHeader) != env.ID {
			t.Fatalf("message %d: subject %s, type %s, version %d, msg id %s, event id %s", i, m.Subject, env.Type, env.SchemaVersion, m.Header.Get(jetstream.MsgIDHeader), env.ID)
		}
		if seen[env.ID] {
			t.Fatalf("event %s twice in the stream", env.ID)
		}
		seen[env.ID] = true
		if env.ID <= lastTs {
			t.Fatalf("message %d: event %s after %s: not in commit order", i, env.ID, lastTs)
		}
		lastTs = env.ID
		switch {
		case i < 2:
			if m.Subject != ledger.SubjectAccountCreated {
				t.Fatalf("message %d is %s, want an account", i, m.Subject)
			}
		default:
			if m.Subject != ledger.SubjectTransferCreated {
				t.Fatalf("message %d is %s, want a transfer", i, m.Subject)
			}
			tr, err := r.st.GetTransfer(ctx, env.Data.ID)
			if err != nil || ledger.EventID(tr.Timestamp) != env.ID || tr.Amount != env.Data.Amount {
				t.Fatalf("message %d (%s) does not match its record: %v", i, env.Data.ID, err)
			}
			nTransfers++
		}
	}
	if nTransfers != transfers {
		t.Fatalf("%d transfer events, want %d", nTransfers, transfers)
	}
}

func TestRelayPublishesInCommitOrder(t *testing.T) {
	const n = 300
	r, rl := newRig(t, func(ob outbox.Store, b *bus.Bus) *outbox.Relay {
		return outbox.NewRelay(ob, b, outbox.Config{PageMax: 64, PollInterval: time.Hour, Logger: storetest.QuietLogger()})
	})
	rl.Start()
	r.transfers(t, n)
	msgs := streamEvents(t, r.bus, n+2)
	checkEvents(t, r, msgs, n)
	checkFor(t, 5*time.Second, func() error {
		lag, err := rl.Lag(ctx)
		if err != nil || lag.Unpublished != 0 {
			return fmt.Errorf("lag %+v, %v", lag, err)
		}
		return nil
	})
}

// failingMarks publishes but cannot mark, like a relay that crashes between the two.
type failingMarks struct{ outbox.Store }

func (failingMarks) MarkPublished(context.Context, int64) error { return errors.New("crash") }

func TestRelayRepublishIsDeduplicated(t *testing.T) {
	const n = 50
	r, _ := newRig(t, func(ob outbox.Store, b *bus.Bus) *outbox.Relay {
		return outbox.NewRelay(ob, b, outbox.Config{Logger: storetest.QuietLogger()})
	})
	r.transfers(t, n)
	crashing := outbox.NewRelay(failingMarks{r.ob}, r.bus, outbox.Config{PageMax: 1000})
	if _, err := crashing.Drain(ctx, 0); err == nil {
		t.Fatal("drain with failing marks succeeded")
	}
	lag, err := crashing.Lag(ctx)
	if err != nil || lag.Unpublished != n+2 || lag.OldestAge <= 0 {
		t.Fatalf("lag after the crash = %+v, %v; want %d unpublished", lag, err, n+2)
	}
	// The restarted relay publishes everything again; the stream keeps one of each.
	if _, err := outbox.NewRelay(r.ob, r.bus, outbox.Config{PageMax: 7}).Drain(ctx, 0); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, r, streamEvents(t, r.bus, n+2), n)
	if lag, err := crashing.Lag(ctx); err != nil || lag.Unpublished != 0 {
		t.Fatalf("lag = %+v, %v; want 0", lag, err)
	}
}

// flaky fails every third publish once.
type flaky struct {
	calls int
	got   []string
}

func (f *flaky) Publish(_ context.Context, _, msgID string, _ []byte) error {
	f.calls++
	if f.calls%3 == 0 {
		return errors.New("bus unavailable")
	}
	f.got = append(f.got, msgID)
	return nil
}

func TestRelayRetriesInOrder(t *testing.T) {
	r, _ := newRig(t, func(ob outbox.Store, b *bus.Bus) *outbox.Relay {
		return outbox.NewRelay(ob, b, outbox.Config{Logger: storetest.QuietLogger()})
	})
	r.transfers(t, 20)
	pub := &flaky{}
	rl := outbox.NewRelay(r.ob, pub, outbox.Config{PageMax: 4})
	var after int64
	for range 100 {
		var err error
		if after, err = rl.Drain(ctx, after); err == nil {
			break
		}
	}
	if len(pub.got) != 22 {
		t.Fatalf("published %d events, want 22", len(pub.got))
	}
	for i := 1; i < len(pub.got); i++ {
		if pub.got[i] <= pub.got[i-1] {
			t.Fatalf("published %s after %s", pub.got[i], pub.got[i-1])
		}
	}
}

// TestSubjects counts the unpublished rows by subject, over more than one page.
func TestSubjects(t *testing.T) {
	r, _ := newRig(t, func(ob outbox.Store, b *bus.Bus) *outbox.Relay {
		return outbox.NewRelay(ob, b, outbox.Config{Logger: storetest.QuietLogger()}) // never started
	})
	r.transfers(t, outbox.DefaultPageMax+10)
	got, err := outbox.Subjects(ctx, r.ob)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{ledger.SubjectAccountCreated: 2, ledger.SubjectTransferCreated: outbox.DefaultPageMax + 10}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Subjects = %v, want %v", got, want)
	}
}
