package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/payment"
)

// demoCardPANs are test card numbers (they pass the Luhn check) for the demo's customers.
var demoCardPANs = []string{"6222020200112233446", "4242424242424242", "6225880137005584", "6212260200013333337"}

// seedPaymentsDemo sets up the cashier's demo (idempotently): three merchants and a few
// cards; its payments are screened by the "payment" rule set seedDemoRisk activates. It
// returns the card tokens.
func seedPaymentsDemo(ctx context.Context, svc *payment.Service) ([]string, error) {
	for i := 1; i <= 3; i++ {
		_, err := svc.CreateMerchant(ctx, payment.MerchantInput{ID: fmt.Sprintf("demo-shop-%d", i), Name: fmt.Sprintf("Demo shop %d", i),
			Currency: "CNY", FeeBps: 30 * i})
		var ae *apierror.Error
		if err != nil && !(errors.As(err, &ae) && ae.Code == apierror.IDConflict) {
			return nil, err
		}
	}
	var cards []string
	for i, pan := range demoCardPANs {
		if !payment.Luhn(pan) {
			continue
		}
		c, err := svc.CreateCard(ctx, payment.CardInput{PAN: pan, Holder: fmt.Sprintf("Demo customer %d", i+1), ExpiryMonth: 12,
			ExpiryYear: time.Now().Year() + 3, BankCode: []string{"ICBC", "CMB", "BOC", "CCB"}[i%4]})
		if err != nil {
			return nil, err
		}
		cards = append(cards, c.ID)
	}
	return cards, nil
}

// paymentsDemoTraffic creates a payment every half second, and refunds now and then, until
// ctx ends; now and then a large round amount that the cash-out rules score.
func paymentsDemoTraffic(ctx context.Context, svc *payment.Service, cards []string, log *slog.Logger) {
	if len(cards) == 0 {
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	run := time.Now().Unix()
	var succeeded []string
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		amount := int64(100 + rand.IntN(80_000))
		if rand.IntN(20) == 0 {
			amount = 500_000 // a round sum: the cash-out rules look at those
		}
		id := fmt.Sprintf("demo-pay-%d-%d", run, n)
		_, _, err := svc.CreatePayment(ctx, payment.PaymentInput{ID: id, MerchantID: fmt.Sprintf("demo-shop-%d", 1+rand.IntN(3)),
			Amount: amount, Currency: "CNY", CardID: cards[rand.IntN(len(cards))], Description: "demo order"})
		if err != nil && ctx.Err() == nil {
			log.Warn("demo payment", "err", err)
		}
		if len(succeeded) > 0 && rand.IntN(10) == 0 {
			pid := succeeded[rand.IntN(len(succeeded))]
			if p, err := svc.GetPayment(ctx, pid); err == nil && p.Amount-p.Refunded-p.RefundPending > 1 {
				svc.CreateRefund(ctx, pid, payment.RefundInput{ID: fmt.Sprintf("demo-refund-%d-%d", run, n), Amount: (p.Amount - p.Refunded - p.RefundPending) / 2})
			}
		}
		// Remember a few recent successes to refund.
		if p, err := svc.GetPayment(ctx, fmt.Sprintf("demo-pay-%d-%d", run, max(0, n-5))); err == nil && p.Status == payment.StatusSucceeded {
			succeeded = append(succeeded, p.ID)
			if len(succeeded) > 50 {
				succeeded = succeeded[1:]
			}
		}
	}
}
