package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/platform/timer"
)

// Pending transfers with a timeout expire on durable timers (docs/adr/0012): the commit that
// writes such a transfer also writes its expiry timer (Batch.Timers), and the timer's
// handler, ExpireTimer, expires the transfer through the writer when it fires.

// ExpiryHandler is the timer handler name of pending-transfer expiries: register
// Engine.ExpireTimer under it.
const ExpiryHandler = "ledger.expire"

// ErrNotDue is returned by Expire for a pending transfer whose timeout has not passed yet by
// the engine's clock (the timer's clock is ahead of it): the timer retries.
var ErrNotDue = errors.New("ledger: pending transfer not due to expire yet")

// ExpiryID is the id of the record that expires pending transfer id. '#' never appears in a
// client id, so it cannot collide.
func ExpiryID(pendingID string) string { return pendingID + "#expire" }

// IsExpiryID reports whether id names an expiry record.
func IsExpiryID(id string) bool { return strings.HasSuffix(id, "#expire") }

// ExpiryTimerID is the id of the timer that expires pending transfer id.
func ExpiryTimerID(pendingID string) string { return ExpiryHandler + ":" + pendingID }

// ExpiryTimer is the timer that expires pending transfer t: due at t.ExpiresAt, handled by
// ExpiryHandler, with the transfer id as payload. Migration 0008 of both stores makes the
// same timers for pending transfers written before they existed.
func ExpiryTimer(t *Transfer) timer.Timer {
	return timer.Timer{
		ID:      ExpiryTimerID(t.ID),
		Handler: ExpiryHandler,
		FireAt:  time.Unix(0, int64(t.ExpiresAt)).UTC(),
		Payload: []byte(t.ID),
	}
}

// expireOutcome is what an expire input found.
type expireOutcome uint8

const (
	expired       expireOutcome = iota // the expiry record was written
	alreadyClosed                      // posted, voided or expired before: nothing to do
	notDue                             // still pending, timeout not yet passed
	noPending                          // no pending transfer with this id
	noTimeout                          // a pending transfer without a timeout
)

// Expire expires pending transfer id if its timeout has passed, and reports whether it did.
// It is idempotent: a transfer already posted, voided or expired is a no-op (false, nil).
// A transfer still within its timeout gives ErrNotDue; an id that names no pending transfer
// with a timeout gives an error too.
func (e *Engine) Expire(ctx context.Context, id string) (bool, error) {
	r := &request{expire: []string{id}}
	if err := e.submit(ctx, r); err != nil {
		return false, err
	}
	if r.err != nil {
		return false, r.err
	}
	switch r.outcomes[0] {
	case expired:
		return true, nil
	case alreadyClosed:
		return false, nil
	case notDue:
		return false, fmt.Errorf("expire %q: %w", id, ErrNotDue)
	case noTimeout:
		return false, apierror.Newf(apierror.InvalidRequest, "pending_id", "pending transfer %q has no timeout", id)
	}
	return false, apierror.Newf(apierror.PendingNotFound, "pending_id", "no pending transfer %q", id)
}

// ExpireTimer is the handler of ExpiryHandler timers (a timer.HandlerFunc): it expires the
// pending transfer named by the payload. Returning an error makes the timer retry, so it
// returns nil only once the transfer is closed, whether by this call or before.
func (e *Engine) ExpireTimer(ctx context.Context, t timer.Timer) error {
	id := string(t.Payload)
	if id == "" {
		return fmt.Errorf("expiry timer %s: empty payload", t.ID)
	}
	ok, err := e.Expire(ctx, id)
	if err != nil {
		return err
	}
	if ok {
		e.cfg.Logger.Debug("pending transfer expired", "id", id, "late", e.cfg.Now().Sub(t.FireAt))
	}
	return nil
}

// expireLoop is the optional sweep (Config.ExpiryInterval). It runs at start too, so
// transfers that came due while the process was down expire promptly.
func (e *Engine) expireLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.ExpiryInterval)
	defer t.Stop()
	for {
		e.ExpireDue(context.Background())
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
	}
}

// ExpireDue expires every pending transfer whose timeout has passed, found by a scan of
// storage, and returns how many it expired. It is the sweep; expiry timers make it
// unnecessary where a timer service runs.
func (e *Engine) ExpireDue(ctx context.Context) (int, error) {
	const page = 1000
	total := 0
	for {
		if e.failed.Load() != nil {
			return total, nil
		}
		ids, err := e.store.DuePending(ctx, Timestamp(e.cfg.Now().UnixNano()), page)
		if err != nil {
			e.cfg.Logger.Warn("scan due pending transfers", "err", err)
			return total, err
		}
		if len(ids) == 0 {
			return total, nil
		}
		r := &request{expire: ids}
		if err := e.submit(ctx, r); err != nil {
			return total, err
		}
		if r.err != nil {
			return total, r.err
		}
		n := 0
		for _, o := range r.outcomes {
			if o == expired {
				n++
			}
		}
		total += n
		if len(ids) < page || n == 0 {
			return total, nil
		}
	}
}

// applyExpire writes the expiry record of pending transfer id if its timeout has passed.
func (e *Engine) applyExpire(id string) (*Transfer, expireOutcome) {
	g := e.g
	p := g.lookup(id)
	switch {
	case p == nil || !p.Pending:
		return nil, noPending
	case p.Status != StatusPending:
		return nil, alreadyClosed
	case p.ExpiresAt == 0:
		return nil, noTimeout
	case p.ExpiresAt > g.now:
		return nil, notDue
	}
	dr, cr := e.cache[p.DebitAccountID], e.cache[p.CreditAccountID]
	if dr == nil || cr == nil {
		e.cfg.Logger.Error("accounts of pending transfer missing", "id", p.ID)
		return nil, noPending
	}
	t := &Transfer{
		ID: ExpiryID(p.ID), DebitAccountID: p.DebitAccountID, CreditAccountID: p.CreditAccountID,
		Amount: p.Amount, Currency: p.Currency, Code: p.Code, PendingID: p.ID, Status: StatusExpired,
		PendingDelta: -p.Amount, ReqHash: []byte{},
	}
	e.closePending(p, StatusExpired)
	e.appendRecord(t, dr, cr)
	return t, expired
}
