package storetest

import (
	"maps"
	"math/big"
	"regexp"
	"slices"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
)

// model is the reference ledger of the machine test: the semantics of the ledger issue
// written as plainly as possible over maps. It shares nothing with the engine but the
// types, the error codes and the name of expiry records, so that a mistake in one is not
// repeated in the other. Clarity beats speed here: every atomic batch works on a copy.
type model struct {
	accounts  map[string]*modelAccount
	transfers map[string]*modelTransfer // every record: transfers, posts, voids, expiries
}

type modelAccount struct {
	in  ledger.AccountInput // the creating request; a replay must repeat it
	acc ledger.Account      // what a read must return
}

type modelTransfer struct {
	in  ledger.TransferInput // the creating request; zero for expiry records
	rec ledger.Transfer      // what a read must return, with the stored status
}

// modelAmountMax is the largest amount of one transfer: 2^53-1.
const modelAmountMax int64 = 1<<53 - 1

// modelTimeoutSecondsMax bounds timeout_seconds (ten years).
const modelTimeoutSecondsMax = 10 * 366 * 24 * 3600

var modelIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:\-]{1,128}$`)

// modelCurrencies are the currencies the machine uses that exist; it also sends ones that
// don't.
var modelCurrencies = map[string]bool{"USD": true, "EUR": true, "JPY": true}

func newModel() *model {
	return &model{accounts: map[string]*modelAccount{}, transfers: map[string]*modelTransfer{}}
}

func (m *model) clone() *model {
	c := newModel()
	for id, a := range m.accounts {
		cp := *a
		c.accounts[id] = &cp
	}
	for id, t := range m.transfers {
		cp := *t
		c.transfers[id] = &cp
	}
	return c
}

// accountOutcome is what the model expects of one account input.
type accountOutcome struct {
	code    apierror.Code // "" on success
	created bool          // false for a replay
	account ledger.Account
}

// transferOutcome is what the model expects of one transfer input.
type transferOutcome struct {
	code     apierror.Code // "" on success
	created  bool          // false for a replay
	transfer ledger.Transfer
}

// batchOutcome is what the model expects of one CreateTransfers call: for an atomic batch
// that fails, the index and code of its first failing input; otherwise one outcome per input.
type batchOutcome struct {
	failIndex int // -1 unless an atomic batch fails
	failCode  apierror.Code
	items     []transferOutcome
}

func modelFail(c apierror.Code) transferOutcome { return transferOutcome{code: c} }

// createAccount applies one account input. stamp is the timestamp the ledger gave the
// account if it created one: the model takes the ledger's timestamps (the machine checks
// that they increase) rather than predicting them.
func (m *model) createAccount(in ledger.AccountInput, stamp ledger.Timestamp) accountOutcome {
	if !modelIDPattern.MatchString(in.ID) || !modelCurrencies[in.Currency] ||
		(in.Flags.DebitsMustNotExceedCredits && in.Flags.CreditsMustNotExceedDebits) {
		return accountOutcome{code: apierror.InvalidRequest}
	}
	if old := m.accounts[in.ID]; old != nil {
		if old.in.Currency == in.Currency && old.in.Code == in.Code && old.in.Flags == in.Flags &&
			maps.Equal(old.in.Metadata, in.Metadata) {
			return accountOutcome{account: old.acc}
		}
		return accountOutcome{code: apierror.IDConflict}
	}
	a := &modelAccount{in: in, acc: ledger.Account{
		ID: in.ID, Currency: in.Currency, Code: in.Code, Flags: in.Flags,
		Metadata: modelNoEmpty(in.Metadata), Timestamp: stamp,
	}}
	m.accounts[in.ID] = a
	return accountOutcome{created: true, account: a.acc}
}

// createTransfers applies one CreateTransfers call at clock time now. stamp(i) is the
// timestamp the ledger gave input i if it created a record for it, else 0.
func (m *model) createTransfers(ins []ledger.TransferInput, atomic bool, now ledger.Timestamp, stamp func(int) ledger.Timestamp) batchOutcome {
	out := batchOutcome{failIndex: -1}
	target := m
	if atomic {
		target = m.clone()
	}
	for i := range ins {
		o := target.transfer(ins[i], now, stamp(i))
		if atomic && o.code != "" {
			return batchOutcome{failIndex: i, failCode: o.code}
		}
		out.items = append(out.items, o)
	}
	if atomic {
		*m = *target
	}
	return out
}

func (m *model) transfer(in ledger.TransferInput, now, ts ledger.Timestamp) transferOutcome {
	if c := modelCheckTransfer(in); c != "" {
		return modelFail(c)
	}
	if old := m.transfers[in.ID]; old != nil {
		if modelSameBody(old.in, in) {
			return transferOutcome{transfer: old.rec}
		}
		return modelFail(apierror.IDConflict)
	}
	if ts == 0 {
		// The ledger created nothing for this input, so the outcomes will differ anyway or
		// the batch is rolled back. A record is never younger than the clock.
		ts = now
	}
	if in.Action != ledger.ActionCreate {
		return m.close(in, now, ts)
	}
	dr, cr := m.accounts[in.DebitAccountID], m.accounts[in.CreditAccountID]
	if dr == nil || cr == nil {
		return modelFail(apierror.AccountNotFound)
	}
	if dr.acc.Currency != in.Currency || cr.acc.Currency != in.Currency {
		return modelFail(apierror.CurrencyMismatch)
	}
	db, cb := &dr.acc.Balances, &cr.acc.Balances
	drTotal := modelSum(db.DebitsPending, db.DebitsPosted, in.Amount)
	crTotal := modelSum(cb.CreditsPending, cb.CreditsPosted, in.Amount)
	if !drTotal.IsInt64() || !crTotal.IsInt64() {
		return modelFail(apierror.BalanceOverflow)
	}
	if dr.acc.Flags.DebitsMustNotExceedCredits && drTotal.Cmp(big.NewInt(db.CreditsPosted)) > 0 {
		return modelFail(apierror.ExceedsCredits)
	}
	if cr.acc.Flags.CreditsMustNotExceedDebits && crTotal.Cmp(big.NewInt(cb.DebitsPosted)) > 0 {
		return modelFail(apierror.ExceedsDebits)
	}
	rec := ledger.Transfer{
		ID: in.ID, DebitAccountID: in.DebitAccountID, CreditAccountID: in.CreditAccountID,
		Amount: in.Amount, Currency: in.Currency, Code: in.Code, Pending: in.Pending,
		TimeoutSeconds: in.TimeoutSeconds, Status: ledger.StatusPosted, Timestamp: ts,
		Metadata: modelNoEmpty(in.Metadata),
	}
	if in.Pending {
		rec.Status = ledger.StatusPending
		if in.TimeoutSeconds > 0 {
			rec.ExpiresAt = ts + ledger.Timestamp(in.TimeoutSeconds)*ledger.Timestamp(time.Second)
		}
		db.DebitsPending += in.Amount
		cb.CreditsPending += in.Amount
	} else {
		db.DebitsPosted += in.Amount
		cb.CreditsPosted += in.Amount
	}
	m.transfers[in.ID] = &modelTransfer{in: in, rec: rec}
	return transferOutcome{created: true, transfer: rec}
}

// close posts or voids a pending transfer.
func (m *model) close(in ledger.TransferInput, now, ts ledger.Timestamp) transferOutcome {
	p := m.transfers[in.PendingID]
	if p == nil || !p.rec.Pending {
		return modelFail(apierror.PendingNotFound)
	}
	if modelStatus(p.rec, now) != ledger.StatusPending {
		return modelFail(apierror.PendingAlreadyClosed)
	}
	posted, status, amount := int64(0), ledger.StatusVoided, p.rec.Amount
	if in.Action == ledger.ActionPost {
		posted, status = in.Amount, ledger.StatusPosted
		if posted == 0 {
			posted = p.rec.Amount
		}
		if posted > p.rec.Amount {
			return modelFail(apierror.AmountExceedsPending)
		}
		amount = posted
	}
	m.release(p, posted, status)
	rec := ledger.Transfer{
		ID: in.ID, DebitAccountID: p.rec.DebitAccountID, CreditAccountID: p.rec.CreditAccountID,
		Amount: amount, Currency: p.rec.Currency, Code: p.rec.Code, PendingID: p.rec.ID,
		Status: status, Timestamp: ts, Metadata: modelNoEmpty(in.Metadata),
	}
	m.transfers[in.ID] = &modelTransfer{in: in, rec: rec}
	return transferOutcome{created: true, transfer: rec}
}

// release ends pending transfer p: its whole reservation goes, posted of it is posted.
func (m *model) release(p *modelTransfer, posted int64, status ledger.Status) {
	db := &m.accounts[p.rec.DebitAccountID].acc.Balances
	cb := &m.accounts[p.rec.CreditAccountID].acc.Balances
	db.DebitsPending -= p.rec.Amount
	cb.CreditsPending -= p.rec.Amount
	db.DebitsPosted += posted
	cb.CreditsPosted += posted
	p.rec.Status = status
}

// expireDue expires every pending transfer whose timeout has passed at now and returns
// their ids in order. stamp(id) is the timestamp of the ledger's expiry record for id.
func (m *model) expireDue(now ledger.Timestamp, stamp func(pendingID string) ledger.Timestamp) []string {
	var ids []string
	for id, p := range m.transfers {
		if p.rec.Status == ledger.StatusPending && modelStatus(p.rec, now) == ledger.StatusExpired {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := m.transfers[id]
		m.release(p, 0, ledger.StatusExpired)
		rec := ledger.Transfer{
			ID: ledger.ExpiryID(id), DebitAccountID: p.rec.DebitAccountID, CreditAccountID: p.rec.CreditAccountID,
			Amount: p.rec.Amount, Currency: p.rec.Currency, Code: p.rec.Code, PendingID: id,
			Status: ledger.StatusExpired, Timestamp: stamp(id),
		}
		m.transfers[rec.ID] = &modelTransfer{rec: rec}
	}
	return ids
}

// read returns a record as a read at clock time now must show it.
func (m *model) read(id string, now ledger.Timestamp) (ledger.Transfer, bool) {
	t := m.transfers[id]
	if t == nil {
		return ledger.Transfer{}, false
	}
	rec := t.rec
	rec.Status = modelStatus(rec, now)
	return rec, true
}

// openPending lists the pending transfers that have not been posted, voided or swept by
// expiry, in id order (including those past their timeout: posting them must fail).
func (m *model) openPending() []string {
	var ids []string
	for id, t := range m.transfers {
		if t.rec.Status == ledger.StatusPending {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// modelStatus is a record's status at clock time now: a pending transfer whose timeout has
// passed is expired, whether or not its expiry has been recorded yet.
func modelStatus(rec ledger.Transfer, now ledger.Timestamp) ledger.Status {
	if rec.Status == ledger.StatusPending && rec.ExpiresAt != 0 && now >= rec.ExpiresAt {
		return ledger.StatusExpired
	}
	return rec.Status
}

// modelCheckTransfer checks a transfer input on its own, without state.
func modelCheckTransfer(in ledger.TransferInput) apierror.Code {
	validAmount := func(a int64) bool { return a >= 1 && a <= modelAmountMax }
	if !modelIDPattern.MatchString(in.ID) {
		return apierror.InvalidRequest
	}
	switch in.Action {
	case ledger.ActionPost, ledger.ActionVoid:
		switch {
		case !modelIDPattern.MatchString(in.PendingID),
			in.Action == ledger.ActionVoid && in.Amount != 0,
			in.Amount != 0 && !validAmount(in.Amount),
			in.DebitAccountID != "" || in.CreditAccountID != "" || in.Currency != "" || in.Pending || in.TimeoutSeconds != 0:
			return apierror.InvalidRequest
		}
		return ""
	case ledger.ActionCreate:
	default:
		return apierror.InvalidRequest
	}
	switch {
	case in.PendingID != "",
		!modelIDPattern.MatchString(in.DebitAccountID),
		!modelIDPattern.MatchString(in.CreditAccountID),
		!validAmount(in.Amount),
		!modelCurrencies[in.Currency],
		in.TimeoutSeconds < 0 || in.TimeoutSeconds > modelTimeoutSecondsMax,
		in.TimeoutSeconds != 0 && !in.Pending:
		return apierror.InvalidRequest
	case in.DebitAccountID == in.CreditAccountID:
		return apierror.SameAccount
	}
	return ""
}

func modelSameBody(a, b ledger.TransferInput) bool {
	return a.Action == b.Action && a.PendingID == b.PendingID && a.DebitAccountID == b.DebitAccountID &&
		a.CreditAccountID == b.CreditAccountID && a.Amount == b.Amount && a.Currency == b.Currency &&
		a.Code == b.Code && a.Pending == b.Pending && a.TimeoutSeconds == b.TimeoutSeconds &&
		maps.Equal(a.Metadata, b.Metadata)
}

func modelSum(xs ...int64) *big.Int {
	s := new(big.Int)
	for _, x := range xs {
		s.Add(s, big.NewInt(x))
	}
	return s
}

func modelNoEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
