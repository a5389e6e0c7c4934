package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/payment"
)

// TestPaymentsChaos is the payments issue's chaos test: thousands of payments through two
// simulated banks (separate processes, so their books survive) that drop requests, lose
// answers after charging, answer asynchronously, and send notifications duplicated and out
// of order — and a kill -9 of fincore in the middle. After it settles: every accepted payment
// is final, no payment was charged twice, our records match the banks' exactly, the ledger's
// balances equal the sums of payments and refunds, and the merchant received a webhook for
// every final payment.
func TestPaymentsChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test runs separate processes")
	}
	const payments, clients = 2000, 16
	const secret = "chaos-secret"

	// The merchant's webhook endpoint.
	var hookMu sync.Mutex
	hooks := map[string]bool{}
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ ID string }
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &ev)
		hookMu.Lock()
		hooks[ev.ID] = true
		hookMu.Unlock()
	}))
	defer hookSrv.Close()

	// fincore's address is fixed before the banks start: they notify it.
	srv := &server{t: t, addr: freeAddr(t)}
	banks := map[string]string{}
	for _, code := range []string{"chaos-a", "chaos-b"} {
		addr := freeAddr(t)
		cmd := exec.Command(binPath, "bank-sim", "--addr", addr, "--name", strings.ToUpper(code[len(code)-1:]),
			"--median", "3ms", "--p99", "30ms", "--decline", "0.03", "--insufficient", "0.01", "--system-error", "0.02",
			"--drop", "0.02", "--lost-answer", "0.02", "--async", "0.1", "--duplicate-notify", "0.3", "--notify-delay", "300ms",
			"--notify-url", "http://"+srv.addr+"/v1/channels/"+code+"/notifications", "--secret", secret)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		banks[code] = "http://" + addr
	}
	var pairs []string
	for code, url := range banks {
		pairs = append(pairs, code+"="+url)
	}
	srv.args = []string{"--data", t.TempDir(), "--no-sim-banks", "--bank-sim", strings.Join(pairs, ",")}
	srv.env = append(os.Environ(), "FINCORE_BANK_SIM_SECRET="+secret)
	srv.start()
	defer func() {
		if srv.cmd.ProcessState == nil {
			srv.kill()
		}
	}()
	for _, url := range banks { // wait until the banks listen
		waitListening(t, url)
	}
	mustPost := func(path string, body any) map[string]any {
		t.Helper()
		for attempt := 0; ; attempt++ {
			st, b, err := doJSON("POST", srv.url(path), body)
			if err == nil && st < 300 {
				var out map[string]any
				json.Unmarshal(b, &out)
				return out
			}
			if attempt > 200 {
				t.Fatalf("POST %s: %d %s %v", path, st, b, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	mustPost("/v1/merchants", map[string]any{"id": "chaos", "name": "Chaos shop", "currency": "CNY", "fee_bps": 50, "webhook_url": hookSrv.URL})
	card := mustPost("/v1/cards", map[string]any{"pan": "6222020200112233446", "holder": "Li Si", "expiry_month": 6, "expiry_year": 2034, "bank_code": "ICBC"})
	cardID := card["id"].(string)

	// Clients submit payments; fincore is killed with SIGKILL a third of the way in and
	// restarted; a client whose request failed retries it (the id makes it idempotent).
	var next int
	var nextMu sync.Mutex
	take := func() int {
		nextMu.Lock()
		defer nextMu.Unlock()
		next++
		return next
	}
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := take()
				if i > payments {
					return
				}
				if i == payments/3 {
					srv.kill()
					close(killed)
					srv.start()
				}
				body := map[string]any{"id": fmt.Sprintf("cp%05d", i), "merchant_id": "chaos", "amount": 100 + i, "currency": "CNY", "card_id": cardID}
				for attempt := 0; ; attempt++ {
					st, _, err := doJSON("POST", srv.url("/v1/payments"), body)
					if err == nil && (st == 200 || st == 201) {
						break
					}
					if attempt > 600 {
						t.Errorf("payment %d never accepted: %d %v", i, st, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	<-killed

	// Everything settles: no payment stays processing.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, b, err := doJSON("GET", srv.url("/v1/payments?status=processing&limit=5"), nil)
		if err == nil && st == 200 && strings.Contains(string(b), `"data":[]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payments still processing after 3 minutes: %s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Refund part of some succeeded payments, then let those settle too.
	all := listAllPayments(t, srv)
	if len(all) != payments {
		t.Fatalf("%d payments stored, want %d", len(all), payments)
	}
	refunds := map[string]int64{}
	for _, p := range all {
		if p.Status == payment.StatusSucceeded && len(refunds) < 100 {
			mustPost("/v1/payments/"+p.ID+"/refunds", map[string]any{"id": "cr_" + p.ID, "amount": p.Amount / 2})
			refunds[p.ID] = p.Amount / 2
		}
	}
	deadline = time.Now().Add(2 * time.Minute)
	for id := range refunds {
		for {
			_, b, _ := doJSON("GET", srv.url("/v1/refunds/cr_"+id), nil)
			if !strings.Contains(string(b), `"status":"processing"`) {
				if !strings.Contains(string(b), `"status":"succeeded"`) {
					t.Errorf("refund of %s: %s", id, b)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("refund of %s still processing", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	all = listAllPayments(t, srv)

	// The banks' books.
	day := time.Now().UTC()
	charged := map[string][]bank.StatementLine{} // payment id -> succeeded bank payments
	refunded := map[string]int64{}
	for code, url := range banks {
		ch := sim.NewHTTPChannel(code, bank.Capabilities{Currencies: []string{"CNY"}}, url)
		var lines []bank.StatementLine
		for _, d := range []time.Time{day.AddDate(0, 0, -1), day} { // the run may cross midnight
			l, err := ch.Statement(context.Background(), d)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, l...)
		}
		for _, l := range lines {
			if l.Status != bank.Succeeded {
				continue
			}
			if l.Kind == "payment" {
				pid := l.ID[:strings.LastIndexByte(l.ID, '.')]
				l.ChannelRef = code // remember the bank
				charged[pid] = append(charged[pid], l)
			} else {
				refunded[strings.TrimPrefix(l.ID, "cr_")] += l.Amount
			}
		}
	}
	var sumSucceeded, sumFees, sumRefunds int64
	perChannel := map[string]int64{}
	finals := 0
	for _, p := range all {
		if !p.Status.Final() {
			t.Errorf("payment %s is %s", p.ID, p.Status)
			continue
		}
		finals++
		c := charged[p.ID]
		switch p.Status {
		case payment.StatusSucceeded:
			if len(c) != 1 {
				t.Errorf("payment %s succeeded but the banks charged it %d times", p.ID, len(c))
				continue
			}
			var ours payment.Attempt
			for _, a := range p.Attempts {
				if a.Status == "succeeded" {
					ours = a
				}
			}
			if c[0].ChannelRef != ours.Channel || c[0].ID != ours.BankID || c[0].Amount != p.Amount {
				t.Errorf("payment %s: our success %+v, the bank's %+v", p.ID, ours, c[0])
			}
			sumSucceeded += p.Amount
			sumFees += p.Fee
			perChannel[ours.Channel] += p.Amount
			if p.Refunded != refunds[p.ID] || refunded[p.ID] != refunds[p.ID] {
				t.Errorf("payment %s: refunded %d by us, %d by the bank, %d asked", p.ID, p.Refunded, refunded[p.ID], refunds[p.ID])
			}
			sumRefunds += p.Refunded
		default:
			if len(c) != 0 {
				t.Errorf("payment %s is %s but the bank charged it: %+v", p.ID, p.Status, c)
			}
		}
	}
	// The ledger agrees.
	balance := func(id string) (int64, int64) {
		_, b, err := doJSON("GET", srv.url("/v1/accounts/"+id), nil)
		if err != nil {
			t.Fatal(err)
		}
		var a struct {
			Balances struct {
				DebitsPosted  int64 `json:"debits_posted"`
				CreditsPosted int64 `json:"credits_posted"`
			} `json:"balances"`
		}
		json.Unmarshal(b, &a)
		return a.Balances.DebitsPosted, a.Balances.CreditsPosted
	}
	for code := range banks {
		d, c := balance(payment.ClearingAccount(code, "CNY"))
		if d != perChannel[code] {
			t.Errorf("clearing %s debited %d, succeeded payments on it %d", code, d, perChannel[code])
		}
		_ = c
	}
	if d, c := balance(payment.MerchantAccount("chaos", "CNY")); c-d != sumSucceeded-sumFees-sumRefunds {
		t.Errorf("merchant payable %d, want %d", c-d, sumSucceeded-sumFees-sumRefunds)
	}
	// Every final payment got its webhook.
	deadline = time.Now().Add(time.Minute)
	for {
		missing := 0
		hookMu.Lock()
		for _, p := range all {
			if !hooks["evt_"+p.ID+"_"+string(p.Status)] {
				missing++
			}
		}
		hookMu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d final payments have no webhook", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d payments final (%d succeeded, %d CNY minor units), %d refunds; fincore killed once", finals, len(charged), sumSucceeded, len(refunds))
}

func listAllPayments(t *testing.T, srv *server) []payment.Payment {
	t.Helper()
	var out []payment.Payment
	after := ""
	for {
		url := srv.url("/v1/payments?limit=100")
		if after != "" {
			url += "&starting_after=" + after
		}
		st, b, err := doJSON("GET", url, nil)
		if err != nil || st != 200 {
			t.Fatalf("list payments: %d %s %v", st, b, err)
		}
		var page struct {
			Data    []payment.Payment `json:"data"`
			HasMore bool              `json:"has_more"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Data...)
		if !page.HasMore {
			return out
		}
		after = page.Data[len(page.Data)-1].ID
	}
}

// waitListening waits until something accepts TCP connections at the host of url. (An HTTP
// probe could be dropped by a simulated bank that drops requests, and hang.)
func waitListening(t *testing.T, url string) {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never listened: %v", host, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
