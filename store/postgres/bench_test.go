package postgres

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/storetest"
)

// BenchmarkCommit measures the engine's throughput on PostgreSQL: each operation is one
// request of 1,000 transfers between random accounts among 10,000, submitted by a few
// concurrent clients so that the writer always has a group waiting. It reports transfers/s
// and the average transfers per group commit.
func BenchmarkCommit(b *testing.B) {
	const (
		accounts  = 10_000
		batchSize = 1000
		clients   = 4
	)
	ctx := context.Background()
	st, err := OpenLedger(ctx, pgtest.URL(b), true)
	if err != nil {
		b.Fatal(err)
	}
	e, err := ledger.Open(ctx, st, ledger.Config{Logger: storetest.QuietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { e.Close(); st.Close() }()
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = "acc-" + strconv.Itoa(i)
	}
	for i := 0; i < accounts; i += batchSize {
		ins := make([]ledger.AccountInput, 0, batchSize)
		for _, id := range ids[i:min(i+batchSize, accounts)] {
			ins = append(ins, ledger.AccountInput{ID: id, Currency: "CNY"})
		}
		res, err := e.CreateAccounts(ctx, ins)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	before := e.Stats()
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			ins := make([]ledger.TransferInput, batchSize)
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				prefix := "t" + strconv.FormatInt(n, 10) + "-"
				for i := range ins {
					dr := rng.IntN(accounts)
					cr := (dr + 1 + rng.IntN(accounts-1)) % accounts
					ins[i] = ledger.TransferInput{ID: prefix + strconv.Itoa(i), DebitAccountID: ids[dr], CreditAccountID: ids[cr],
						Amount: int64(1 + rng.IntN(10_000)), Currency: "CNY"}
				}
				res, err := e.CreateTransfers(ctx, ins, false)
				if err != nil {
					b.Error(err)
					return
				}
				for _, r := range res {
					if r.Err != nil {
						failed.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d transfers failed", n)
	}
	after := e.Stats()
	b.ReportMetric(float64(b.N)*batchSize/elapsed.Seconds(), "transfers/s")
	if g := after.Groups - before.Groups; g > 0 {
		b.ReportMetric(float64(after.Records-before.Records)/float64(g), "transfers/group")
		b.ReportMetric(float64(after.CommitNanos-before.CommitNanos)/float64(g)/1e6, "commit-ms/group")
	}
}

// BenchmarkBalancesAt1M: FINCORE_TEST_POSTGRES=... go test ./store/postgres -run '^$' -bench BalancesAt1M -benchtime 2000x
func BenchmarkBalancesAt1M(b *testing.B) { storetest.BenchBalancesAt(b, Factory, 1_000_000) }
