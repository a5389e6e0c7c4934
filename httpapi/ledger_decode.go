package httpapi

import (
	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// The decoders below check the shape of ledger requests (fields, types, presence, amount
// ranges). The ledger validates values (id and currency syntax, metadata limits, same
// account) and state (balances, pending transfers) itself.

// decodeAccount decodes POST /v1/accounts:
// {"id"?, "currency", "code"?, "flags"?: {...}, "metadata"?}.
func decodeAccount(body []byte) (ledger.AccountInput, *apierror.Error) {
	var in ledger.AccountInput
	d, e := newDecoder(body)
	if e != nil {
		return in, e
	}
	present, e := d.object("", func(key, p string) *apierror.Error {
		var e *apierror.Error
		switch key {
		case "id":
			_, e = d.str(p, &in.ID)
		case "currency":
			_, e = d.str(p, &in.Currency)
		case "code":
			_, e = d.str(p, &in.Code)
		case "flags":
			_, e = d.object(p, func(key, p string) *apierror.Error {
				switch key {
				case "debits_must_not_exceed_credits":
					_, e := d.boolean(p, &in.Flags.DebitsMustNotExceedCredits)
					return e
				case "credits_must_not_exceed_debits":
					_, e := d.boolean(p, &in.Flags.CreditsMustNotExceedDebits)
					return e
				}
				return unknownField(p)
			})
		case "metadata":
			_, e = d.metadata(p, &in.Metadata)
		default:
			return unknownField(p)
		}
		return e
	})
	e = d.finishObject(present, e)
	if e != nil {
		return in, e
	}
	if in.Currency == "" {
		return in, required("currency")
	}
	return in, nil
}

// decodeTransferFields reads one transfer object at param. In a batch (batch true) it also
// accepts "action" and "pending_id", so that a batch can post or void pending transfers.
func decodeTransferFields(d *decoder, param string, batch bool) (ledger.TransferInput, *apierror.Error) {
	var in ledger.TransferInput
	var action string
	var hasAmount bool
	present, e := d.object(param, func(key, p string) *apierror.Error {
		var e *apierror.Error
		switch key {
		case "id":
			_, e = d.str(p, &in.ID)
		case "debit_account_id":
			_, e = d.str(p, &in.DebitAccountID)
		case "credit_account_id":
			_, e = d.str(p, &in.CreditAccountID)
		case "amount":
			hasAmount, e = d.integer(p, 1, money.MaxAmount, &in.Amount)
		case "currency":
			_, e = d.str(p, &in.Currency)
		case "code":
			_, e = d.str(p, &in.Code)
		case "pending":
			_, e = d.boolean(p, &in.Pending)
		case "timeout_seconds":
			_, e = d.integer(p, 0, ledger.TimeoutSecondsMax, &in.TimeoutSeconds)
		case "metadata":
			_, e = d.metadata(p, &in.Metadata)
		case "action":
			if !batch {
				return unknownField(p)
			}
			_, e = d.str(p, &action)
		case "pending_id":
			if !batch {
				return unknownField(p)
			}
			_, e = d.str(p, &in.PendingID)
		default:
			return unknownField(p)
		}
		return e
	})
	if e != nil {
		return in, e
	}
	if !present {
		return in, invalid(param, "%s must be a JSON object, not null.", name(param))
	}
	switch action {
	case "":
	case "post":
		in.Action = ledger.ActionPost
	case "void":
		in.Action = ledger.ActionVoid
	default:
		return in, invalid(join(param, "action"), `%s must be "post" or "void" (leave it out to create a transfer).`, join(param, "action"))
	}
	if in.ID == "" {
		return in, required(join(param, "id"))
	}
	if in.Action == ledger.ActionCreate {
		if in.PendingID != "" {
			return in, invalid(join(param, "pending_id"), `%s is only allowed with action "post" or "void".`, join(param, "pending_id"))
		}
		for _, f := range []struct{ name, v string }{
			{"debit_account_id", in.DebitAccountID},
			{"credit_account_id", in.CreditAccountID},
		} {
			if f.v == "" {
				return in, required(join(param, f.name))
			}
		}
		if !hasAmount {
			return in, required(join(param, "amount"))
		}
		if in.Currency == "" {
			return in, required(join(param, "currency"))
		}
		return in, nil
	}
	// A post or void takes its accounts, currency and code from the pending transfer.
	if in.PendingID == "" {
		return in, required(join(param, "pending_id"))
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"debit_account_id", in.DebitAccountID != ""},
		{"credit_account_id", in.CreditAccountID != ""},
		{"currency", in.Currency != ""},
		{"code", in.Code != ""},
		{"pending", in.Pending},
		{"timeout_seconds", in.TimeoutSeconds != 0},
		{"amount", hasAmount && in.Action == ledger.ActionVoid},
	} {
		if f.set {
			p := join(param, f.name)
			return in, invalid(p, "%s is not allowed with action %q: a post or void takes it from the pending transfer.", p, action)
		}
	}
	return in, nil
}

// decodeTransfer decodes POST /v1/transfers.
func decodeTransfer(body []byte) (ledger.TransferInput, *apierror.Error) {
	d, e := newDecoder(body)
	if e != nil {
		return ledger.TransferInput{}, e
	}
	in, e := decodeTransferFields(d, "", false)
	if e == nil {
		e = d.end()
	}
	return in, e
}

// decodeClose decodes POST /v1/transfers/{pending_id}/post ({"id", "amount"?, "metadata"?})
// and /void ({"id", "metadata"?}).
func decodeClose(body []byte, action ledger.Action, pendingID string) (ledger.TransferInput, *apierror.Error) {
	in := ledger.TransferInput{Action: action, PendingID: pendingID}
	d, e := newDecoder(body)
	if e != nil {
		return in, e
	}
	present, e := d.object("", func(key, p string) *apierror.Error {
		var e *apierror.Error
		switch key {
		case "id":
			_, e = d.str(p, &in.ID)
		case "amount":
			if action != ledger.ActionPost {
				return invalid(p, "amount is not allowed on a void: it releases the whole pending amount.")
			}
			_, e = d.integer(p, 1, money.MaxAmount, &in.Amount)
		case "metadata":
			_, e = d.metadata(p, &in.Metadata)
		default:
			return unknownField(p)
		}
		return e
	})
	e = d.finishObject(present, e)
	if e != nil {
		return in, e
	}
	if in.ID == "" {
		return in, required("id")
	}
	return in, nil
}

// decodeBatch decodes POST /v1/transfer_batches: {"transfers": [...], "atomic": bool}. It
// stops at the first item over ledger.BatchMax, without reading the rest.
func decodeBatch(body []byte) ([]ledger.TransferInput, bool, *apierror.Error) {
	var ins []ledger.TransferInput
	var atomic, hasAtomic, hasTransfers bool
	d, e := newDecoder(body)
	if e != nil {
		return nil, false, e
	}
	present, e := d.object("", func(key, p string) *apierror.Error {
		var e *apierror.Error
		switch key {
		case "transfers":
			hasTransfers, e = d.array(p, func(i int, ip string) *apierror.Error {
				if i >= ledger.BatchMax {
					return apierror.Newf(apierror.BatchTooLarge, "transfers",
						"The batch holds more than %d transfers; split it.", ledger.BatchMax)
				}
				in, e := decodeTransferFields(d, ip, true)
				ins = append(ins, in)
				return e
			})
		case "atomic":
			hasAtomic, e = d.boolean(p, &atomic)
		default:
			return unknownField(p)
		}
		return e
	})
	e = d.finishObject(present, e)
	if e != nil {
		return nil, false, e
	}
	if !hasTransfers {
		return nil, false, required("transfers")
	}
	if len(ins) == 0 {
		return nil, false, invalid("transfers", "transfers must hold at least one transfer.")
	}
	if !hasAtomic {
		return nil, false, invalid("atomic", "atomic is required: true applies every transfer or none, false applies each on its own.")
	}
	return ins, atomic, nil
}

// finishObject completes the decoding of a top-level object: a null body is an error, and
// nothing may follow the object.
func (d *decoder) finishObject(present bool, e *apierror.Error) *apierror.Error {
	if e == nil && !present {
		e = invalid("", "The request body must be a JSON object, not null.")
	}
	if e == nil {
		e = d.end()
	}
	return e
}
