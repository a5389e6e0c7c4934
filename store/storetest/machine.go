package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
)

// Limits of the machine. Small universes make replays, conflicts and contention common.
const (
	machineAccounts          = 6  // accounts each run may create, over two currencies
	machineBatchMax          = 6  // inputs of one Batch action
	machineConcurrentMax     = 5  // requests sent at once by one Concurrent action
	machineRequestMax        = 3  // inputs of one concurrent request
	machineTimeoutSecondsMax = 30 // timeout_seconds of a pending transfer
	machineAdvanceSecondsMax = 40 // one clock move
	machineOverflowRecords   = 1030
	machineStartWait         = 10 * time.Second
)

// machineGhost is an account id that is never created.
const machineGhost = "acct-ghost"

// TestLedgerMachine is the randomised state-machine test of the ledger: rapid draws
// sequences of operations — account creation, posted and pending transfers, posts and
// voids, atomic and non-atomic batches, replays with the same and a different body, clock
// moves and expiry sweeps, restarts, and requests sent from several goroutines at once —
// and runs each on the engine over fresh storage from f and on model, a plain in-memory
// ledger. Every result must match the model, and after every operation so must the balances
// of every account and the status of every transfer the operation touched. Each run ends
// with a comparison of the whole journal, of each account's history and balances as of the
// latest timestamp, and ledger.Verify. The summary it logs says what the runs exercised.
func TestLedgerMachine(t *testing.T, f Factory) {
	var stats machineStats
	began := time.Now()
	base := t.TempDir()
	rapid.Check(t, func(rt *rapid.T) {
		mc := newMachine(rt, iterationTB{TB: t, rt: rt, base: base}, f, &stats)
		rt.Repeat(rapid.StateMachineActions(mc))
		mc.finish(rt)
	})
	t.Logf("ledger machine: %d runs, %d actions, %d inputs (+%d in overflow batches) in %v: "+
		"%d created, %d replays, %d rejected, %d rolled back; atomic batches %d applied, %d failed; "+
		"%d concurrent rounds; %d expiries; %d restarts; rejections: %s",
		stats.runs, stats.actions, stats.inputs, stats.bulk, time.Since(began).Round(time.Millisecond),
		stats.created, stats.replays, stats.rejected, stats.rolledBack, stats.atomicApplied, stats.atomicFailed,
		stats.concurrent, stats.expired, stats.restarts, stats.rejectionSummary())
}

// machineStats counts what the machine exercised, across runs (including rapid's reruns
// while it shrinks a failure).
type machineStats struct {
	runs, actions, inputs, bulk             int
	created, replays, rejected, rolledBack  int
	atomicApplied, atomicFailed, concurrent int
	expired, restarts                       int
	rejections                              map[apierror.Code]int
}

func (s *machineStats) reject(c apierror.Code, n int) {
	if s.rejections == nil {
		s.rejections = map[apierror.Code]int{}
	}
	s.rejections[c] += n
	s.rejected += n
}

func (s *machineStats) rejectionSummary() string {
	codes := slices.Sorted(maps.Keys(s.rejections))
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %d", c, s.rejections[c])
	}
	return strings.Join(parts, ", ")
}

// iterationTB is the testing.TB a Factory sees for one rapid run: its cleanups and
// temporary directories end with the run, not the test, so that storage (a directory, a
// PostgreSQL schema) does not pile up over hundreds of runs; and its failures fail the run,
// so that rapid reports and shrinks them. Everything else is the enclosing test's; in
// particular a skip (a factory whose database is not configured) skips the whole test.
type iterationTB struct {
	testing.TB
	rt   *rapid.T
	base string
}

func (tb iterationTB) Cleanup(f func())               { tb.rt.Cleanup(f) }
func (tb iterationTB) Context() context.Context       { return tb.rt.Context() }
func (tb iterationTB) Error(args ...any)              { tb.rt.Error(args...) }
func (tb iterationTB) Errorf(format string, a ...any) { tb.rt.Errorf(format, a...) }
func (tb iterationTB) Fatal(args ...any)              { tb.rt.Fatal(args...) }
func (tb iterationTB) Fatalf(format string, a ...any) { tb.rt.Fatalf(format, a...) }
func (tb iterationTB) Fail()                          { tb.rt.Fail() }
func (tb iterationTB) FailNow()                       { tb.rt.FailNow() }
func (tb iterationTB) Failed() bool                   { return tb.rt.Failed() }
func (tb iterationTB) Log(args ...any)                { tb.rt.Log(args...) }
func (tb iterationTB) Logf(format string, a ...any)   { tb.rt.Logf(format, a...) }

func (tb iterationTB) TempDir() string {
	dir, err := os.MkdirTemp(tb.base, "run-")
	if err != nil {
		tb.rt.Fatalf("create temporary directory: %v", err)
	}
	tb.rt.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// machine is one run: the engine over its storage, the model, and what the generators need
// to aim at interesting inputs. Its exported methods are the actions rapid draws from.
type machine struct {
	ctx        context.Context
	open       func() ledger.Store
	store      ledger.Store
	eng        *ledger.Engine
	clock      *Clock
	clockReads atomic.Int64 // reads of the clock by the engine
	model      *model
	lastTs     ledger.Timestamp // the latest timestamp the ledger has given out
	stats      *machineStats

	universe   []ledger.AccountInput // the body each account is meant to be created with
	accountIDs []string              // the universe's ids and machineGhost
	sent       []ledger.TransferInput
	used       []string // transfer ids sent so far, in order
	nextID     int
	touched    map[string]bool // transfer ids to compare after the current action
	overflow   bool            // whether this run may send the Overflow batch (it is costly)
	overflowed bool
}

func newMachine(rt *rapid.T, tb testing.TB, f Factory, stats *machineStats) *machine {
	mc := &machine{
		ctx: rt.Context(), open: f(tb), clock: NewClock(), model: newModel(),
		stats: stats, touched: map[string]bool{},
	}
	// Registered after the factory's cleanups, so it runs before them.
	rt.Cleanup(mc.stop)
	stats.runs++
	for i := range machineAccounts {
		in := ledger.AccountInput{
			ID:       "acct-" + strconv.Itoa(i),
			Currency: []string{"USD", "EUR"}[i%2],
			Code:     rapid.SampledFrom([]string{"", "cash", "revenue"}).Draw(rt, "code"),
		}
		switch choose(rt, 3, "rule") {
		case 1:
			in.Flags.DebitsMustNotExceedCredits = true
		case 2:
			in.Flags.CreditsMustNotExceedDebits = true
		}
		mc.universe = append(mc.universe, in)
		mc.accountIDs = append(mc.accountIDs, in.ID)
	}
	mc.accountIDs = append(mc.accountIDs, machineGhost)
	mc.overflow = chance(rt, 35, "overflow_run")
	mc.start(rt)
	var initial []ledger.AccountInput
	for _, in := range mc.universe {
		if chance(rt, 85, "create_at_start") {
			initial = append(initial, in)
		}
	}
	if len(initial) > 0 {
		mc.createAccounts(rt, initial)
	}
	return mc
}

// start opens the storage and the engine.
func (mc *machine) start(rt *rapid.T) {
	reads := mc.clockReads.Load()
	mc.store = mc.open()
	eng, err := ledger.Open(mc.ctx, mc.store, ledger.Config{
		Now:            func() time.Time { mc.clockReads.Add(1); return mc.clock.Now() },
		ExpiryInterval: time.Hour,
		Logger:         QuietLogger(),
	})
	if err != nil {
		rt.Fatalf("open engine: %v", err)
	}
	mc.eng = eng
	// The engine sweeps due pending transfers once as it starts, in the background. Wait
	// until that sweep has read the clock, then sweep here too: from then on the background
	// sweep can only find what this one expired, so it cannot race with later clock moves.
	deadline := time.Now().Add(machineStartWait)
	for mc.clockReads.Load() == reads {
		if time.Now().After(deadline) {
			rt.Fatalf("the engine did not sweep due pending transfers within %v of starting", machineStartWait)
		}
		time.Sleep(100 * time.Microsecond)
	}
	mc.sweep(rt, false)
}

// stop closes the engine and then the storage, as a process that stops would.
func (mc *machine) stop() {
	if mc.eng != nil {
		mc.eng.Close()
		mc.eng = nil
	}
	if mc.store != nil {
		mc.store.Close()
		mc.store = nil
	}
}

// finish ends a run: the whole ledger must equal the model and verify.
func (mc *machine) finish(rt *rapid.T) {
	mc.checkAll(rt)
	mc.checkHistory(rt)
	rep, err := ledger.Verify(mc.ctx, mc.store)
	if err != nil {
		rt.Fatalf("verify: %v", err)
	}
	if !rep.OK() {
		rt.Fatalf("verify found problems:\n%s", strings.Join(rep.Problems, "\n"))
	}
	if rep.Records != int64(len(mc.model.transfers)) || rep.Accounts != int64(len(mc.model.accounts)) {
		rt.Fatalf("verify read %d records and %d accounts; the model has %d and %d",
			rep.Records, rep.Accounts, len(mc.model.transfers), len(mc.model.accounts))
	}
}

func (mc *machine) now() ledger.Timestamp { return ledger.Timestamp(mc.clock.Now().UnixNano()) }

// Actions.

// CreateAccounts creates up to three accounts of the universe: mostly as meant (a replay
// once created), sometimes with a different body (a conflict once created) or an invalid one.
func (mc *machine) CreateAccounts(rt *rapid.T) {
	ins := make([]ledger.AccountInput, rapid.IntRange(1, 3).Draw(rt, "accounts"))
	for i := range ins {
		in := pick(rt, mc.universe, "account")
		switch choose(rt, 10, "account_variant") {
		case 1:
			in.Code = "other"
		case 2:
			in.Metadata = map[string]string{"owner": "someone"}
		case 3:
			in.Flags = ledger.Flags{DebitsMustNotExceedCredits: true, CreditsMustNotExceedDebits: true}
		case 4:
			in.Currency = "usd"
		}
		ins[i] = in
	}
	mc.createAccounts(rt, ins)
}

// Transfer sends one new posted or pending transfer.
func (mc *machine) Transfer(rt *rapid.T) {
	mc.submit(rt, []ledger.TransferInput{mc.drawCreate(rt, false)}, false)
}

// Close posts (in full, in part or beyond the amount) or voids a pending transfer, or
// something that is not one.
func (mc *machine) Close(rt *rapid.T) {
	mc.submit(rt, []ledger.TransferInput{mc.drawClose(rt, false, nil)}, false)
}

// Batch sends up to six inputs, atomically or not; later inputs may close pending transfers
// that earlier ones create. Half the batches are drawn carefully, so that atomic ones often
// apply (and still fail now and then on balance rules).
func (mc *machine) Batch(rt *rapid.T) {
	atomic := rapid.Bool().Draw(rt, "atomic")
	careful := chance(rt, 50, "careful")
	ins := make([]ledger.TransferInput, rapid.IntRange(1, machineBatchMax).Draw(rt, "inputs"))
	created := map[string]int64{} // pending transfers created earlier in the batch
	for i := range ins {
		if chance(rt, 35, "close") && (!careful || len(created) > 0 || len(mc.model.openPending()) > 0) {
			ins[i] = mc.drawClose(rt, careful, created)
		} else {
			ins[i] = mc.drawCreate(rt, careful)
			if ins[i].Pending {
				created[ins[i].ID] = ins[i].Amount
			}
		}
	}
	mc.submit(rt, ins, atomic)
}

// Replay sends an earlier input again, as it was or with a different body.
func (mc *machine) Replay(rt *rapid.T) {
	if len(mc.sent) == 0 {
		rt.Skip("nothing sent yet")
	}
	in := pick(rt, mc.sent, "earlier")
	if chance(rt, 30, "different_body") {
		switch choose(rt, 3, "difference") {
		case 0:
			in.Amount++
		case 1:
			in.Metadata = map[string]string{"ref": "different"}
		case 2:
			in.Code = "other"
		}
	}
	mc.submit(rt, []ledger.TransferInput{in}, false)
}

// Advance moves the clock: by whole seconds, by less than a second, or exactly to (or to
// just before) the expiry of an open pending transfer, so that the boundary is met; then it
// sometimes sweeps expired pending transfers. Until a sweep, a pending transfer past its
// timeout can no longer be posted but still holds its reservation.
func (mc *machine) Advance(rt *rapid.T) {
	now := mc.now()
	var due []ledger.Timestamp
	for _, id := range mc.model.openPending() {
		if at := mc.model.transfers[id].rec.ExpiresAt; at > now {
			due = append(due, at)
		}
	}
	switch kind := choose(rt, 4, "advance_kind"); {
	case kind >= 2 && len(due) > 0:
		at := pick(rt, due, "expiry")
		if kind == 3 {
			at-- // the last instant at which it can still be posted
		}
		mc.clock.Advance(time.Duration(at - now))
	case kind == 1:
		mc.clock.Advance(time.Duration(rapid.IntRange(1, 999_999).Draw(rt, "microseconds")) * time.Microsecond)
	default:
		mc.clock.Advance(time.Duration(1+choose(rt, machineAdvanceSecondsMax, "seconds")) * time.Second)
	}
	if chance(rt, 50, "sweep") {
		mc.sweep(rt, true)
	}
}

// Restart closes the engine and the storage and opens them again: nothing may change but
// the expiry of what came due.
func (mc *machine) Restart(rt *rapid.T) {
	mc.stop()
	mc.start(rt)
	mc.checkAll(rt)
	mc.stats.restarts++
}

// Concurrent sends up to five requests from as many goroutines at once, aimed at one
// pending transfer and at each other's ids. The engine serialises them; its timestamps
// give the order of those that created records, and each of the others (all failed or
// replayed, so changing nothing) must match the model at some point of that order.
func (mc *machine) Concurrent(rt *rapid.T) {
	target := ""
	if open := mc.model.openPending(); len(open) > 0 {
		target = pick(rt, open, "contended")
	}
	reqs := make([]machineRequest, rapid.IntRange(2, machineConcurrentMax).Draw(rt, "requests"))
	var all []ledger.TransferInput
	for r := range reqs {
		reqs[r].atomic = rapid.Bool().Draw(rt, "atomic")
		n := rapid.IntRange(1, machineRequestMax).Draw(rt, "inputs")
		for range n {
			var in ledger.TransferInput
			switch v := choose(rt, 10, "kind"); {
			case v < 4 && target != "":
				in = mc.drawCloseOf(rt, target, mc.model.transfers[target].rec.Amount, true)
			case v >= 8 && len(all) > 0:
				in = pick(rt, all, "same_id_as")
				if chance(rt, 50, "different_body") {
					in.Amount++
				}
			default:
				in = mc.drawCreate(rt, chance(rt, 50, "careful"))
			}
			reqs[r].ins = append(reqs[r].ins, in)
			all = append(all, in)
		}
	}
	now := mc.now()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range reqs {
		r := &reqs[i]
		wg.Go(func() {
			<-start
			r.res, r.err = mc.eng.CreateTransfers(mc.ctx, r.ins, r.atomic)
		})
	}
	close(start)
	wg.Wait()
	mc.linearize(rt, reqs, now)
	mc.stats.concurrent++
}

// Overflow sends, once in some runs, a non-atomic batch of maximal transfers between two
// accounts without balance rules: their totals reach 2^63-1 after 1024 of them and the rest
// must fail with balance_overflow, as must anything more on those sides later.
func (mc *machine) Overflow(rt *rapid.T) {
	// Skips come before any draw, so rapid draws another action instead.
	if !mc.overflow || mc.overflowed {
		rt.Skip("no overflow in this run, or done")
	}
	var pairs [][2]string
	for _, dr := range mc.accountIDs {
		for _, cr := range mc.accountIDs {
			d, c := mc.model.accounts[dr], mc.model.accounts[cr]
			if dr != cr && d != nil && c != nil && d.acc.Currency == c.acc.Currency &&
				!d.acc.Flags.DebitsMustNotExceedCredits && !c.acc.Flags.CreditsMustNotExceedDebits {
				pairs = append(pairs, [2]string{dr, cr})
			}
		}
	}
	if len(pairs) == 0 {
		rt.Skip("no two accounts without balance rules")
	}
	pair := pick(rt, pairs, "accounts")
	pending := chance(rt, 30, "pending")
	ins := make([]ledger.TransferInput, machineOverflowRecords)
	for i := range ins {
		ins[i] = ledger.TransferInput{
			ID: "overflow-" + strconv.Itoa(i), DebitAccountID: pair[0], CreditAccountID: pair[1],
			Amount: modelAmountMax, Currency: mc.model.accounts[pair[0]].acc.Currency, Pending: pending,
		}
	}
	mc.overflowed = true
	out := mc.apply(rt, ins, false)
	if c := out.items[len(ins)-1].code; c != apierror.BalanceOverflow {
		rt.Fatalf("the last of %d maximal transfers: want balance_overflow; got %q", len(ins), c)
	}
	mc.stats.bulk += len(ins)
	mc.stats.actions++
}

// Check runs after every action: every account's balances, and every transfer the action
// touched, read through the engine, must equal the model's.
func (mc *machine) Check(rt *rapid.T) {
	mc.checkAccounts(rt)
	ids := make([]string, 0, len(mc.touched))
	for id := range mc.touched {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	now := mc.now()
	for _, id := range ids {
		want, ok := mc.model.read(id, now)
		got, err := mc.eng.Transfer(mc.ctx, id)
		switch {
		case !ok:
			if c := errorCode(err); c != apierror.TransferNotFound {
				rt.Fatalf("read transfer %q: want transfer_not_found; got %v, %v", id, got, err)
			}
		case err != nil:
			rt.Fatalf("read transfer %q: want %+v; got error %v", id, transferViewOf(want, true), err)
		default:
			if d := diffTransfer(*got, want, true); d != "" {
				rt.Fatalf("read transfer %q: %s", id, d)
			}
		}
	}
	clear(mc.touched)
}

// Helpers of the actions.

func (mc *machine) createAccounts(rt *rapid.T, ins []ledger.AccountInput) {
	now := mc.now()
	res, err := mc.eng.CreateAccounts(mc.ctx, ins)
	if err != nil {
		rt.Fatalf("create accounts %+v: %v", ins, err)
	}
	if len(res) != len(ins) {
		rt.Fatalf("create accounts: %d results for %d inputs", len(res), len(ins))
	}
	for i, in := range ins {
		got := res[i]
		var stamp ledger.Timestamp
		if got.Err == nil && got.Created && got.Account != nil {
			stamp = got.Account.Timestamp
		}
		want := mc.model.createAccount(in, stamp)
		if d := diffAccountResult(got, want); d != "" {
			rt.Fatalf("create account %d of %d %+v: %s", i, len(ins), in, d)
		}
		if stamp != 0 {
			mc.checkStamps(rt, []ledger.Timestamp{stamp}, now)
		}
		mc.count(want.code, want.created)
	}
	mc.stats.actions++
}

// submit sends transfer inputs and remembers them for replays.
func (mc *machine) submit(rt *rapid.T, ins []ledger.TransferInput, atomic bool) {
	mc.countBatch(mc.apply(rt, ins, atomic), atomic, len(ins))
	mc.sent = append(mc.sent, ins...)
	for _, in := range ins {
		mc.touched[in.ID] = true
		if in.PendingID != "" {
			mc.touched[in.PendingID] = true
		}
	}
	mc.stats.actions++
}

// apply sends transfer inputs in one request and compares the outcome with the model's.
func (mc *machine) apply(rt *rapid.T, ins []ledger.TransferInput, atomic bool) batchOutcome {
	now := mc.now()
	res, err := mc.eng.CreateTransfers(mc.ctx, ins, atomic)
	want := mc.model.createTransfers(ins, atomic, now, stampsOf(res))
	if d := diffBatch(res, err, want); d != "" {
		rt.Fatalf("%s\n%s", d, describeRequest(ins, atomic))
	}
	mc.checkStamps(rt, createdStamps(res), now)
	return want
}

// machineRequest is one request of a Concurrent action.
type machineRequest struct {
	ins    []ledger.TransferInput
	atomic bool
	res    []ledger.TransferResult
	err    error
}

// linearize checks the outcome of concurrent requests against the model. Requests that
// created records are applied in the order of their timestamps; each other request changed
// nothing, so it is enough that it matches the model between some two of them.
func (mc *machine) linearize(rt *rapid.T, reqs []machineRequest, now ledger.Timestamp) {
	var ordered, unordered []*machineRequest
	for i := range reqs {
		r := &reqs[i]
		var be *ledger.BatchError
		if r.err != nil && !(r.atomic && errors.As(r.err, &be)) {
			rt.Fatalf("concurrent request failed as a whole: %v\n%s", r.err, describeRequest(r.ins, r.atomic))
		}
		if len(createdStamps(r.res)) > 0 {
			ordered = append(ordered, r)
		} else {
			unordered = append(unordered, r)
		}
	}
	sort.Slice(ordered, func(i, j int) bool { return createdStamps(ordered[i].res)[0] < createdStamps(ordered[j].res)[0] })
	states := []*model{mc.model.clone()}
	for k, r := range ordered {
		want := mc.model.createTransfers(r.ins, r.atomic, now, stampsOf(r.res))
		if d := diffBatch(r.res, r.err, want); d != "" {
			rt.Fatalf("concurrent request %d of %d in timestamp order: %s\n%s", k+1, len(ordered), d, describeRequest(r.ins, r.atomic))
		}
		mc.checkStamps(rt, createdStamps(r.res), now)
		mc.countBatch(want, r.atomic, len(r.ins))
		states = append(states, mc.model.clone())
	}
	for _, r := range unordered {
		var diffs []string
		for k, s := range states {
			want := s.clone().createTransfers(r.ins, r.atomic, now, stampsOf(nil))
			d := diffBatch(r.res, r.err, want)
			if d == "" {
				mc.countBatch(want, r.atomic, len(r.ins))
				diffs = nil
				break
			}
			diffs = append(diffs, fmt.Sprintf("after %d of the ordered requests: %s", k, d))
		}
		if diffs != nil {
			rt.Fatalf("concurrent request matches the model at no point of the order:\n%s\n%s",
				strings.Join(diffs, "\n"), describeRequest(r.ins, r.atomic))
		}
	}
	for _, r := range reqs {
		for _, in := range r.ins {
			mc.touched[in.ID] = true
			if in.PendingID != "" {
				mc.touched[in.PendingID] = true
			}
		}
		mc.sent = append(mc.sent, r.ins...)
		mc.stats.actions++
	}
}

// sweep runs the engine's expiry sweep and the model's. exact says whether the engine's
// count must match: not right after a start, when the background sweep may have done part.
func (mc *machine) sweep(rt *rapid.T, exact bool) {
	n, err := mc.eng.ExpireDue(mc.ctx)
	if err != nil {
		rt.Fatalf("expire due: %v", err)
	}
	now := mc.now()
	var stamps []ledger.Timestamp
	ids := mc.model.expireDue(now, func(id string) ledger.Timestamp {
		got, err := mc.eng.Transfer(mc.ctx, ledger.ExpiryID(id))
		if err != nil {
			rt.Fatalf("pending transfer %q is past its timeout, but after the sweep its expiry record reads: %v", id, err)
		}
		stamps = append(stamps, got.Timestamp)
		return got.Timestamp
	})
	if (exact && n != len(ids)) || n > len(ids) {
		rt.Fatalf("the sweep expired %d pending transfers; the model expired %d: %v", n, len(ids), ids)
	}
	slices.Sort(stamps)
	mc.checkStamps(rt, stamps, now)
	for _, id := range ids {
		mc.touched[id] = true
		mc.touched[ledger.ExpiryID(id)] = true
	}
	mc.stats.expired += len(ids)
	mc.stats.inputs++
}

// checkStamps checks timestamps in the order they were given: strictly increasing, after
// every earlier one and never before the clock.
func (mc *machine) checkStamps(rt *rapid.T, stamps []ledger.Timestamp, now ledger.Timestamp) {
	for _, ts := range stamps {
		if ts <= mc.lastTs || ts < now {
			rt.Fatalf("timestamp %d: want after %d (the previous one) and not before %d (the clock)", ts, mc.lastTs, now)
		}
		mc.lastTs = ts
	}
}

func (mc *machine) checkAccounts(rt *rapid.T) {
	for _, id := range mc.accountIDs {
		got, err := mc.eng.Account(mc.ctx, id)
		want := mc.model.accounts[id]
		switch {
		case want == nil:
			if c := errorCode(err); c != apierror.AccountNotFound {
				rt.Fatalf("read account %q: want account_not_found; got %+v, %v", id, got, err)
			}
		case err != nil:
			rt.Fatalf("read account %q: want %+v; got error %v", id, accountViewOf(want.acc), err)
		default:
			if g, w := accountViewOf(*got), accountViewOf(want.acc); g != w {
				rt.Fatalf("read account %q:\n got  %+v\n want %+v", id, g, w)
			}
		}
	}
}

// checkAll compares the whole journal, with stored statuses, and every account, as the
// storage holds them, with the model.
func (mc *machine) checkAll(rt *rapid.T) {
	const page = 1000
	seen := 0
	var after ledger.Timestamp
	for {
		recs, err := mc.store.ScanTransfers(mc.ctx, after, page)
		if err != nil {
			rt.Fatalf("scan journal: %v", err)
		}
		for _, got := range recs {
			want := mc.model.transfers[got.ID]
			if want == nil {
				rt.Fatalf("the journal holds %q, which the model does not: %+v", got.ID, transferViewOf(*got, true))
			}
			if d := diffTransfer(*got, want.rec, true); d != "" {
				rt.Fatalf("journal record %q: %s", got.ID, d)
			}
			after = got.Timestamp
			seen++
		}
		if len(recs) < page {
			break
		}
	}
	if seen != len(mc.model.transfers) {
		rt.Fatalf("the journal holds %d records; the model %d", seen, len(mc.model.transfers))
	}
	accts, err := mc.store.ScanAccounts(mc.ctx, "", page)
	if err != nil {
		rt.Fatalf("scan accounts: %v", err)
	}
	if len(accts) != len(mc.model.accounts) {
		rt.Fatalf("the storage holds %d accounts; the model %d", len(accts), len(mc.model.accounts))
	}
	for _, got := range accts {
		want := mc.model.accounts[got.ID]
		if want == nil {
			rt.Fatalf("the storage holds account %q, which the model does not", got.ID)
		}
		if g, w := accountViewOf(*got), accountViewOf(want.acc); g != w {
			rt.Fatalf("stored account %q:\n got  %+v\n want %+v", got.ID, g, w)
		}
	}
}

// checkHistory compares each account's list of records (paged, newest first) and its
// balances as of the latest timestamp with the model.
func (mc *machine) checkHistory(rt *rapid.T) {
	now := mc.now()
	for _, id := range mc.existingAccounts() {
		var want []ledger.Transfer
		for _, t := range mc.model.transfers {
			if t.rec.DebitAccountID == id || t.rec.CreditAccountID == id {
				rec, _ := mc.model.read(t.rec.ID, now)
				want = append(want, rec)
			}
		}
		slices.SortFunc(want, func(a, b ledger.Transfer) int { return -cmp.Compare(a.Timestamp, b.Timestamp) })
		var got []*ledger.Transfer
		after := ""
		for {
			page, more, err := mc.eng.AccountTransfers(mc.ctx, id, after, ledger.ListLimitMax)
			if err != nil {
				rt.Fatalf("list the records of %q after %q: %v", id, after, err)
			}
			got = append(got, page...)
			if !more || len(page) == 0 {
				break
			}
			after = page[len(page)-1].ID
		}
		if len(got) != len(want) {
			rt.Fatalf("account %q lists %d records; the model has %d", id, len(got), len(want))
		}
		for i := range got {
			if d := diffTransfer(*got[i], want[i], true); d != "" {
				rt.Fatalf("record %d of account %q, newest first: %s", i, id, d)
			}
		}
		bal, err := mc.eng.BalancesAt(mc.ctx, id, mc.lastTs)
		if err != nil {
			rt.Fatalf("balances of %q at %d: %v", id, mc.lastTs, err)
		}
		if w := mc.model.accounts[id].acc.Balances; bal != w {
			rt.Fatalf("balances of %q at the latest timestamp: got %+v, want %+v", id, bal, w)
		}
	}
}

func (mc *machine) count(c apierror.Code, created bool) {
	mc.stats.inputs++
	switch {
	case c != "":
		mc.stats.reject(c, 1)
	case created:
		mc.stats.created++
	default:
		mc.stats.replays++
	}
}

func (mc *machine) countBatch(o batchOutcome, atomic bool, n int) {
	if o.failIndex >= 0 {
		mc.stats.atomicFailed++
		mc.stats.inputs += n
		mc.stats.reject(o.failCode, 1)
		mc.stats.rolledBack += n - 1
		return
	}
	if atomic {
		mc.stats.atomicApplied++
	}
	for _, it := range o.items {
		mc.count(it.code, it.created)
	}
}

// Generators.

// fairBits draws n fair bits. rapid's integers lean hard towards small values (good for
// amounts, which should hit edges); choices between kinds of input should not.
func fairBits(n int) *rapid.Generator[int] {
	return rapid.Custom(func(t *rapid.T) int {
		v := 0
		for range n {
			v <<= 1
			if rapid.Bool().Draw(t, "bit") {
				v |= 1
			}
		}
		return v
	})
}

var (
	percentGen = rapid.Map(fairBits(7), func(v int) int { return v * 100 / 128 })
	indexGen   = fairBits(16)
)

// chance draws true with the given percentage; it shrinks to false.
func chance(rt *rapid.T, percent int, label string) bool {
	return percentGen.Draw(rt, label) >= 100-percent
}

// choose draws one of n kinds, each about equally likely.
func choose(rt *rapid.T, n int, label string) int { return indexGen.Draw(rt, label) % n }

// pick draws an element of xs, each about equally likely.
func pick[T any](rt *rapid.T, xs []T, label string) T {
	return xs[indexGen.Draw(rt, label)%len(xs)]
}

// drawID draws a fresh transfer id, or now and then one used before.
func (mc *machine) drawID(rt *rapid.T) string {
	if len(mc.used) > 0 && chance(rt, 12, "reused_id") {
		return pick(rt, mc.used, "id")
	}
	id := "tr-" + strconv.Itoa(mc.nextID)
	mc.nextID++
	mc.used = append(mc.used, id)
	return id
}

// drawAmount draws an amount: mostly small, unless careful sometimes near 2^53-1 (to meet
// balance rules and overflow) or invalid.
func drawAmount(rt *rapid.T, careful bool) int64 {
	v := choose(rt, 20, "amount_kind")
	if careful {
		v %= 13
	}
	switch {
	case v < 10:
		return rapid.Int64Range(1, 1000).Draw(rt, "amount")
	case v < 13:
		return rapid.Int64Range(1, 1_000_000_000).Draw(rt, "amount")
	case v < 16:
		return modelAmountMax - rapid.Int64Range(0, 1000).Draw(rt, "below_max")
	case v < 18:
		return rapid.Int64Range(modelAmountMax/2, modelAmountMax).Draw(rt, "amount")
	default:
		return rapid.SampledFrom([]int64{0, -7, modelAmountMax + 1}).Draw(rt, "invalid_amount")
	}
}

// currencyOf is the currency of an account, or of the one it is meant to be created with.
func (mc *machine) currencyOf(id string) string {
	if a := mc.model.accounts[id]; a != nil {
		return a.acc.Currency
	}
	for _, in := range mc.universe {
		if in.ID == id {
			return in.Currency
		}
	}
	return "USD"
}

// existingAccounts lists the accounts created so far, in id order.
func (mc *machine) existingAccounts() []string {
	var ids []string
	for _, id := range mc.accountIDs {
		if mc.model.accounts[id] != nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// drawCreate draws a new posted or pending transfer, mostly between two existing accounts
// in one currency. Unless careful, it may also name an account that does not exist, the
// same account twice, a currency that differs or does not exist, an amount near 2^53-1 or
// an invalid one, or a timeout on a transfer that is not pending.
func (mc *machine) drawCreate(rt *rapid.T, careful bool) ledger.TransferInput {
	in := ledger.TransferInput{ID: mc.drawID(rt)}
	existing := mc.existingAccounts()
	if len(existing) >= 2 && (careful || chance(rt, 80, "aimed")) {
		in.DebitAccountID = pick(rt, existing, "debit")
		in.Currency = mc.currencyOf(in.DebitAccountID)
		var peers, others []string
		for _, id := range existing {
			if id != in.DebitAccountID {
				others = append(others, id)
				if mc.currencyOf(id) == in.Currency {
					peers = append(peers, id)
				}
			}
		}
		if len(peers) == 0 {
			peers = others
		}
		in.CreditAccountID = pick(rt, peers, "credit")
	} else {
		in.DebitAccountID = pick(rt, mc.accountIDs, "debit")
		in.CreditAccountID = pick(rt, mc.accountIDs, "credit")
		in.Currency = mc.currencyOf(in.DebitAccountID)
		switch choose(rt, 10, "currency_kind") {
		case 0:
			in.Currency = mc.currencyOf(in.CreditAccountID)
		case 1:
			in.Currency = "JPY"
		case 2:
			in.Currency = "usd"
		}
	}
	in.Amount = drawAmount(rt, careful)
	if chance(rt, 40, "pending") {
		in.Pending = true
		if chance(rt, 70, "timeout") {
			in.TimeoutSeconds = int64(1 + choose(rt, machineTimeoutSecondsMax, "timeout_seconds"))
		}
	} else if !careful && chance(rt, 3, "timeout_without_pending") {
		in.TimeoutSeconds = 5
	}
	if chance(rt, 20, "code") {
		in.Code = "fee"
	}
	if chance(rt, 20, "metadata") {
		in.Metadata = map[string]string{"ref": strconv.Itoa(choose(rt, 3, "ref"))}
	}
	return in
}

// drawClose draws a post or void: mostly of an open pending transfer (of the model, or
// created earlier in the same batch); unless careful, also of any id sent, an unknown id
// or an invalid one.
func (mc *machine) drawClose(rt *rapid.T, careful bool, batchPending map[string]int64) ledger.TransferInput {
	open := mc.model.openPending()
	for id := range batchPending {
		open = append(open, id)
	}
	slices.Sort(open)
	var pid string
	switch {
	case len(open) > 0 && (careful || chance(rt, 75, "open_pending")):
		pid = pick(rt, open, "pending_id")
	case len(mc.used) > 0 && chance(rt, 80, "sent_id"):
		pid = pick(rt, mc.used, "pending_id")
	case chance(rt, 20, "expiry_id"):
		pid = ledger.ExpiryID("tr-0")
	default:
		pid = "tr-unknown"
	}
	amount, ok := batchPending[pid]
	if p := mc.model.transfers[pid]; p != nil {
		amount, ok = p.rec.Amount, true
	}
	if !ok {
		amount = 100
	}
	return mc.drawCloseOf(rt, pid, amount, careful)
}

// drawCloseOf draws a post (of all, part, or unless careful more than all of amount) or a
// void of pendingID.
func (mc *machine) drawCloseOf(rt *rapid.T, pendingID string, amount int64, careful bool) ledger.TransferInput {
	in := ledger.TransferInput{Action: ledger.ActionVoid, ID: mc.drawID(rt), PendingID: pendingID}
	if chance(rt, 60, "post") {
		in.Action = ledger.ActionPost
		v := choose(rt, 20, "post_kind")
		if careful {
			v %= 15
		}
		switch {
		case v < 5: // the full amount
		case v < 12:
			in.Amount = rapid.Int64Range(1, max(amount, 1)).Draw(rt, "partial")
		case v < 15:
			in.Amount = amount
		case v < 19:
			in.Amount = amount + rapid.Int64Range(1, 1000).Draw(rt, "beyond")
		default:
			in.Amount = -1
		}
	} else if !careful && chance(rt, 5, "void_with_amount") {
		in.Amount = 7
	}
	if chance(rt, 10, "metadata") {
		in.Metadata = map[string]string{"ref": "close"}
	}
	return in
}

// Comparison.

func stampsOf(res []ledger.TransferResult) func(int) ledger.Timestamp {
	return func(i int) ledger.Timestamp {
		if i < len(res) && res[i].Err == nil && res[i].Created && res[i].Transfer != nil {
			return res[i].Transfer.Timestamp
		}
		return 0
	}
}

func createdStamps(res []ledger.TransferResult) []ledger.Timestamp {
	var out []ledger.Timestamp
	for i := range res {
		if ts := stampsOf(res)(i); ts != 0 {
			out = append(out, ts)
		}
	}
	return out
}

func errorCode(err error) apierror.Code {
	if err == nil {
		return ""
	}
	if e := apierror.As(err); e != nil {
		return e.Code
	}
	return apierror.Code("(not an API error: " + err.Error() + ")")
}

func diffBatch(res []ledger.TransferResult, err error, want batchOutcome) string {
	if want.failIndex >= 0 {
		var be *ledger.BatchError
		switch {
		case !errors.As(err, &be):
			return fmt.Sprintf("want the atomic batch to fail at input %d with %s; got error %v and results %s",
				want.failIndex, want.failCode, err, describeResults(res))
		case be.Index != want.failIndex || be.Err == nil || be.Err.Code != want.failCode:
			return fmt.Sprintf("want the atomic batch to fail at input %d with %s; got %v", want.failIndex, want.failCode, be)
		}
		return ""
	}
	if err != nil {
		return fmt.Sprintf("want %s; got error %v", describeOutcomes(want.items), err)
	}
	if len(res) != len(want.items) {
		return fmt.Sprintf("want %d results; got %d", len(want.items), len(res))
	}
	for i := range res {
		if d := diffTransferResult(res[i], want.items[i]); d != "" {
			return fmt.Sprintf("input %d: %s (all: want %s; got %s)", i, d, describeOutcomes(want.items), describeResults(res))
		}
	}
	return ""
}

func diffTransferResult(got ledger.TransferResult, want transferOutcome) string {
	switch {
	case want.code != "":
		if c := errorCode(got.Err); c != want.code {
			return fmt.Sprintf("want %s; got %s", want.code, describeResult(got))
		}
		return ""
	case got.Err != nil:
		return fmt.Sprintf("want success; got %v", got.Err)
	case got.Created != want.created:
		return fmt.Sprintf("want created=%v; got created=%v", want.created, got.Created)
	case got.Transfer == nil:
		return "want a transfer; got none"
	}
	// A replay returns the original record, whose status may since have changed.
	return diffTransfer(*got.Transfer, want.transfer, want.created)
}

// transferView is what the machine compares of a record: the fields a client sees.
type transferView struct {
	ID, Debit, Credit string
	Amount            int64
	Currency, Code    string
	Pending           bool
	PendingID         string
	TimeoutSeconds    int64
	ExpiresAt         ledger.Timestamp
	Timestamp         ledger.Timestamp
	Status            ledger.Status
	Metadata          string
}

func transferViewOf(t ledger.Transfer, withStatus bool) transferView {
	v := transferView{
		ID: t.ID, Debit: t.DebitAccountID, Credit: t.CreditAccountID, Amount: t.Amount,
		Currency: t.Currency, Code: t.Code, Pending: t.Pending, PendingID: t.PendingID,
		TimeoutSeconds: t.TimeoutSeconds, ExpiresAt: t.ExpiresAt, Timestamp: t.Timestamp,
		Metadata: metadataString(t.Metadata),
	}
	if withStatus {
		v.Status = t.Status
	}
	return v
}

func diffTransfer(got, want ledger.Transfer, withStatus bool) string {
	g, w := transferViewOf(got, withStatus), transferViewOf(want, withStatus)
	if g == w {
		return ""
	}
	return fmt.Sprintf("\n got  %+v\n want %+v", g, w)
}

// accountView is what the machine compares of an account.
type accountView struct {
	ID, Currency, Code string
	Flags              ledger.Flags
	Metadata           string
	Timestamp          ledger.Timestamp
	Balances           ledger.Balances
}

func accountViewOf(a ledger.Account) accountView {
	return accountView{a.ID, a.Currency, a.Code, a.Flags, metadataString(a.Metadata), a.Timestamp, a.Balances}
}

func diffAccountResult(got ledger.AccountResult, want accountOutcome) string {
	switch {
	case want.code != "":
		if c := errorCode(got.Err); c != want.code {
			return fmt.Sprintf("want %s; got err=%v created=%v", want.code, got.Err, got.Created)
		}
		return ""
	case got.Err != nil:
		return fmt.Sprintf("want success; got %v", got.Err)
	case got.Created != want.created:
		return fmt.Sprintf("want created=%v; got created=%v", want.created, got.Created)
	case got.Account == nil:
		return "want an account; got none"
	}
	if g, w := accountViewOf(*got.Account), accountViewOf(want.account); g != w {
		return fmt.Sprintf("\n got  %+v\n want %+v", g, w)
	}
	return ""
}

func metadataString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%q=%q;", k, m[k])
	}
	return b.String()
}

func describeRequest(ins []ledger.TransferInput, atomic bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "request (atomic=%v):", atomic)
	for i, in := range ins {
		fmt.Fprintf(&b, "\n  %d: %+v", i, in)
	}
	return b.String()
}

func describeResult(r ledger.TransferResult) string {
	switch {
	case r.Err != nil:
		return string(errorCode(r.Err))
	case r.Transfer == nil:
		return "no transfer"
	case r.Created:
		return "created " + r.Transfer.ID
	default:
		return "replay of " + r.Transfer.ID
	}
}

func describeResults(res []ledger.TransferResult) string {
	parts := make([]string, len(res))
	for i, r := range res {
		parts[i] = describeResult(r)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func describeOutcomes(outs []transferOutcome) string {
	parts := make([]string, len(outs))
	for i, o := range outs {
		switch {
		case o.code != "":
			parts[i] = string(o.code)
		case o.created:
			parts[i] = "created " + o.transfer.ID
		default:
			parts[i] = "replay of " + o.transfer.ID
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
