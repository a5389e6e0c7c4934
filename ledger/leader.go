package ledger

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fincore/fincore/apierror"
)

// Several processes may share one ledger store (PostgreSQL). Exactly one of them writes: the
// holder of the writer lease (Config.Lessor). The others are standbys: they serve reads and
// answer writes with not_leader, and each keeps trying to take the lease. A writer runs in
// terms. A term starts when the engine holds a lease and storage has accepted the lease's
// token (Store.AcquireWriter, which fences every earlier writer); it ends when the lease is
// lost, when storage fences the term's commits, or when the engine closes. Then the engine
// finishes the group in flight, fails what is queued with not_leader, releases the lease and
// campaigns again.

// WriterLease is a held lease on the ledger's writer role. A platform/lock Lease fits.
type WriterLease interface {
	// Token is the lease's fencing token.
	Token() uint64
	// Lost is closed when the lease could not be renewed in time.
	Lost() <-chan struct{}
	// Valid reports whether the lease is still held by the local clock.
	Valid() bool
	// Release gives the lease up.
	Release(ctx context.Context) error
}

// Lessor hands out the writer lease. cmd/fincore adapts a platform/lock Locker to it.
type Lessor interface {
	// TryAcquire returns the lease if it is free now, and (nil, nil) if another process
	// holds it.
	TryAcquire(ctx context.Context) (WriterLease, error)
	// Acquire waits until it holds the lease or ctx ends.
	Acquire(ctx context.Context) (WriterLease, error)
}

// errLeaseExpired stops a commit whose lease is no longer valid by the local clock.
var errLeaseExpired = errors.New("ledger: writer lease expired before the commit")

func errStandby() *apierror.Error {
	return apierror.Newf(apierror.NotLeader, "",
		"This instance is a standby: another instance holds the ledger writer lease. Send writes to the leader, or retry.")
}

func errFencedWriter() *apierror.Error {
	return apierror.Newf(apierror.NotLeader, "",
		"This instance's ledger writer was superseded by a newer one and is stepping down; nothing of this request was written. Retry.")
}

// term is one writer's tenure.
type term struct {
	token  int64       // the writer token storage checks on every commit
	lease  WriterLease // nil for a writer alone on its storage
	queue  chan *request
	stop   chan struct{} // closed to end the term
	exited chan struct{} // closed when the term's writer has stopped and drained its queue
	fenced chan struct{} // closed when a commit found the term superseded

	stopOnce, fenceOnce sync.Once
}

func (t *term) end()   { t.stopOnce.Do(func() { close(t.stop) }) }
func (t *term) fence() { t.fenceOnce.Do(func() { close(t.fenced) }) }

// startTerm makes the engine the writer under lease (nil: no lease) and starts its writer
// goroutine. No writer goroutine may be running.
func (e *Engine) startTerm(ctx context.Context, lease WriterLease) (*term, error) {
	var leaseToken uint64
	if lease != nil {
		leaseToken = lease.Token()
	}
	token, err := e.store.AcquireWriter(ctx, leaseToken)
	if err != nil {
		return nil, err
	}
	head, err := e.store.Head(ctx)
	if err != nil {
		return nil, err
	}
	t := &term{
		token: token, lease: lease,
		queue:  make(chan *request, e.cfg.QueueMax),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
		fenced: make(chan struct{}),
	}
	// The writer state may have been written by a previous term's goroutine, which has
	// exited (endTerm waited for it); another writer may have moved the journal on since.
	clear(e.cache)
	clear(e.recCache)
	e.lastTs, e.lastHash, e.needReload, e.prev = head.Timestamp, head.Hash, false, nil
	e.term.Store(t)
	e.failed.Store(nil)
	e.wg.Add(1)
	go e.run(t)
	e.cfg.Logger.Info("ledger writer started", "token", token, "lease_token", leaseToken, "head_timestamp", int64(head.Timestamp))
	return t, nil
}

// endTerm stops t's writer after the group in flight and fails what is queued with why (nil
// when the engine is closing).
func (e *Engine) endTerm(t *term, why *apierror.Error) {
	if why != nil {
		e.failed.Store(why)
	}
	t.end()
	<-t.exited
	e.term.CompareAndSwap(t, nil)
}

// lead is the campaign loop of an engine with a Lessor: hold the lease, write, step down when
// it is lost or storage fences the term, and try again.
func (e *Engine) lead(t *term) {
	defer e.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	const backoffMin, backoffMax = 100 * time.Millisecond, 5 * time.Second
	backoff := backoffMin
	for {
		if t == nil {
			lease, err := e.cfg.Lessor.Acquire(ctx)
			if err == nil {
				t, err = e.startTerm(ctx, lease)
				if err != nil {
					e.releaseLease(lease)
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				e.cfg.Logger.Warn("ledger writer: could not take over; retrying", "err", err, "retry_in", backoff)
				select {
				case <-e.stop:
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, backoffMax)
				continue
			}
			backoff = backoffMin
		}
		select {
		case <-e.stop:
			e.endTerm(t, nil)
			e.releaseLease(t.lease)
			return
		case <-t.lease.Lost():
			e.cfg.Logger.Error("ledger writer lease lost: stepping down", "token", t.token, "lease_token", t.lease.Token())
		case <-t.fenced:
			e.cfg.Logger.Error("ledger writer fenced by a newer writer: stepping down", "token", t.token, "lease_token", t.lease.Token())
		}
		e.endTerm(t, errStandby())
		e.releaseLease(t.lease)
		t = nil
	}
}

// releaseLease gives a lease up, bounded in time. A lease already lost or superseded has
// nothing to release; that is not worth a warning.
func (e *Engine) releaseLease(l WriterLease) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Release(ctx); err != nil {
		e.cfg.Logger.Debug("ledger writer lease release", "err", err)
	}
}
