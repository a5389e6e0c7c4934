package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/fincore/fincore/ledger"
)

const (
	demoUsers     = 50
	demoMerchants = 5
)

// seedDemo creates the demo chart of accounts (idempotently): a settlement bank account,
// user wallets that may not go negative, and merchant payables; it funds the wallets once.
func seedDemo(ctx context.Context, eng *ledger.Engine) error {
	ins := []ledger.AccountInput{{ID: "demo:bank", Currency: "CNY", Code: "1002", Metadata: map[string]string{"name": "settlement bank"}}}
	for i := 1; i <= demoUsers; i++ {
		ins = append(ins, ledger.AccountInput{ID: fmt.Sprintf("demo:user:%d", i), Currency: "CNY", Code: "2201",
			Flags: ledger.Flags{DebitsMustNotExceedCredits: true}})
	}
	for i := 1; i <= demoMerchants; i++ {
		ins = append(ins, ledger.AccountInput{ID: fmt.Sprintf("demo:merchant:%d", i), Currency: "CNY", Code: "2202"})
	}
	res, err := eng.CreateAccounts(ctx, ins)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Err != nil {
			return r.Err
		}
	}
	var funding []ledger.TransferInput
	for i := 1; i <= demoUsers; i++ {
		funding = append(funding, ledger.TransferInput{
			ID: fmt.Sprintf("demo-fund-%d", i), DebitAccountID: "demo:bank", CreditAccountID: fmt.Sprintf("demo:user:%d", i),
			Amount: 1_000_000, Currency: "CNY", Code: "top_up",
		})
	}
	_, err = eng.CreateTransfers(ctx, funding, true)
	return err
}

// demoTraffic generates a few transfers a second until ctx ends: purchases, authorisations
// that are captured, released or left to expire, and refunds.
func demoTraffic(ctx context.Context, eng *ledger.Engine, screen demoScreen, log *slog.Logger) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	run := time.Now().UnixNano()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		user := fmt.Sprintf("demo:user:%d", 1+rand.IntN(demoUsers))
		merchant := fmt.Sprintf("demo:merchant:%d", 1+rand.IntN(demoMerchants))
		id := fmt.Sprintf("demo-%d-%d", run, n)
		amount := int64(100 + rand.IntN(50_000))
		r := rand.IntN(10)
		if r < 9 && screen != nil && !screen(ctx, id, user, merchant, amount) {
			continue // refused by the risk engine
		}
		var err error
		switch {
		case r < 6:
			_, _, err = eng.CreateTransfer(ctx, ledger.TransferInput{ID: id, DebitAccountID: user, CreditAccountID: merchant,
				Amount: amount, Currency: "CNY", Code: "purchase"})
		case r < 9:
			_, _, err = eng.CreateTransfer(ctx, ledger.TransferInput{ID: id, DebitAccountID: user, CreditAccountID: merchant,
				Amount: amount, Currency: "CNY", Code: "authorization", Pending: true, TimeoutSeconds: 30})
			if err == nil && r < 8 {
				in := ledger.TransferInput{Action: ledger.ActionPost, ID: id + "-capture", PendingID: id, Amount: amount - int64(rand.IntN(100))}
				if r == 7 {
					in = ledger.TransferInput{Action: ledger.ActionVoid, ID: id + "-release", PendingID: id}
				}
				_, _, err = eng.CreateTransfer(ctx, in)
			}
		default:
			_, _, err = eng.CreateTransfer(ctx, ledger.TransferInput{ID: id, DebitAccountID: merchant, CreditAccountID: user,
				Amount: amount / 10, Currency: "CNY", Code: "refund"})
		}
		if err != nil && ctx.Err() == nil {
			log.Debug("demo transfer refused", "id", id, "err", err)
		}
	}
}
