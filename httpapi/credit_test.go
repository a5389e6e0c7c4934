package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/fincore/fincore/credit/service"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/clock"
	"github.com/fincore/fincore/store/sqlite"
)

// newCreditAPI serves the ledger and credit routes over real SQLite, with a fake clock.
func newCreditAPI(t *testing.T) (*testAPI, *service.Service, *clock.Fake) {
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC))
	a := newTestAPIOn(t, st, ledger.Config{Now: clk.Now})
	svc, err := service.New(a.eng, st, service.Config{Now: clk.Now, Logger: a.api.log})
	if err != nil {
		t.Fatal(err)
	}
	a.api.RegisterCredit(svc)
	return a, svc, clk
}

// idNumber is a valid ID number of someone born on 1990-03-07.
const idNumber = "110105199003071239"

func TestCreditOverHTTP(t *testing.T) {
	a, svc, clk := newCreditAPI(t)
	if _, err := service.CheckIDNumber(idNumber); err != nil {
		t.Fatalf("test ID number: %v", err)
	}
	// An application: approved, explained, opens an account.
	app := `{"id":"app1","customer_id":"c1","name":"Li Lei","id_number":"` + idNumber + `","monthly_income":2500000}`
	var got struct {
		Decision    string `json:"decision"`
		AccountID   string `json:"account_id"`
		Explanation []struct{ Step, Outcome, Reason string }
	}
	a.do("POST", "/v1/credit/applications", app).wantStatus(t, http.StatusCreated).decode(t, &got)
	if got.Decision != "approved" || got.AccountID != "ca_c1" || len(got.Explanation) < 5 {
		t.Fatalf("application: %+v", got)
	}
	a.do("POST", "/v1/credit/applications", app).wantStatus(t, http.StatusOK)
	a.do("GET", "/v1/credit/applications/app1", "").wantStatus(t, http.StatusOK)
	a.do("GET", "/v1/credit/applications/nope", "").wantError(t, 404, "application_not_found", "id")

	// Bad applications: clear errors, nothing written.
	a.do("POST", "/v1/credit/applications", `{"id":"app2","customer_id":"c2","name":"X","id_number":"110105199003071234"}`).
		wantError(t, 422, "id_number_invalid", "id_number")
	a.do("POST", "/v1/credit/applications", `{"id":"app2","customer_id":"c2","name":"X"}`).wantError(t, 400, "invalid_request", "id_number")
	a.do("POST", "/v1/credit/applications", `{"id":"app2","customer_id":"c2","name":"X","id_number":"`+idNumber+`","monthly_income":1.5}`).
		wantError(t, 400, "invalid_request", "monthly_income")
	a.do("POST", "/v1/credit/applications", `{"id":"app2","customer_id":"c2","name":"X","id_number":"`+idNumber+`","extra":1}`).
		wantError(t, 400, "invalid_request", "extra")
	a.do("GET", "/v1/credit/applications/app2", "").wantError(t, 404, "application_not_found", "id")

	// Purchases.
	var loan struct {
		ID       string `json:"id"`
		Schedule []struct {
			DueDate string `json:"due_date"`
			Fee     int64  `json:"fee"`
		} `json:"schedule"`
		Owed int64 `json:"owed"`
	}
	p1 := `{"id":"p1","account_id":"ca_c1","merchant_id":"m1","amount":299900,"currency":"CNY","plan":"installments","periods":3}`
	a.do("POST", "/v1/credit/purchases", p1).wantStatus(t, http.StatusCreated).decode(t, &loan)
	if len(loan.Schedule) != 3 || loan.Schedule[2].DueDate != "2026-04-15" || loan.Schedule[0].Fee != 1500 || loan.Owed != 304_400 {
		t.Fatalf("purchase: %+v", loan)
	}
	a.do("POST", "/v1/credit/purchases", p1).wantStatus(t, http.StatusOK)
	for _, c := range []struct {
		body, code, param string
		status            int
	}{
		{`{"id":"p2","account_id":"ca_c1","merchant_id":"m1","amount":300000,"currency":"CNY","plan":"pay_later"}`, "exceeds_available_credit", "amount", 422},
		{`{"id":"p2","account_id":"ca_c1","merchant_id":"m1","amount":100,"currency":"CNY","plan":"installments","periods":5}`, "periods_not_offered", "periods", 422},
		{`{"id":"p2","account_id":"ca_zz","merchant_id":"m1","amount":100,"currency":"CNY","plan":"pay_later"}`, "credit_account_not_found", "account_id", 404},
		{`{"id":"p2","account_id":"ca_c1","merchant_id":"m1","amount":100,"currency":"CNY","plan":"later"}`, "invalid_request", "plan", 400},
		{`{"id":"p2","account_id":"ca_c1","merchant_id":"m1","amount":"100","currency":"CNY","plan":"pay_later"}`, "invalid_request", "amount", 400},
		{`{"id":"p1","account_id":"ca_c1","merchant_id":"m1","amount":299901,"currency":"CNY","plan":"installments","periods":3}`, "id_conflict", "id", 409},
	} {
		a.do("POST", "/v1/credit/purchases", c.body).wantError(t, c.status, c.code, c.param)
	}
	a.do("POST", "/v1/credit/accounts/ca_c1/freeze", `{"reason":"fraud check"}`).wantStatus(t, http.StatusOK)
	a.do("POST", "/v1/credit/purchases", `{"id":"p2","account_id":"ca_c1","merchant_id":"m1","amount":100,"currency":"CNY","plan":"pay_later"}`).
		wantError(t, 422, "line_frozen", "account_id")
	a.do("POST", "/v1/credit/accounts/ca_c1/unfreeze", "").wantStatus(t, http.StatusOK)
	var line struct {
		Available int64 `json:"available"`
		OpenLoans int   `json:"open_loans"`
		Frozen    bool  `json:"frozen"`
	}
	a.do("GET", "/v1/credit/accounts/ca_c1", "").wantStatus(t, 200).decode(t, &line)
	if line.Available != 500_000-299_900 || line.OpenLoans != 1 || line.Frozen {
		t.Fatalf("line: %+v", line)
	}
	a.do("GET", "/v1/credit/purchases/p2", "").wantError(t, 404, "purchase_not_found", "id")
	recv, _ := a.eng.Account(context.Background(), service.ReceivableAccount("ca_c1"))
	if recv.Balances.DebitsPosted != 304_400 || recv.Balances.CreditsPosted != 0 {
		t.Fatalf("receivable after refusals: %+v", recv.Balances)
	}

	// The first installment falls due; the batch earns its fee; a statement on 03-01.
	clk.Advance(time.Duration(46*24) * time.Hour) // 2026-03-02
	for _, ds := range []string{"2026-02-15", "2026-03-01"} {
		a.do("POST", "/v1/credit/eod/"+ds, "").wantStatus(t, http.StatusAccepted)
		waitEOD(t, a, ds)
	}
	a.do("POST", "/v1/credit/eod/2026-03-01", "").wantStatus(t, http.StatusOK)
	a.do("POST", "/v1/credit/eod/2027-01-01", "").wantError(t, 400, "invalid_request", "date")
	a.do("GET", "/v1/credit/eod/2025-01-01", "").wantError(t, 404, "eod_run_not_found", "date")
	var sts struct {
		Data []struct {
			Total   int64  `json:"total_due"`
			PastDue int64  `json:"past_due"`
			DueDate string `json:"due_date"`
			Lines   []struct{ Period int }
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	a.do("GET", "/v1/credit/accounts/ca_c1/statements", "").wantStatus(t, 200).decode(t, &sts)
	// On 03-01 period 1 (due 02-15, 101,466 and penalties from 02-19) is past due; period 2
	// falls due 03-15, after the payment due date 03-10.
	if len(sts.Data) != 1 || sts.Data[0].DueDate != "2026-03-10" || len(sts.Data[0].Lines) != 1 || sts.Data[0].PastDue != sts.Data[0].Total || sts.Data[0].Total <= 101_466 {
		t.Fatalf("statements: %+v", sts)
	}

	// A repayment: every split visible, with its transfer.
	var rep struct {
		Splits []struct {
			LoanID     string `json:"loan_id"`
			Component  string `json:"component"`
			Amount     int64  `json:"amount"`
			TransferID string `json:"transfer_id"`
		} `json:"splits"`
		Paid, Leftover int64
	}
	body := `{"id":"r1","account_id":"ca_c1","amount":` + itoa(sts.Data[0].Total) + `,"currency":"CNY"}`
	a.do("POST", "/v1/credit/repayments", body).wantStatus(t, http.StatusCreated).decode(t, &rep)
	if len(rep.Splits) != 3 || rep.Splits[0].Component != "penalty" || rep.Splits[2].Amount != 99_966 || rep.Splits[2].TransferID == "" {
		t.Fatalf("repayment: %+v", rep)
	}
	a.do("GET", "/v1/transfers/"+rep.Splits[2].TransferID, "").wantStatus(t, 200)
	a.do("POST", "/v1/credit/repayments", body).wantStatus(t, http.StatusOK)
	a.do("POST", "/v1/credit/repayments", `{"id":"r2","account_id":"ca_c1","amount":0,"currency":"CNY"}`).wantError(t, 400, "invalid_request", "amount")
	a.do("GET", "/v1/credit/repayments/r2", "").wantError(t, 404, "repayment_not_found", "id")
	var list struct {
		Data []struct {
			DPD    int    `json:"days_past_due"`
			Bucket string `json:"bucket"`
		} `json:"data"`
	}
	a.do("GET", "/v1/credit/accounts/ca_c1/purchases?status=active", "").wantStatus(t, 200).decode(t, &list)
	if len(list.Data) != 1 || list.Data[0].Bucket != "current" {
		t.Fatalf("purchases: %+v", list)
	}
	if rec, err := svc.Reconcile(context.Background()); err != nil || !rec.OK() {
		t.Fatalf("reconcile: %+v %v", rec, err)
	}
}

func waitEOD(t *testing.T, a *testAPI, date string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var run struct{ Stage string }
		r := a.do("GET", "/v1/credit/eod/"+date, "")
		if r.Status == 200 {
			r.decode(t, &run)
			if run.Stage == "done" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("end of day %s did not finish", date)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestCreditRefundOverHTTP(t *testing.T) {
	a, _, _ := newCreditAPI(t)
	a.do("POST", "/v1/credit/applications", `{"id":"app1","customer_id":"c1","name":"Li Lei","id_number":"`+idNumber+`","monthly_income":2500000}`).
		wantStatus(t, http.StatusCreated)
	a.do("POST", "/v1/credit/purchases", `{"id":"p1","account_id":"ca_c1","merchant_id":"m1","amount":299900,"currency":"CNY","plan":"installments","periods":3}`).
		wantStatus(t, http.StatusCreated)
	// Refused refunds change nothing.
	a.do("POST", "/v1/credit/purchases/p1/refunds", `{"id":"f1","amount":299901}`).wantError(t, 422, "refund_exceeds_principal", "amount")
	a.do("POST", "/v1/credit/purchases/nope/refunds", `{"id":"f1","amount":1}`).wantError(t, 404, "purchase_not_found", "id")
	a.do("POST", "/v1/credit/purchases/p1/refunds", `{"id":"f1","amount":1.5}`).wantError(t, 400, "invalid_request", "amount")
	a.do("POST", "/v1/credit/purchases/p1/refunds", `{"amount":1}`).wantError(t, 400, "invalid_request", "id")
	recv, _ := a.eng.Account(context.Background(), service.ReceivableAccount("ca_c1"))
	if recv.Balances.CreditsPosted != 0 {
		t.Fatalf("refused refunds posted: %+v", recv.Balances)
	}
	// Refunding period 3 in full: its principal 99,968 and fee 1,500.
	var ref struct {
		ChargesCut int64 `json:"charges_cut"`
		Cuts       []struct {
			Transfer string `json:"transfer_id"`
		} `json:"cuts"`
	}
	a.do("POST", "/v1/credit/purchases/p1/refunds", `{"id":"f1","amount":99968}`).wantStatus(t, http.StatusCreated).decode(t, &ref)
	if ref.ChargesCut != 1_500 || len(ref.Cuts) != 2 || ref.Cuts[0].Transfer == "" {
		t.Fatalf("refund: %+v", ref)
	}
	a.do("POST", "/v1/credit/purchases/p1/refunds", `{"id":"f1","amount":99968}`).wantStatus(t, http.StatusOK)
	a.do("POST", "/v1/credit/purchases/p1/refunds", `{"id":"f1","amount":5}`).wantError(t, 409, "id_conflict", "id")
	var loan struct {
		Owed     int64 `json:"owed"`
		Refunded int64 `json:"refunded"`
	}
	a.do("GET", "/v1/credit/purchases/p1", "").wantStatus(t, 200).decode(t, &loan)
	if loan.Owed != 304_400-99_968-1_500 || loan.Refunded != 99_968 {
		t.Fatalf("purchase after refund: %+v", loan)
	}

	// Reading refunds back: one by id, a purchase's newest first, a page at a time.
	a.do("POST", "/v1/credit/purchases/p1/refunds", `{"id":"f2","amount":100}`).wantStatus(t, http.StatusCreated)
	var got struct {
		ID       string `json:"id"`
		Purchase string `json:"purchase_id"`
		Amount   int64  `json:"amount"`
		Cuts     []struct {
			Transfer string `json:"transfer_id"`
		} `json:"cuts"`
	}
	a.do("GET", "/v1/credit/refunds/f1", "").wantStatus(t, 200).decode(t, &got)
	if got.ID != "f1" || got.Purchase != "p1" || got.Amount != 99_968 || len(got.Cuts) != 2 || got.Cuts[0].Transfer != ref.Cuts[0].Transfer {
		t.Fatalf("GET refund: %+v", got)
	}
	a.do("GET", "/v1/credit/refunds/nope", "").wantError(t, 404, "refund_not_found", "id")
	a.do("GET", "/v1/credit/refunds/f1?x=1", "").wantError(t, 400, "invalid_request", "x")
	var page struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	a.do("GET", "/v1/credit/purchases/p1/refunds?limit=1", "").wantStatus(t, 200).decode(t, &page)
	if len(page.Data) != 1 || page.Data[0].ID != "f2" || !page.HasMore {
		t.Fatalf("first page: %+v", page)
	}
	a.do("GET", "/v1/credit/purchases/p1/refunds?starting_after=f2", "").wantStatus(t, 200).decode(t, &page)
	if len(page.Data) != 1 || page.Data[0].ID != "f1" || page.HasMore {
		t.Fatalf("second page: %+v", page)
	}
	a.do("GET", "/v1/credit/purchases/nope/refunds", "").wantError(t, 404, "purchase_not_found", "id")
	a.do("GET", "/v1/credit/purchases/p1/refunds?starting_after=nope", "").wantError(t, 400, "invalid_request", "starting_after")
	a.do("GET", "/v1/credit/purchases/p1/refunds?limit=0", "").wantError(t, 400, "invalid_request", "limit")
}
