package iso8583

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	moov "github.com/moov-io/iso8583"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/money"
)

// Host is a simulated ISO 8583 bank host: it answers 0200, 0400/0401 and 0800 on TCP with the
// books and behaviour of a simulated bank (latency, declines, dropped requests, lost answers).
// The bank's asynchronous mode does not apply: ISO 8583 financial requests are answered in
// line, so give the host a bank whose profile has no async rate.
type Host struct {
	bank *sim.Bank
	log  *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewHost returns a host in front of b.
func NewHost(b *sim.Bank, log *slog.Logger) *Host {
	if log == nil {
		log = slog.Default()
	}
	return &Host{bank: b, log: log, conns: make(map[net.Conn]struct{})}
}

// Serve accepts connections on ln until Close.
func (h *Host) Serve(ln net.Listener) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("iso8583: host closed")
	}
	h.ln = ln
	h.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			h.mu.Lock()
			closed := h.closed
			h.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		h.mu.Lock()
		h.conns[nc] = struct{}{}
		h.wg.Add(1)
		h.mu.Unlock()
		go h.serveConn(nc)
	}
}

// Close stops accepting, closes every connection and waits for their handlers.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	if h.ln != nil {
		h.ln.Close()
	}
	for nc := range h.conns {
		nc.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *Host) serveConn(nc net.Conn) {
	defer h.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	var wmu sync.Mutex
	var reqs sync.WaitGroup
	defer func() {
		cancel()
		nc.Close()
		reqs.Wait()
		h.mu.Lock()
		delete(h.conns, nc)
		h.mu.Unlock()
	}()
	for {
		msg, err := ReadFrame(nc)
		if err != nil {
			return // closed, or a malformed frame: drop the connection
		}
		reqs.Add(1)
		go func() {
			defer reqs.Done()
			resp := h.handle(ctx, msg)
			if resp == nil {
				return // no answer (dropped request or lost answer)
			}
			wmu.Lock()
			defer wmu.Unlock()
			if err := WriteFrame(nc, resp); err != nil {
				h.log.Debug("iso8583 host: write", "err", err)
			}
		}()
	}
}

// handle answers one request, or returns nil when the simulated network loses the answer.
func (h *Host) handle(ctx context.Context, req *moov.Message) *moov.Message {
	mti, _ := req.GetMTI()
	switch mti {
	case MTINetwork:
		if field(req, 70) != NetEcho {
			return respond(req, MTINetworkResponse, "30", "")
		}
		return respond(req, MTINetworkResponse, "00", "")
	case MTIFinancial:
		return h.financial(ctx, req)
	case MTIReversal, MTIReversalRepeat:
		refundID, paymentID := ids(field(req, 48))
		kind, id := "payment", paymentID
		if refundID != "" {
			kind, id = "refund", refundID
		}
		if id == "" {
			return respond(req, MTIReversalResponse, "30", "")
		}
		res, ok := h.bank.HandleReverse(ctx, kind, id)
		if !ok {
			return nil
		}
		code := "00"
		if res.Code == bank.CodeNotFound {
			code = "25"
		}
		return respond(req, MTIReversalResponse, code, res.ChannelRef)
	default:
		h.log.Warn("iso8583 host: unsupported message", "mti", mti)
		return respond(req, responseMTI(mti), "12", "") // invalid transaction
	}
}

func (h *Host) financial(ctx context.Context, req *moov.Message) *moov.Message {
	amount, err := strconv.ParseInt(field(req, 4), 10, 64)
	currency, ok := money.AlphaCode(field(req, 49))
	if err != nil || amount <= 0 || !ok {
		return respond(req, MTIFinancialResponse, "30", "")
	}
	refundID, paymentID := ids(field(req, 48))
	var res bank.Result
	var answered bool
	switch field(req, 3) {
	case ProcPurchase:
		if paymentID == "" {
			return respond(req, MTIFinancialResponse, "30", "")
		}
		card := bank.Card{PAN: field(req, 2)}
		if exp := field(req, 14); len(exp) == 4 {
			yy, _ := strconv.Atoi(exp[:2])
			mm, _ := strconv.Atoi(exp[2:])
			card.ExpiryYear, card.ExpiryMonth = 2000+yy, mm
		}
		res, answered = h.bank.HandlePay(ctx, bank.PayRequest{PaymentID: paymentID, Amount: amount, Currency: currency, Card: card})
	case ProcRefund:
		if refundID == "" || paymentID == "" {
			return respond(req, MTIFinancialResponse, "30", "")
		}
		res, answered = h.bank.HandleRefund(ctx, bank.RefundRequest{RefundID: refundID, PaymentID: paymentID, Amount: amount, Currency: currency})
	default:
		return respond(req, MTIFinancialResponse, "12", "")
	}
	if !answered {
		return nil
	}
	code := res.RawCode
	if code == sim.RawPending {
		code = "96" // the host cannot answer later in ISO 8583; see Host
	}
	if code == sim.RawReversed {
		code = "25"
	}
	return respond(req, MTIFinancialResponse, code, res.ChannelRef)
}

func responseMTI(mti string) string {
	if len(mti) != 4 {
		return "0810"
	}
	b := []byte(mti)
	if b[2] >= '0' && b[2] <= '8' {
		b[2]++
	}
	return string(b)
}

// respond builds the answer to req: the request's key fields echoed, field 39 and field 37.
func respond(req *moov.Message, mti, code, ref string) *moov.Message {
	resp := moov.NewMessage(Spec)
	resp.MTI(mti)
	for _, id := range []int{2, 3, 4, 7, 11, 41, 42, 48, 49} {
		if v := field(req, id); v != "" {
			resp.Field(id, v)
		}
	}
	resp.Field(39, code)
	if ref != "" {
		resp.Field(37, fmt.Sprintf("%-12.12s", ref))
		resp.Field(38, authCode(ref))
	}
	return resp
}

// authCode derives a six-character approval code from the reference.
func authCode(ref string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(ref); i++ {
		h = (h ^ uint32(ref[i])) * 16777619
	}
	return fmt.Sprintf("%06d", h%1_000_000)
}
