package ledger

import (
	"context"
	"errors"

	"github.com/fincore/fincore/apierror"
)

// Reads go straight to the store: whatever the engine acknowledged is already durable there.

// ListLimitMax bounds a page of a list.
const ListLimitMax = 1000

// Account returns an account with its balances.
func (e *Engine) Account(ctx context.Context, id string) (*Account, error) {
	a, err := e.store.GetAccount(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, apierror.Newf(apierror.AccountNotFound, "id", "account %q does not exist", id)
	}
	return a, err
}

// Transfer returns a transfer. A pending transfer past its timeout whose expiry timer has
// not fired yet already reads as expired: it can no longer be posted.
func (e *Engine) Transfer(ctx context.Context, id string) (*Transfer, error) {
	t, err := e.store.GetTransfer(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, apierror.Newf(apierror.TransferNotFound, "id", "transfer %q does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	e.effectiveStatus(t)
	return t, nil
}

func (e *Engine) effectiveStatus(t *Transfer) {
	if t.Status == StatusPending && t.ExpiresAt != 0 && Timestamp(e.cfg.Now().UnixNano()) >= t.ExpiresAt {
		t.Status = StatusExpired
	}
}

// AccountTransfers lists the journal records of an account, newest first, after the record
// startingAfter (a transfer id) if given. It returns whether more records follow.
func (e *Engine) AccountTransfers(ctx context.Context, accountID, startingAfter string, limit int) ([]*Transfer, bool, error) {
	if limit <= 0 || limit > ListLimitMax {
		return nil, false, apierror.Newf(apierror.InvalidRequest, "limit", "limit must be between 1 and %d", ListLimitMax)
	}
	if _, err := e.Account(ctx, accountID); err != nil {
		return nil, false, err
	}
	var before Timestamp
	if startingAfter != "" {
		c, err := e.store.GetTransfer(ctx, startingAfter)
		if errors.Is(err, ErrNotFound) || (err == nil && c.DebitAccountID != accountID && c.CreditAccountID != accountID) {
			return nil, false, apierror.Newf(apierror.InvalidRequest, "starting_after", "starting_after must be a transfer of account %q", accountID)
		}
		if err != nil {
			return nil, false, err
		}
		before = c.Timestamp
	}
	ts, err := e.store.AccountTransfers(ctx, accountID, before, limit+1)
	if err != nil {
		return nil, false, err
	}
	more := len(ts) > limit
	if more {
		ts = ts[:limit]
	}
	for _, t := range ts {
		e.effectiveStatus(t)
	}
	return ts, more, nil
}

// BalancesAt returns an account's balances as of instant at: the effect of every journal
// record with a timestamp at or before at. It costs two index look-ups whatever the history.
func (e *Engine) BalancesAt(ctx context.Context, accountID string, at Timestamp) (Balances, error) {
	if _, err := e.Account(ctx, accountID); err != nil {
		return Balances{}, err
	}
	return BalancesAt(ctx, e.store, accountID, at)
}

// BalancesAt reads an account's balances as of at from a store.
func BalancesAt(ctx context.Context, st Store, accountID string, at Timestamp) (Balances, error) {
	t, err := st.LastTransferAt(ctx, accountID, at)
	if errors.Is(err, ErrNotFound) {
		return Balances{}, nil
	}
	if err != nil {
		return Balances{}, err
	}
	if t.DebitAccountID == accountID {
		return t.DebitBalances, nil
	}
	return t.CreditBalances, nil
}
