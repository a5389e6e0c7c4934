package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
)

// BenchBalancesAt measures balances-as-of on an account with n journal records: the account
// alternately pays and receives against 1,000 counterparties, then random instants across its
// history are queried. Setup goes through the real engine.
func BenchBalancesAt(b *testing.B, f Factory, n int) {
	ctx := context.Background()
	st := f(b)()
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: QuietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	defer eng.Close()
	const others = 1000
	accts := []ledger.AccountInput{{ID: "hot", Currency: "CNY"}}
	for i := 0; i < others; i++ {
		accts = append(accts, ledger.AccountInput{ID: fmt.Sprintf("o%d", i), Currency: "CNY"})
	}
	if _, err := eng.CreateAccounts(ctx, accts); err != nil {
		b.Fatal(err)
	}
	var first, last ledger.Timestamp
	batch := make([]ledger.TransferInput, 0, ledger.BatchMax)
	flush := func() {
		res, err := eng.CreateTransfers(ctx, batch, true)
		if err != nil {
			b.Fatal(err)
		}
		if first == 0 {
			first = res[0].Transfer.Timestamp
		}
		last = res[len(res)-1].Transfer.Timestamp
		batch = batch[:0]
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		in := ledger.TransferInput{ID: fmt.Sprintf("t%d", i), DebitAccountID: "hot", CreditAccountID: fmt.Sprintf("o%d", i%others), Amount: int64(1 + i%997), Currency: "CNY"}
		if i%2 == 1 {
			in.DebitAccountID, in.CreditAccountID = in.CreditAccountID, in.DebitAccountID
		}
		batch = append(batch, in)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	b.Logf("setup: %d transfers on one account in %s", n, time.Since(t0).Round(time.Millisecond))
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	var worst time.Duration
	for i := 0; i < b.N; i++ {
		at := first + ledger.Timestamp(rng.Int64N(int64(last-first+1)))
		q := time.Now()
		bal, err := eng.BalancesAt(ctx, "hot", at)
		if d := time.Since(q); d > worst {
			worst = d
		}
		if err != nil || bal.DebitsPosted == 0 && at > first {
			b.Fatalf("balances at %d: %+v %v", at, bal, err)
		}
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst_ms")
}
