package sim

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/platform/signature"
)

// The wire format of the simulated bank's HTTP interface.
type (
	payBody struct {
		PaymentID   string `json:"payment_id"`
		Amount      int64  `json:"amount"`
		Currency    string `json:"currency"`
		PAN         string `json:"pan"`
		Holder      string `json:"holder"`
		ExpiryMonth int    `json:"expiry_month"`
		ExpiryYear  int    `json:"expiry_year"`
		BankCode    string `json:"bank_code"`
		Description string `json:"description,omitempty"`
	}
	refundBody struct {
		RefundID   string `json:"refund_id"`
		PaymentID  string `json:"payment_id"`
		ChannelRef string `json:"channel_ref"`
		Amount     int64  `json:"amount"`
		Currency   string `json:"currency"`
	}
	answerBody struct {
		Status     bank.Status `json:"status"`
		RawCode    string      `json:"raw_code"`
		ChannelRef string      `json:"channel_ref,omitempty"`
		Amount     int64       `json:"amount,omitempty"`
		At         time.Time   `json:"at"`
	}
)

// maxHold bounds how long the server holds a request whose answer is lost before it drops
// the connection.
const maxHold = 2 * time.Minute

// SignatureHeader carries the simulated bank's signature on its notifications (the scheme of
// platform/signature).
const SignatureHeader = "Sim-Signature"

// Handler serves b over HTTP: POST /v1/pay, GET /v1/payments/{id}, POST /v1/refunds,
// GET /v1/refunds/{id}, GET /v1/statements/{YYYY-MM-DD} (CSV). A request the profile drops, or
// whose answer it loses, gets no answer: the connection is held until the client gives up
// (at most two minutes) and then closed.
func Handler(b *Bank) http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, r *http.Request, op func(context.Context) (bank.Result, bool)) {
		ctx, cancel := context.WithTimeout(r.Context(), maxHold)
		defer cancel()
		res, ok := op(ctx)
		if !ok {
			<-ctx.Done()
			panic(http.ErrAbortHandler) // close the connection without an answer
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answerBody{Status: res.Status, RawCode: res.RawCode, ChannelRef: res.ChannelRef, Amount: res.Amount, At: res.At})
	}
	decode := func(w http.ResponseWriter, r *http.Request, v any) bool {
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return false
		}
		return true
	}
	mux.HandleFunc("POST /v1/pay", func(w http.ResponseWriter, r *http.Request) {
		var p payBody
		if !decode(w, r, &p) {
			return
		}
		if p.PaymentID == "" || p.Amount <= 0 || p.Currency == "" {
			http.Error(w, "payment_id, a positive amount and currency are required", http.StatusBadRequest)
			return
		}
		req := bank.PayRequest{PaymentID: p.PaymentID, Amount: p.Amount, Currency: p.Currency, Description: p.Description,
			Card: bank.Card{PAN: p.PAN, Holder: p.Holder, ExpiryMonth: p.ExpiryMonth, ExpiryYear: p.ExpiryYear, BankCode: p.BankCode}}
		answer(w, r, func(ctx context.Context) (bank.Result, bool) { return b.HandlePay(ctx, req) })
	})
	mux.HandleFunc("POST /v1/refunds", func(w http.ResponseWriter, r *http.Request) {
		var p refundBody
		if !decode(w, r, &p) {
			return
		}
		if p.RefundID == "" || p.PaymentID == "" || p.Amount <= 0 {
			http.Error(w, "refund_id, payment_id and a positive amount are required", http.StatusBadRequest)
			return
		}
		req := bank.RefundRequest{RefundID: p.RefundID, PaymentID: p.PaymentID, ChannelRef: p.ChannelRef, Amount: p.Amount, Currency: p.Currency}
		answer(w, r, func(ctx context.Context) (bank.Result, bool) { return b.HandleRefund(ctx, req) })
	})
	for _, kind := range []string{"payment", "refund"} {
		mux.HandleFunc("GET /v1/"+kind+"s/{id}", func(w http.ResponseWriter, r *http.Request) {
			id := r.PathValue("id")
			answer(w, r, func(ctx context.Context) (bank.Result, bool) { return b.HandleQuery(ctx, kind, id) })
		})
	}
	mux.HandleFunc("GET /v1/statements/{day}", func(w http.ResponseWriter, r *http.Request) {
		day, err := time.Parse(time.DateOnly, r.PathValue("day"))
		if err != nil {
			http.Error(w, "day must be YYYY-MM-DD", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/csv")
		WriteStatement(w, b.Statement(day))
	})
	return mux
}

// statementHeader is the first line of a statement file.
var statementHeader = []string{"kind", "id", "channel_ref", "amount", "currency", "status", "at"}

// WriteStatement writes lines as the simulated bank's daily statement file (CSV with a header).
func WriteStatement(w io.Writer, lines []bank.StatementLine) error {
	cw := csv.NewWriter(w)
	cw.Write(statementHeader)
	for _, l := range lines {
		cw.Write([]string{l.Kind, l.ID, l.ChannelRef, strconv.FormatInt(l.Amount, 10), l.Currency, string(l.Status), l.At.UTC().Format(time.RFC3339Nano)})
	}
	cw.Flush()
	return cw.Error()
}

// ReadStatement parses a statement file written by WriteStatement, rejecting malformed lines
// with their line number.
func ReadStatement(r io.Reader) ([]bank.StatementLine, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(statementHeader)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("statement: header: %w", err)
	}
	for i, h := range statementHeader {
		if head[i] != h {
			return nil, fmt.Errorf("statement: header column %d is %q, want %q", i+1, head[i], h)
		}
	}
	var out []bank.StatementLine
	for n := 2; ; n++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("statement: %w", err)
		}
		amount, err := strconv.ParseInt(rec[3], 10, 64)
		if err != nil || amount <= 0 {
			return nil, fmt.Errorf("statement: line %d: amount %q is not a positive integer", n, rec[3])
		}
		at, err := time.Parse(time.RFC3339Nano, rec[6])
		if err != nil {
			return nil, fmt.Errorf("statement: line %d: time %q: %w", n, rec[6], err)
		}
		st := bank.Status(rec[5])
		if (rec[0] != "payment" && rec[0] != "refund") || !st.Final() || rec[1] == "" {
			return nil, fmt.Errorf("statement: line %d: want kind payment|refund, an id and a final status", n)
		}
		out = append(out, bank.StatementLine{Kind: rec[0], ID: rec[1], ChannelRef: rec[2], Amount: amount, Currency: rec[4], Status: st, At: at})
	}
}

// HTTPChannel is a bank.Channel reaching a simulated bank over HTTP (`fincore bank-sim`).
type HTTPChannel struct {
	code   string
	caps   bank.Capabilities
	base   string
	client *http.Client
}

// NewHTTPChannel returns a channel on the simulated bank served at base (http://host:port).
func NewHTTPChannel(code string, caps bank.Capabilities, base string) *HTTPChannel {
	return &HTTPChannel{code: code, caps: caps, base: base, client: &http.Client{Timeout: DefaultTimeout}}
}

// Code implements bank.Channel.
func (c *HTTPChannel) Code() string { return c.code }

// Capabilities implements bank.Channel.
func (c *HTTPChannel) Capabilities() bank.Capabilities { return c.caps }

// do sends one request. Only a connection that could not be made is a certain failure
// (channel_unavailable); any other error may have come after the bank acted: unknown.
func (c *HTTPChannel) do(ctx context.Context, method, path string, body any) (bank.Result, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return bank.Result{}, fmt.Errorf("%w: %v", bank.ErrInvalidRequest, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return bank.Result{Status: bank.Failed, Code: bank.CodeChannelUnavailable, Message: err.Error(), At: time.Now()}, nil
		}
		return bank.Result{Status: bank.Unknown, Code: bank.CodeTimeout, Message: err.Error(), At: time.Now()}, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return bank.Result{Status: bank.Unknown, Code: bank.CodeTimeout, Message: err.Error(), At: time.Now()}, nil
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest:
		return bank.Result{}, fmt.Errorf("%w: %s", bank.ErrInvalidRequest, bytes.TrimSpace(data))
	case resp.StatusCode != http.StatusOK:
		return bank.Result{Status: bank.Unknown, Code: bank.CodeTimeout, Message: fmt.Sprintf("HTTP %d", resp.StatusCode), At: time.Now()}, nil
	}
	var a answerBody
	if err := json.Unmarshal(data, &a); err != nil {
		return bank.Result{Status: bank.Unknown, Code: bank.CodeTimeout, Message: "unreadable answer: " + err.Error(), At: time.Now()}, nil
	}
	return bank.Result{Status: a.Status, Code: Map(a.RawCode), RawCode: a.RawCode, ChannelRef: a.ChannelRef, Amount: a.Amount, At: a.At}, nil
}

// Pay implements bank.Channel.
func (c *HTTPChannel) Pay(ctx context.Context, req bank.PayRequest) (bank.Result, error) {
	return c.do(ctx, http.MethodPost, "/v1/pay", payBody{PaymentID: req.PaymentID, Amount: req.Amount, Currency: req.Currency,
		PAN: req.Card.PAN, Holder: req.Card.Holder, ExpiryMonth: req.Card.ExpiryMonth, ExpiryYear: req.Card.ExpiryYear,
		BankCode: req.Card.BankCode, Description: req.Description})
}

// Refund implements bank.Channel.
func (c *HTTPChannel) Refund(ctx context.Context, req bank.RefundRequest) (bank.Result, error) {
	return c.do(ctx, http.MethodPost, "/v1/refunds", refundBody{RefundID: req.RefundID, PaymentID: req.PaymentID,
		ChannelRef: req.ChannelRef, Amount: req.Amount, Currency: req.Currency})
}

// Query implements bank.Channel.
func (c *HTTPChannel) Query(ctx context.Context, paymentID string) (bank.Result, error) {
	return c.do(ctx, http.MethodGet, "/v1/payments/"+pathEscape(paymentID), nil)
}

// QueryRefund implements bank.Channel.
func (c *HTTPChannel) QueryRefund(ctx context.Context, refundID string) (bank.Result, error) {
	return c.do(ctx, http.MethodGet, "/v1/refunds/"+pathEscape(refundID), nil)
}

// Statement implements bank.Channel.
func (c *HTTPChannel) Statement(ctx context.Context, day time.Time) ([]bank.StatementLine, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/statements/"+day.Format(time.DateOnly), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("statement: HTTP %d", resp.StatusCode)
	}
	return ReadStatement(io.LimitReader(resp.Body, 256<<20))
}

func pathEscape(s string) string { return url.PathEscape(s) }

// NotifyHTTP returns a Notify function that POSTs each notification as JSON to target, signed
// with secret in the Sim-Signature header, retrying a few times with backoff on failure.
func NotifyHTTP(target string, secret []byte, log *slog.Logger) func(Notification) {
	client := &http.Client{Timeout: 5 * time.Second}
	if log == nil {
		log = slog.Default()
	}
	return func(n Notification) {
		body, _ := json.Marshal(n)
		backoff := 100 * time.Millisecond
		for attempt := 1; attempt <= 5; attempt++ {
			req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(SignatureHeader, signature.Header(secret, time.Now(), body))
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 300 {
					return
				}
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			log.Warn("bank-sim notification not delivered", "id", n.ID, "attempt", attempt, "err", err)
			time.Sleep(backoff)
			backoff *= 2
		}
	}
}

// ParseNotification verifies a notification's signature and decodes it.
func ParseNotification(secret []byte, header string, body []byte, now time.Time) (Notification, error) {
	if _, err := signature.Verify(secret, header, body, now, 0); err != nil {
		return Notification{}, err
	}
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		return Notification{}, fmt.Errorf("sim: notification: %w", err)
	}
	if (n.Kind != "payment" && n.Kind != "refund") || n.ID == "" || !n.Status.Final() {
		return Notification{}, fmt.Errorf("sim: notification lacks kind, id or a final status")
	}
	return n, nil
}
