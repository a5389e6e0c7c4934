package payment_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/payment/route"
	"github.com/fincore/fincore/store/sqlite"
)

// BenchmarkCreatePayment is the accept path of `fincore bench payments`: CreatePayment from
// 32 goroutines on SQLite through the ledger's group commits (the accepted record and the
// processing timer, which no timer service runs here). Allocations per op are the whole
// process's: the service, the ledger's writer and storage. cpu-ns/op is the process's CPU
// time per payment, steadier than ns/op on a shared machine.
func BenchmarkCreatePayment(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.OpenLedger(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: quiet(), CommitInterval: 2 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	sealer, _ := payment.NewSealer(payment.NewKey())
	svc, err := payment.New(payment.Config{Ledger: eng, Store: st, Channels: bank.NewRegistry(), Router: route.New(route.Options{}),
		Sealer: sealer, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.CreateMerchant(ctx, payment.MerchantInput{ID: "bench", Name: "Bench", Currency: "CNY", FeeBps: 60}); err != nil {
		b.Fatal(err)
	}
	card, err := svc.CreateCard(ctx, payment.CardInput{PAN: validPAN, Holder: "Bench", ExpiryMonth: 12, ExpiryYear: 2035, BankCode: "ICBC"})
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	cpu0 := bench.ProcessCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := "bp" + strconv.FormatInt(seq.Add(1), 10)
			if _, _, err := svc.CreatePayment(ctx, payment.PaymentInput{ID: id, MerchantID: "bench", Amount: 1000, Currency: "CNY", CardID: card.ID}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(bench.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}
