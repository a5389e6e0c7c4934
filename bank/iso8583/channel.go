package iso8583

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/money"
)

// Options configure a Channel.
type Options struct {
	Code string
	Caps bank.Capabilities
	Addr string // host:port of the ISO 8583 host
	// Timeout bounds a request whose context has no deadline (default 5 s).
	Timeout time.Duration
	// ReversalTimeout bounds each reversal attempt (default 2 s); ReversalAttempts is how many
	// are made (0400, then 0401 repeats) before the outcome is left unknown (default 3).
	ReversalTimeout  time.Duration
	ReversalAttempts int
	// EchoInterval is how often an idle connection is tested with 0800 (default 30 s; < 0
	// turns echo off). A failed echo closes the connection; the next request dials again.
	EchoInterval time.Duration
	// TerminalID (field 41, 8 characters) and MerchantID (field 42, 15) identify fincore to the host.
	TerminalID, MerchantID string
	// Statement fetches the host's daily statement file (out of band: ISO 8583 has no
	// statement message). Nil makes Statement fail.
	Statement func(ctx context.Context, day time.Time) ([]bank.StatementLine, error)
	Logger    *slog.Logger
}

// Channel is a bank.Channel on an ISO 8583 host. It keeps one TCP connection, dialled when
// needed, with any number of requests in flight. It is safe for concurrent use.
//
// A request that gets no answer is reversed (0400, repeated as 0401), so that its outcome
// becomes certain: reversed means not charged. Because ISO 8583 has no inquiry message, Query
// and QueryRefund resolve an unknown outcome the same way, by reversal: they must only be
// called for payments whose outcome is unknown, and their answer is final.
type Channel struct {
	opts Options
	stan atomic.Uint32
	log  *slog.Logger

	mu     sync.Mutex
	conn   *conn
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

var _ bank.Channel = (*Channel)(nil)

// New returns a channel to the host at opts.Addr. It dials on first use.
func New(opts Options) (*Channel, error) {
	if opts.Code == "" || opts.Addr == "" {
		return nil, errors.New("iso8583: a channel needs a code and an address")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.ReversalTimeout <= 0 {
		opts.ReversalTimeout = 2 * time.Second
	}
	if opts.ReversalAttempts <= 0 {
		opts.ReversalAttempts = 3
	}
	if opts.EchoInterval == 0 {
		opts.EchoInterval = 30 * time.Second
	}
	opts.TerminalID = fit(opts.TerminalID, 8, "FINCORE1")
	opts.MerchantID = fit(opts.MerchantID, 15, "FINCORE")
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Channel{opts: opts, log: opts.Logger, stop: make(chan struct{})}
	if opts.EchoInterval > 0 {
		c.wg.Add(1)
		go c.echoLoop()
	}
	return c, nil
}

// fit pads or cuts s to n characters (default def when empty).
func fit(s string, n int, def string) string {
	if s == "" {
		s = def
	}
	for len(s) < n {
		s += " "
	}
	return s[:n]
}

// Close closes the connection and stops the echo loop.
func (c *Channel) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.stop)
	cn := c.conn
	c.conn = nil
	c.mu.Unlock()
	if cn != nil {
		cn.close(errors.New("iso8583: channel closed"))
	}
	c.wg.Wait()
	return nil
}

// Code implements bank.Channel.
func (c *Channel) Code() string { return c.opts.Code }

// Capabilities implements bank.Channel.
func (c *Channel) Capabilities() bank.Capabilities { return c.opts.Caps }

// conn is one TCP connection with its in-flight requests.
type conn struct {
	nc  net.Conn
	wmu sync.Mutex

	mu      sync.Mutex
	waiting map[string]chan *moov.Message // by STAN
	dead    chan struct{}
	err     error
}

func (cn *conn) close(err error) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil {
		return
	}
	cn.err = err
	close(cn.dead)
	cn.nc.Close()
}

func (c *Channel) readLoop(cn *conn) {
	defer c.wg.Done()
	for {
		msg, err := ReadFrame(cn.nc)
		if err != nil {
			cn.close(err)
			c.mu.Lock()
			if c.conn == cn {
				c.conn = nil
			}
			c.mu.Unlock()
			return
		}
		stan := field(msg, 11)
		cn.mu.Lock()
		ch, ok := cn.waiting[stan]
		delete(cn.waiting, stan)
		cn.mu.Unlock()
		if !ok {
			mti, _ := msg.GetMTI()
			c.log.Warn("iso8583: late or unexpected response dropped", "channel", c.opts.Code, "mti", mti, "stan", stan)
			continue
		}
		ch <- msg
	}
}

// errNotSent: the request certainly did not leave (no connection could be made).
var errNotSent = errors.New("iso8583: not sent")

// errNoAnswer: the request may have reached the host but no answer came.
var errNoAnswer = errors.New("iso8583: no answer")

func (c *Channel) connection(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("iso8583: channel closed")
	}
	if c.conn != nil {
		return c.conn, nil
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.opts.Addr)
	if err != nil {
		return nil, err
	}
	cn := &conn{nc: nc, waiting: make(map[string]chan *moov.Message), dead: make(chan struct{})}
	c.conn = cn
	c.wg.Add(1)
	go c.readLoop(cn)
	return cn, nil
}

func (c *Channel) nextSTAN() string {
	for {
		n := c.stan.Add(1) % 1_000_000
		if n != 0 {
			return fmt.Sprintf("%06d", n)
		}
	}
}

// exchange sends msg (whose field 11 is set) and waits for its answer.
func (c *Channel) exchange(ctx context.Context, msg *moov.Message) (*moov.Message, error) {
	cn, err := c.connection(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotSent, err)
	}
	stan := field(msg, 11)
	ch := make(chan *moov.Message, 1)
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return nil, fmt.Errorf("%w: connection closed", errNotSent)
	}
	cn.waiting[stan] = ch
	cn.mu.Unlock()
	forget := func() {
		cn.mu.Lock()
		delete(cn.waiting, stan)
		cn.mu.Unlock()
	}
	cn.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		cn.nc.SetWriteDeadline(dl)
	}
	err = WriteFrame(cn.nc, msg)
	cn.wmu.Unlock()
	if err != nil {
		// Part of the frame may have left: the host may act on it.
		forget()
		cn.close(err)
		return nil, fmt.Errorf("%w: write: %v", errNoAnswer, err)
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
		forget()
		return nil, fmt.Errorf("%w: %v", errNoAnswer, ctx.Err())
	case <-cn.dead:
		forget()
		return nil, fmt.Errorf("%w: connection lost", errNoAnswer)
	}
}

func (c *Channel) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.opts.Timeout)
}

func transmission(t time.Time) string { return t.UTC().Format("0102150405") }

// newMessage starts a message with MTI, field 7 and a fresh STAN.
func (c *Channel) newMessage(mti string) (*moov.Message, string, string) {
	msg := moov.NewMessage(Spec)
	msg.MTI(mti)
	at := transmission(time.Now())
	stan := c.nextSTAN()
	msg.Field(7, at)
	msg.Field(11, stan)
	return msg, stan, at
}

// financial builds and sends a 0200 and, if no answer comes, reverses it.
func (c *Channel) financial(ctx context.Context, proc string, amount int64, currency string, card *bank.Card, f48 string) (bank.Result, error) {
	num, ok := money.NumericCode(currency)
	if !ok {
		return bank.Result{}, fmt.Errorf("%w: currency %q has no ISO 4217 numeric code", bank.ErrInvalidRequest, currency)
	}
	if amount <= 0 || amount > 999_999_999_999 {
		return bank.Result{}, fmt.Errorf("%w: amount %d outside 1..999999999999", bank.ErrInvalidRequest, amount)
	}
	if len(f48) > 999 {
		return bank.Result{}, fmt.Errorf("%w: ids too long for field 48", bank.ErrInvalidRequest)
	}
	msg, stan, at := c.newMessage(MTIFinancial)
	msg.Field(3, proc)
	msg.Field(4, strconv.FormatInt(amount, 10))
	msg.Field(41, c.opts.TerminalID)
	msg.Field(42, c.opts.MerchantID)
	msg.Field(48, f48)
	msg.Field(49, num)
	if card != nil {
		if card.PAN == "" || len(card.PAN) > 19 {
			return bank.Result{}, fmt.Errorf("%w: card number must have 1 to 19 digits", bank.ErrInvalidRequest)
		}
		msg.Field(2, card.PAN)
		if card.ExpiryYear > 0 && card.ExpiryMonth > 0 {
			msg.Field(14, fmt.Sprintf("%02d%02d", card.ExpiryYear%100, card.ExpiryMonth))
		}
	}
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.exchange(rctx, msg)
	switch {
	case errors.Is(err, errNotSent):
		return bank.Result{Status: bank.Failed, Code: bank.CodeChannelUnavailable, Message: err.Error(), At: time.Now()}, nil
	case err != nil:
		c.log.Warn("iso8583: no answer, reversing", "channel", c.opts.Code, "stan", stan, "err", err)
		return c.reverse(context.WithoutCancel(ctx), proc, amount, num, f48, MTIFinancial+stan+at), nil
	}
	return resultOf(resp), nil
}

// resultOf reads a 0210.
func resultOf(resp *moov.Message) bank.Result {
	code := field(resp, 39)
	res := bank.Result{Code: Map(code), RawCode: code, ChannelRef: trimRef(field(resp, 37)), At: time.Now()}
	if amt, err := strconv.ParseInt(field(resp, 4), 10, 64); err == nil {
		res.Amount = amt
	}
	switch {
	case code == "00":
		res.Status = bank.Succeeded
	case res.Code.Info().Unknown:
		res.Status = bank.Unknown
	default:
		res.Status = bank.Failed
	}
	return res
}

func trimRef(s string) string {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// reverse sends 0400 (then 0401 repeats) for the request identified by f48 until the host
// answers: "00" means reversed, "25" means the host never had it; either way nothing is
// charged. Without an answer the outcome stays unknown.
func (c *Channel) reverse(ctx context.Context, proc string, amount int64, currencyNum, f48, original string) bank.Result {
	for attempt := 0; attempt < c.opts.ReversalAttempts; attempt++ {
		mti := MTIReversal
		if attempt > 0 {
			mti = MTIReversalRepeat
		}
		msg, _, _ := c.newMessage(mti)
		msg.Field(3, proc)
		msg.Field(4, strconv.FormatInt(amount, 10))
		msg.Field(41, c.opts.TerminalID)
		msg.Field(42, c.opts.MerchantID)
		msg.Field(48, f48)
		msg.Field(49, currencyNum)
		msg.Field(90, fitZeros(original, 42))
		rctx, cancel := context.WithTimeout(ctx, c.opts.ReversalTimeout)
		resp, err := c.exchange(rctx, msg)
		cancel()
		if err != nil {
			if errors.Is(err, errNotSent) {
				time.Sleep(c.opts.ReversalTimeout / 4)
			}
			continue
		}
		switch code := field(resp, 39); code {
		case "00":
			return bank.Result{Status: bank.Failed, Code: bank.CodeReversed, RawCode: code, At: time.Now()}
		case "25":
			return bank.Result{Status: bank.Failed, Code: bank.CodeNotFound, RawCode: code, At: time.Now()}
		default:
			c.log.Warn("iso8583: reversal refused", "channel", c.opts.Code, "code", code, "attempt", attempt+1)
		}
	}
	return bank.Result{Status: bank.Unknown, Code: bank.CodeTimeout, Message: "no answer and the reversal was not confirmed", At: time.Now()}
}

func fitZeros(s string, n int) string {
	for len(s) < n {
		s += "0"
	}
	return s[:n]
}

// Pay implements bank.Channel.
func (c *Channel) Pay(ctx context.Context, req bank.PayRequest) (bank.Result, error) {
	if req.PaymentID == "" {
		return bank.Result{}, fmt.Errorf("%w: payment id required", bank.ErrInvalidRequest)
	}
	return c.financial(ctx, ProcPurchase, req.Amount, req.Currency, &req.Card, "PID:"+req.PaymentID)
}

// Refund implements bank.Channel.
func (c *Channel) Refund(ctx context.Context, req bank.RefundRequest) (bank.Result, error) {
	if req.RefundID == "" || req.PaymentID == "" {
		return bank.Result{}, fmt.Errorf("%w: refund and payment ids required", bank.ErrInvalidRequest)
	}
	return c.financial(ctx, ProcRefund, req.Amount, req.Currency, nil, "RID:"+req.RefundID+";PID:"+req.PaymentID)
}

// Query implements bank.Channel by reversal (see Channel).
func (c *Channel) Query(ctx context.Context, paymentID string) (bank.Result, error) {
	return c.reverse(ctx, ProcPurchase, 0, "000", "PID:"+paymentID, MTIFinancial), nil
}

// QueryRefund implements bank.Channel by reversal (see Channel).
func (c *Channel) QueryRefund(ctx context.Context, refundID string) (bank.Result, error) {
	return c.reverse(ctx, ProcRefund, 0, "000", "RID:"+refundID, MTIFinancial), nil
}

// Statement implements bank.Channel through Options.Statement.
func (c *Channel) Statement(ctx context.Context, day time.Time) ([]bank.StatementLine, error) {
	if c.opts.Statement == nil {
		return nil, fmt.Errorf("iso8583: channel %s has no statement source: %w", c.opts.Code, bank.ErrNoStatements)
	}
	return c.opts.Statement(ctx, day)
}

// Echo sends 0800 (code 301) and waits for 0810 "00".
func (c *Channel) Echo(ctx context.Context) error {
	msg, _, _ := c.newMessage(MTINetwork)
	msg.Field(70, NetEcho)
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.exchange(rctx, msg)
	if err != nil {
		return err
	}
	if code := field(resp, 39); code != "00" {
		return fmt.Errorf("iso8583: echo answered %q", code)
	}
	return nil
}

func (c *Channel) echoLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.EchoInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		cn := c.conn
		c.mu.Unlock()
		if cn == nil {
			continue // nothing to keep alive; the next request dials
		}
		if err := c.Echo(context.Background()); err != nil {
			c.log.Warn("iso8583: echo failed, closing the connection", "channel", c.opts.Code, "err", err)
			cn.close(err)
		}
	}
}
