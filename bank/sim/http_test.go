package sim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/platform/signature"
)

func newHTTPBank(t *testing.T, p Profile, notify func(Notification)) (*Bank, *HTTPChannel) {
	t.Helper()
	b, err := New(Options{Name: "H", Profile: p, Seed: 9, Notify: notify})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(b))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); b.Close() })
	return b, NewHTTPChannel("sim-h", cny, srv.URL)
}

func TestHTTPChannelPayQueryRefundStatement(t *testing.T) {
	b, ch := newHTTPBank(t, Profile{}, nil)
	ctx := context.Background()
	var _ bank.Channel = ch
	res, err := ch.Pay(ctx, pay("p/1", 1234)) // an id that needs escaping in the query path
	if err != nil || res.Status != bank.Succeeded || res.ChannelRef == "" || res.Amount != 1234 {
		t.Fatalf("Pay = %+v, %v", res, err)
	}
	if q, _ := ch.Query(ctx, "p/1"); q.Status != bank.Succeeded || q.ChannelRef != res.ChannelRef {
		t.Fatalf("Query = %+v", q)
	}
	if q, _ := ch.Query(ctx, "nope"); q.Status != bank.Failed || q.Code != bank.CodeNotFound {
		t.Fatalf("Query(unknown) = %+v", q)
	}
	r, err := ch.Refund(ctx, bank.RefundRequest{RefundID: "r1", PaymentID: "p/1", Amount: 234, Currency: "CNY"})
	if err != nil || r.Status != bank.Succeeded {
		t.Fatalf("Refund = %+v, %v", r, err)
	}
	if q, _ := ch.QueryRefund(ctx, "r1"); q.Status != bank.Succeeded || q.Amount != 234 {
		t.Fatalf("QueryRefund = %+v", q)
	}
	lines, err := ch.Statement(ctx, time.Now().UTC())
	if err != nil || len(lines) != 2 || lines[0].ID != "p/1" || lines[1].ID != "r1" {
		t.Fatalf("Statement = %+v, %v", lines, err)
	}
	if want := b.Statement(time.Now().UTC()); lines[0].At.Equal(want[0].At) == false {
		t.Fatalf("statement time %v, bank has %v", lines[0].At, want[0].At)
	}
	if _, err := ch.Pay(ctx, bank.PayRequest{PaymentID: "p2", Currency: "CNY"}); !errors.Is(err, bank.ErrInvalidRequest) {
		t.Fatalf("zero amount: %v", err)
	}
}

func TestHTTPChannelLostAnswerAndUnreachableBank(t *testing.T) {
	b, ch := newHTTPBank(t, Profile{LostAnswerRate: 1}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := ch.Pay(ctx, pay("p1", 10))
	if err != nil || res.Status != bank.Unknown || res.Code != bank.CodeTimeout {
		t.Fatalf("lost answer: Pay = %+v, %v", res, err)
	}
	if s := b.Stats(); s.Charges != 1 {
		t.Fatalf("the bank should have charged: %+v", s)
	}

	// Nothing listens: the request certainly never left, which is retriable elsewhere.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	down := NewHTTPChannel("down", cny, url)
	res, err = down.Pay(context.Background(), pay("p2", 10))
	if err != nil || res.Status != bank.Failed || res.Code != bank.CodeChannelUnavailable || !res.Code.Retriable() {
		t.Fatalf("unreachable bank: Pay = %+v, %v", res, err)
	}
}

func TestHTTPNotificationsAreSignedAndVerified(t *testing.T) {
	secret := []byte("sim-secret")
	got := make(chan Notification, 4)
	bad := make(chan error, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n, err := ParseNotification(secret, r.Header.Get(SignatureHeader), body, time.Now())
		if err != nil {
			bad <- err
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got <- n
	}))
	defer receiver.Close()
	_, ch := newHTTPBank(t, Profile{AsyncRate: 1, Median: time.Millisecond}, NotifyHTTP(receiver.URL, secret, nil))
	res, _ := ch.Pay(context.Background(), pay("p1", 88))
	if res.Status != bank.Pending {
		t.Fatalf("Pay = %+v", res)
	}
	select {
	case n := <-got:
		if n.ID != "p1" || n.Status != bank.Succeeded || n.Amount != 88 {
			t.Fatalf("notification %+v", n)
		}
	case err := <-bad:
		t.Fatalf("notification refused: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
	// A forged or altered notification is refused.
	body := []byte(`{"kind":"payment","id":"p1","status":"succeeded","amount":88}`)
	if _, err := ParseNotification(secret, signature.Header([]byte("wrong"), time.Now(), body), body, time.Now()); !errors.Is(err, signature.ErrMismatch) {
		t.Fatalf("forged notification: %v", err)
	}
	if _, err := ParseNotification(secret, signature.Header(secret, time.Now(), body), []byte(strings.Replace(string(body), "88", "8800", 1)), time.Now()); err == nil {
		t.Fatal("altered body accepted")
	}
}

func TestReadStatementRejectsMalformedLines(t *testing.T) {
	head := "kind,id,channel_ref,amount,currency,status,at\n"
	ok := "payment,p1,R1,100,CNY,succeeded,2026-12-01T10:00:00Z\n"
	if lines, err := ReadStatement(strings.NewReader(head + ok)); err != nil || len(lines) != 1 || lines[0].Amount != 100 {
		t.Fatalf("good file: %+v, %v", lines, err)
	}
	for name, body := range map[string]string{
		"bad header":  "kind,id\n",
		"bad amount":  head + ok + "payment,p2,R2,-5,CNY,succeeded,2026-12-01T10:00:00Z\n",
		"bad time":    head + "payment,p2,R2,5,CNY,succeeded,yesterday\n",
		"pending":     head + "payment,p2,R2,5,CNY,pending,2026-12-01T10:00:00Z\n",
		"bad kind":    head + "chargeback,p2,R2,5,CNY,succeeded,2026-12-01T10:00:00Z\n",
		"short line":  head + "payment,p2\n",
		"empty input": "",
	} {
		_, err := ReadStatement(strings.NewReader(body))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(name, "amount") && !strings.Contains(err.Error(), "line 3") {
			t.Errorf("%s: error %q does not name line 3", name, err)
		}
	}
}
