package config

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Watch timings.
const (
	// watchStartTimeout bounds how long Watch waits for the current values.
	watchStartTimeout = 30 * time.Second
	// reopenMin and reopenMax bound the wait between attempts to reopen a watch whose
	// subscription ended (the server went away): it doubles from reopenMin up to reopenMax.
	reopenMin = 50 * time.Millisecond
	reopenMax = 2 * time.Second
)

// Func applies a change of one key. value is the key's new value (compact JSON, already
// validated when it was stored), or nil when the key was deleted; version is the revision,
// which increases with every change in the bucket. A Func runs on its watch's goroutine, one
// call at a time; a slow Func delays the changes after it (never drops them). A panic is
// recovered and logged, and the watch goes on.
type Func func(key string, value json.RawMessage, version uint64)

// Watch calls fn with the current value of every key that starts with prefix ("" for all),
// before it returns, then with every later change of those keys, in the order they were
// stored, exactly once per revision. It is how an instance applies configuration: the module
// reads nothing else.
//
// If the connection to an external NATS server breaks, the watch resumes after the last
// revision it delivered as soon as the connection is back, so no change is skipped (as long
// as the bucket still holds it: the last HistoryDefault revisions of each key) and none is
// delivered twice.
//
// stop ends the watch and waits for a call of fn in progress; cancelling ctx or closing the
// Center ends it too. ctx also bounds the wait for the current values.
func (c *Center) Watch(ctx context.Context, prefix string, fn Func) (stop func(), err error) {
	if fn == nil {
		return nil, fmt.Errorf("config: watch %q: nil func", prefix)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("config: watch %q: the center is closed", prefix)
	}
	filters, match := watchFilter(prefix)
	w := &watcher{
		c: c, prefix: prefix, filters: filters, match: match, fn: fn,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		log: c.log.With("watch", prefix),
	}
	// The subscription lives as long as ctx (the client unsubscribes when ctx is done), so
	// the wait for the current values is bounded separately.
	kw, err := c.kv.WatchFiltered(ctx, slices.Clone(filters))
	if err != nil {
		return nil, fmt.Errorf("config: watch %q: %w", prefix, err)
	}
	timeout := time.NewTimer(watchStartTimeout)
	defer timeout.Stop()
	for initial := true; initial; {
		select {
		case <-ctx.Done():
			_ = kw.Stop()
			return nil, fmt.Errorf("config: watch %q: waiting for the current values: %w", prefix, ctx.Err())
		case <-timeout.C:
			_ = kw.Stop()
			return nil, fmt.Errorf("config: watch %q: the current values did not arrive within %s", prefix, watchStartTimeout)
		case e, ok := <-kw.Updates():
			switch {
			case !ok:
				return nil, fmt.Errorf("config: watch %q: the subscription ended before the current values arrived", prefix)
			case e == nil:
				initial = false
			case e.Operation() == jetstream.KeyValuePut:
				// A key deleted before the watch started is simply absent.
				w.apply(e)
			default:
				w.last = max(w.last, e.Revision())
			}
		}
	}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = kw.Stop()
		return nil, fmt.Errorf("config: watch %q: the center is closed", prefix)
	}
	c.watchers[w] = struct{}{}
	c.mu.Unlock()
	go w.run(ctx, kw)
	return w.stop, nil
}

// watchFilter turns a key prefix into bucket subject filters and a function that keeps only
// the keys with the prefix. A prefix of whole tokens ("channel", "channel.icbc.") filters on
// the server; any other is filtered here.
func watchFilter(prefix string) ([]string, func(string) bool) {
	match := func(k string) bool { return strings.HasPrefix(k, prefix) }
	trimmed := strings.TrimSuffix(prefix, ".")
	if trimmed == "" {
		return []string{">"}, match
	}
	if _, err := splitKey(trimmed); err != nil {
		return []string{">"}, match
	}
	if strings.HasSuffix(prefix, ".") {
		return []string{trimmed + ".>"}, match
	}
	// "channel" is both a possible key and a prefix of "channel.x" and of "channels.y".
	return []string{">"}, match
}

// watcher is one running Watch.
type watcher struct {
	c       *Center
	prefix  string
	filters []string
	match   func(string) bool
	fn      Func
	log     *slog.Logger
	last    uint64 // the last revision handled; owned by the run goroutine after start

	kick chan struct{} // reopen after the last revision (the connection came back)
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

func (w *watcher) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}

func (w *watcher) run(ctx context.Context, kw jetstream.KeyWatcher) {
	defer close(w.done)
	defer func() {
		w.c.mu.Lock()
		delete(w.c.watchers, w)
		w.c.mu.Unlock()
		if kw != nil {
			_ = kw.Stop()
		}
	}()
	for {
		var updates <-chan jetstream.KeyValueEntry
		if kw != nil {
			updates = kw.Updates()
		}
		select {
		case <-w.quit:
			return
		case <-ctx.Done():
			return
		case <-w.kick:
			if kw != nil {
				_ = kw.Stop()
			}
			if kw = w.reopen(ctx); kw == nil {
				return
			}
		case e, ok := <-updates:
			switch {
			case !ok:
				// The subscription ended under us (the connection closed, or the server
				// dropped the consumer): resume after the last revision.
				if kw = w.reopen(ctx); kw == nil {
					return
				}
			case e != nil: // nil marks the end of a reopened watch's backlog
				w.apply(e)
			}
		}
	}
}

// reopen starts a new subscription that resumes after the last revision handled, retrying
// with backoff. It returns nil when the watch is stopped or the connection is closed for good.
func (w *watcher) reopen(ctx context.Context) jetstream.KeyWatcher {
	delay := reopenMin
	for {
		select {
		case <-w.quit:
			return nil
		case <-ctx.Done():
			return nil
		default:
		}
		if w.c.nc != nil && w.c.nc.IsClosed() {
			w.log.Info("connection closed; the watch ends")
			return nil
		}
		opts := []jetstream.WatchOpt{}
		if w.last > 0 {
			// Every revision after the last one delivered, not only the latest per key.
			opts = append(opts, jetstream.IncludeHistory(), jetstream.ResumeFromRevision(w.last+1))
		}
		// WatchFiltered rewrites the slice it is given.
		kw, err := w.c.kv.WatchFiltered(ctx, slices.Clone(w.filters), opts...)
		if err == nil {
			w.log.Info("watch resumed", "after_version", w.last)
			return kw
		}
		w.log.Warn("reopen watch", "after_version", w.last, "retry_in", delay, "err", err)
		select {
		case <-w.quit:
			return nil
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, reopenMax)
	}
}

// apply hands one revision to fn, once: revisions at or before the last one handled (a
// resumed subscription may overlap the old one) are skipped.
func (w *watcher) apply(e jetstream.KeyValueEntry) {
	if e.Revision() <= w.last {
		return
	}
	w.last = e.Revision()
	key := e.Key()
	if !w.match(key) {
		return
	}
	var value json.RawMessage
	var at time.Time
	if e.Operation() == jetstream.KeyValuePut {
		r, err := decodeRecord(e.Value())
		if err != nil {
			w.log.Error("skipping an unreadable stored value", "key", key, "version", e.Revision(), "err", err)
			return
		}
		value, at = r.Value, r.At
	}
	w.call(key, value, e.Revision())
	if o := w.c.observer; o != nil && !at.IsZero() {
		o.ConfigApplied(key, e.Revision(), w.c.now().Sub(at))
	}
}

func (w *watcher) call(key string, value json.RawMessage, version uint64) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("watch function panicked; the watch goes on", "key", key, "version", version,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	w.fn(key, value, version)
}

// followConnection reopens every watch when the connection to the server comes back, so that
// a watch resumes at once instead of when its subscription notices the missed heartbeats.
func (c *Center) followConnection() {
	if c.nc == nil {
		c.stopConn = func() {}
		return
	}
	ch := c.nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	done := make(chan struct{})
	c.stopConn = func() {
		c.nc.RemoveStatusListener(ch)
		<-done
	}
	go func() {
		defer close(done)
		for s := range ch {
			if s == nats.CLOSED {
				return
			}
			c.log.Info("connection back; resuming watches")
			c.mu.Lock()
			for w := range c.watchers {
				select {
				case w.kick <- struct{}{}:
				default: // a reopen is already pending
				}
			}
			c.mu.Unlock()
		}
	}()
}
