package main

import (
	"context"
	"fmt"

	"github.com/fincore/fincore/credit/service"
)

// demoCreditCustomer is the demo's credit customer; their account is ca_<customer>.
const demoCreditCustomer = "demo-alice"

// seedCreditDemo sets up the credit demo (idempotently: every step has a fixed id, and a
// replay changes nothing): an approved application, a few purchases on pay later and
// installments, an early repayment and a merchant refund. The end-of-day batch runs on its
// timers as usual.
func seedCreditDemo(ctx context.Context, svc *service.Service) error {
	app, _, err := svc.Apply(ctx, service.ApplicationRequest{ID: "demo-app-1", CustomerID: demoCreditCustomer, Name: "Demo Alice",
		IDNumber: "110105199003071239", MonthlyIncome: 2_500_000})
	if err != nil {
		return fmt.Errorf("application: %w", err)
	}
	if app.Decision != service.Approved {
		return fmt.Errorf("the demo application was %s", app.Decision)
	}
	account := service.LineID(demoCreditCustomer)
	for _, p := range []service.PurchaseRequest{
		{ID: "demo-purchase-1", MerchantID: "demo-shop-1", Amount: 299_900, Plan: service.PlanInstallments, Periods: 3},
		{ID: "demo-purchase-2", MerchantID: "demo-shop-2", Amount: 19_900, Plan: service.PlanPayLater},
		{ID: "demo-purchase-3", MerchantID: "demo-shop-3", Amount: 120_000, Plan: service.PlanInstallments, Periods: 6},
	} {
		p.AccountID, p.Currency = account, "CNY"
		if _, _, err := svc.Purchase(ctx, p); err != nil {
			return fmt.Errorf("purchase %s: %w", p.ID, err)
		}
	}
	if _, _, err := svc.Repay(ctx, service.RepaymentRequest{ID: "demo-repayment-1", AccountID: account, Amount: 50_000, Currency: "CNY"}); err != nil {
		return fmt.Errorf("repayment: %w", err)
	}
	if _, _, err := svc.RefundPurchase(ctx, service.RefundRequest{ID: "demo-refund-1", LoanID: "demo-purchase-3", Amount: 20_000}); err != nil {
		return fmt.Errorf("refund: %w", err)
	}
	return nil
}
