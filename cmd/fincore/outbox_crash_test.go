package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestOutboxCrash runs `fincore serve` with its embedded NATS reachable on a port, creates
// transfers, kills the process with SIGKILL at random moments several times and restarts it;
// then it reads the LEDGER stream and checks that every committed transfer has exactly one
// event (after de-duplication by message id) and that no uncommitted transfer has any.
func TestOutboxCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs separate processes")
	}
	const accounts, workers, cycles = 6, 6, 4
	dir := t.TempDir()
	natsAddr := freeAddr(t)
	// --no-sim-banks: the cashier's accounts would add events the test did not cause.
	srv := startServer(t, "--data", dir, "--nats-listen", natsAddr, "--no-sim-banks")
	defer func() {
		if srv.cmd.ProcessState == nil {
			srv.kill()
		}
	}()
	for i := range accounts {
		st, body, err := doJSON("POST", srv.url("/v1/accounts"), map[string]any{"id": fmt.Sprintf("acct-%d", i), "currency": "CNY"})
		if err != nil || (st != 201 && st != 200) {
			t.Fatalf("create account: %d %s %v", st, body, err)
		}
	}
	var (
		mu    sync.Mutex
		sent  []string            // every transfer id sent
		acked = map[string]bool{} // ids the server acknowledged
	)
	for cycle := range cycles {
		if cycle > 0 {
			srv.start()
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(cycle), uint64(w)))
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					d := rng.IntN(accounts)
					x := wireXfer{
						ID: fmt.Sprintf("c%d-w%d-n%d", cycle, w, n), Debit: fmt.Sprintf("acct-%d", d),
						Credit: fmt.Sprintf("acct-%d", (d+1+rng.IntN(accounts-1))%accounts), Amount: 1 + rng.Int64N(1000), Currency: "CNY",
					}
					mu.Lock()
					sent = append(sent, x.ID)
					mu.Unlock()
					st, _, err := doJSON("POST", srv.url("/v1/transfers"), x)
					if err != nil {
						return // the server is gone
					}
					if st != 200 && st != 201 {
						t.Errorf("transfer refused with HTTP %d", st)
						return
					}
					mu.Lock()
					acked[x.ID] = true
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		srv.kill()
		close(stop)
		wg.Wait()
	}
	srv.start()

	// What the ledger holds is the truth: committed = found by the API.
	committed := map[string]bool{}
	for _, id := range sent {
		st, body, err := doJSON("GET", srv.url("/v1/transfers/"+id), nil)
		if err != nil {
			t.Fatal(err)
		}
		switch st {
		case 200:
			committed[id] = true
		case 404:
			if acked[id] {
				t.Fatalf("acknowledged transfer %s is missing", id)
			}
		default:
			t.Fatalf("GET transfer %s: HTTP %d %s", id, st, body)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no transfer was acknowledged: the test measured nothing")
	}

	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := js.Stream(ctx, "LEDGER")
	if err != nil {
		t.Fatal(err)
	}
	// The restarted relay publishes what the killed ones left behind; wait until the stream
	// holds an event for every committed transfer (and the accounts).
	type event struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	var (
		next     uint64 = 1
		msgIDs          = map[string]string{} // msg id -> transfer or account id
		byRecord        = map[string]int{}    // transfer or account id -> distinct events
		total    int
	)
	deadline := time.Now().Add(90 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for ; next <= info.State.LastSeq; next++ {
			m, err := stream.GetMsg(ctx, next)
			if err != nil {
				t.Fatalf("get message %d: %v", next, err)
			}
			total++
			var ev event
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatalf("message %d: %v", next, err)
			}
			mid := m.Header.Get(jetstream.MsgIDHeader)
			if mid != ev.ID {
				t.Fatalf("message %d: msg id %q, event id %q", next, mid, ev.ID)
			}
			if prev, dup := msgIDs[mid]; dup {
				if prev != ev.Data.ID {
					t.Fatalf("event id %s names %s and %s", mid, prev, ev.Data.ID)
				}
				continue // a re-publication the stream did not de-duplicate: harmless
			}
			msgIDs[mid] = ev.Data.ID
			byRecord[ev.Data.ID]++
		}
		missing := 0
		for id := range committed {
			if byRecord[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d committed transfers have no event after %d messages", missing, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	chart := 0 // accounts of the credit module's chart, created at every start
	for id, n := range byRecord {
		switch {
		case n != 1:
			t.Fatalf("%s has %d distinct events, want 1", id, n)
		case len(id) > 4 && id[:4] == "acct":
		case len(id) > 7 && id[:7] == "credit.":
			chart++
		case !committed[id]:
			t.Fatalf("uncommitted transfer %s has an event", id)
		}
	}
	if len(byRecord) != len(committed)+accounts+chart {
		t.Fatalf("%d records announced, want %d transfers and %d accounts", len(byRecord), len(committed), accounts)
	}
	t.Logf("%d transfers sent, %d acknowledged, %d committed over %d kills; %d messages in LEDGER, %d distinct events",
		len(sent), len(acked), len(committed), cycles, total, len(msgIDs))
}
