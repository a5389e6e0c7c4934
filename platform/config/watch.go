package config

import (
	"cmp"
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

// Watch limits and timings.
const (
	// watchStartTimeout bounds how long Watch waits for the current values.
	watchStartTimeout = 30 * time.Second
	// reopenMin and reopenMax bound the wait between attempts to reopen the subscription
	// after it ended (the server went away): it doubles from reopenMin up to reopenMax.
	reopenMin = 50 * time.Millisecond
	reopenMax = 2 * time.Second
	// DefaultWatchQueueMax bounds the changes queued for one watch whose Func has not yet
	// taken them (Options.WatchQueueMax). When a watch's queue is full, the Center's other
	// watches wait for it (changes are never dropped), and a warning is logged.
	DefaultWatchQueueMax = 10_000
)

// Func applies a change of one key. value is the key's new value (compact JSON, already
// validated when it was stored), or nil when the key was deleted; version is the revision,
// which increases with every change in the bucket. A Func runs on its watch's goroutine, one
// call at a time; a slow Func delays the changes after it (never drops them), and one that
// falls Options.WatchQueueMax changes behind holds up the Center's other watches. A panic is
// recovered and logged, and the watch goes on.
type Func func(key string, value json.RawMessage, version uint64)

// Watch calls fn with the current value of every key that starts with prefix ("" for all),
// before it returns, then with every later change of those keys, in the order they were
// stored, at most once per revision. It is how an instance applies configuration: the module
// reads nothing else.
//
// Every change is delivered as long as the bucket still holds it when this instance reads
// it: the bucket keeps the last HistoryDefault revisions of each key, so an instance that
// falls more than that many changes of one key behind (disconnected, or flooded by a burst
// on one key) skips that key's oldest intermediate values, logs a warning, and goes on from
// the oldest one still held. Order holds, nothing is delivered twice, and every watch ends
// on the current value.
//
// The watches of a Center share one subscription to the bucket (and one copy of the current
// values), so a change reaches the server's consumers once per instance, not once per watch.
// If the connection to an external NATS server breaks, the subscription resumes after the
// last revision it delivered as soon as the connection is back.
//
// stop ends the watch and waits for a call of fn in progress; cancelling ctx or closing the
// Center ends it too. ctx also bounds the wait for the current values.
func (c *Center) Watch(ctx context.Context, prefix string, fn Func) (stop func(), err error) {
	if fn == nil {
		return nil, fmt.Errorf("config: watch %q: nil func", prefix)
	}
	h, err := c.startHub()
	if err != nil {
		return nil, fmt.Errorf("config: watch %q: %w", prefix, err)
	}
	timeout := time.NewTimer(watchStartTimeout)
	defer timeout.Stop()
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("config: watch %q: waiting for the current values: %w", prefix, ctx.Err())
	case <-timeout.C:
		return nil, fmt.Errorf("config: watch %q: the current values did not arrive within %s", prefix, watchStartTimeout)
	case <-h.done:
		return nil, fmt.Errorf("config: watch %q: the center is closed", prefix)
	}

	_, match := watchFilter(prefix)
	w := &watcher{
		c: c, hub: h, prefix: prefix, match: match, fn: fn,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		log: c.log.With("watch", prefix),
	}
	w.room = sync.NewCond(&w.mu)
	// Take the current values and join the fan-out in one step: every revision after the
	// snapshot is pushed to the queue.
	h.mu.Lock()
	snapshot := make([]update, 0, len(h.cache))
	for k, v := range h.cache {
		if match(k) {
			snapshot = append(snapshot, update{key: k, value: v.value, version: v.version})
		}
	}
	w.last = h.last
	h.subs[w] = struct{}{}
	h.mu.Unlock()

	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.watchers[w] = struct{}{}
	}
	c.mu.Unlock()
	if closed {
		h.leave(w)
		return nil, fmt.Errorf("config: watch %q: the center is closed", prefix)
	}
	slices.SortFunc(snapshot, func(a, b update) int { return cmp.Compare(a.version, b.version) })
	for _, u := range snapshot {
		w.call(u)
	}
	go w.run(ctx)
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

// update is one revision of one key, as watches receive it.
type update struct {
	key     string
	value   json.RawMessage // nil: deleted
	version uint64
	at      time.Time // when it was set (zero for a deletion)
}

// cached is a key's current value in the hub.
type cached struct {
	value   json.RawMessage
	version uint64
}

// hub is a Center's one subscription to the bucket: it keeps the current value of every key
// and pushes each new revision to the watches whose prefix matches.
type hub struct {
	c   *Center
	log *slog.Logger

	mu    sync.Mutex
	cache map[string]cached
	last  uint64 // the last revision applied
	subs  map[*watcher]struct{}

	ready  chan struct{} // closed once the cache holds the current values
	kick   chan struct{} // reopen after the last revision (the connection came back)
	cancel context.CancelFunc
	done   chan struct{}
}

// startHub starts the Center's subscription if it is not running yet.
func (c *Center) startHub() (*hub, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("the center is closed")
	}
	if c.hub != nil {
		return c.hub, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The subscription lives as long as ctx: the client unsubscribes when it is done.
	kw, err := c.kv.WatchFiltered(ctx, []string{">"})
	if err != nil {
		cancel()
		return nil, err
	}
	h := &hub{
		c: c, log: c.log, cache: map[string]cached{}, subs: map[*watcher]struct{}{},
		ready: make(chan struct{}), kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{}),
	}
	c.hub = h
	go h.run(ctx, kw)
	return h, nil
}

func (h *hub) run(ctx context.Context, kw jetstream.KeyWatcher) {
	defer close(h.done)
	defer func() {
		if kw != nil {
			_ = kw.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
			_ = kw.Stop()
			if kw = h.reopen(ctx); kw == nil {
				return
			}
		case e, ok := <-kw.Updates():
			switch {
			case !ok:
				// The subscription ended under us (the connection closed, or the server
				// dropped the consumer): resume after the last revision.
				if kw = h.reopen(ctx); kw == nil {
					return
				}
			case e == nil: // the current values are in; later nils end a reopened backlog
				select {
				case <-h.ready:
				default:
					close(h.ready)
				}
			default:
				h.apply(e)
			}
		}
	}
}

// reopen starts a new subscription that resumes after the last revision applied, retrying
// with backoff. It returns nil when the hub stops or the connection is closed for good.
func (h *hub) reopen(ctx context.Context) jetstream.KeyWatcher {
	delay := reopenMin
	for {
		if ctx.Err() != nil {
			return nil
		}
		if h.c.nc != nil && h.c.nc.IsClosed() {
			h.log.Info("connection closed; configuration watches end")
			return nil
		}
		h.mu.Lock()
		last := h.last
		h.mu.Unlock()
		var opts []jetstream.WatchOpt
		if last > 0 {
			// Every revision after the last one applied, not only the latest per key.
			opts = append(opts, jetstream.IncludeHistory(), jetstream.ResumeFromRevision(last+1))
		}
		kw, err := h.c.kv.WatchFiltered(ctx, []string{">"}, opts...)
		if err == nil {
			h.log.Info("configuration watch resumed", "after_version", last)
			return kw
		}
		h.log.Warn("reopen configuration watch", "after_version", last, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, reopenMax)
	}
}

// apply records one revision and pushes it to the matching watches, once: revisions at or
// before the last one applied (a resumed subscription may overlap the old one) are skipped.
func (h *hub) apply(e jetstream.KeyValueEntry) {
	u := update{key: e.Key(), version: e.Revision()}
	if e.Operation() == jetstream.KeyValuePut {
		r, err := decodeRecord(e.Value())
		if err != nil {
			h.log.Error("skipping an unreadable stored value", "key", u.key, "version", u.version, "err", err)
			u.version = 0 // still advances last below
		} else {
			u.value, u.at = r.Value, r.At
		}
	}
	h.mu.Lock()
	if e.Revision() <= h.last {
		h.mu.Unlock()
		return
	}
	if gap := e.Revision() - h.last - 1; gap > 0 && h.last > 0 {
		// The subscription watches every key, so revisions arrive without gaps unless the
		// bucket dropped some before they were delivered: a key changed more than
		// HistoryDefault times while this instance was behind.
		h.log.Warn("configuration revisions skipped: the bucket no longer holds them", "after_version", h.last, "skipped", gap)
	}
	h.last = e.Revision()
	if u.version == 0 {
		h.mu.Unlock()
		return
	}
	if u.value == nil {
		delete(h.cache, u.key)
	} else {
		h.cache[u.key] = cached{value: u.value, version: u.version}
	}
	var to []*watcher
	for w := range h.subs {
		if w.match(u.key) {
			to = append(to, w)
		}
	}
	h.mu.Unlock()
	for _, w := range to {
		w.push(u)
	}
}

func (h *hub) leave(w *watcher) {
	h.mu.Lock()
	delete(h.subs, w)
	h.mu.Unlock()
}

// stop ends the subscription and waits for it.
func (h *hub) stop() {
	h.cancel()
	<-h.done
}

// watcher is one running Watch: a queue of the revisions pushed to it and the goroutine that
// hands them to its Func.
type watcher struct {
	c      *Center
	hub    *hub
	prefix string
	match  func(string) bool
	fn     Func
	log    *slog.Logger
	last   uint64 // the last revision handed to fn; owned by the caller, then by run

	mu       sync.Mutex
	room     *sync.Cond // signalled when the queue shrinks or the watch ends
	queue    []update
	stopped  bool
	lagged   bool          // a warning about a full queue was logged
	wake     chan struct{} // a push happened
	quit     chan struct{}
	done     chan struct{}
	quitOnce sync.Once
}

// push queues u for the watch, waiting while the queue is full.
func (w *watcher) push(u update) {
	w.mu.Lock()
	for len(w.queue) >= w.c.queueMax && !w.stopped {
		if !w.lagged {
			w.lagged = true
			w.log.Warn("watch is too slow: its queue is full and the other configuration watches wait for it", "queued", len(w.queue))
		}
		w.room.Wait()
	}
	if !w.stopped {
		w.queue = append(w.queue, u)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *watcher) stop() {
	w.quitOnce.Do(func() { close(w.quit) })
	<-w.done
}

func (w *watcher) run(ctx context.Context) {
	defer close(w.done)
	defer func() {
		w.mu.Lock()
		w.stopped = true
		w.queue = nil
		w.room.Broadcast()
		w.mu.Unlock()
		w.hub.leave(w)
		w.c.mu.Lock()
		delete(w.c.watchers, w)
		w.c.mu.Unlock()
	}()
	for {
		select {
		case <-w.quit:
			return
		case <-ctx.Done():
			return
		case <-w.wake:
		}
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.lagged = false
		w.room.Broadcast()
		w.mu.Unlock()
		for _, u := range batch {
			select {
			case <-w.quit:
				return
			default:
			}
			if u.version <= w.last {
				continue
			}
			w.last = u.version
			w.call(u)
			if o := w.c.observer; o != nil && !u.at.IsZero() {
				o.ConfigApplied(u.key, u.version, w.c.now().Sub(u.at))
			}
		}
	}
}

func (w *watcher) call(u update) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("watch function panicked; the watch goes on", "key", u.key, "version", u.version,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	w.fn(u.key, u.value, u.version)
}

// followConnection reopens the subscription when the connection to the server comes back, so
// that watches resume at once instead of when the subscription notices the missed heartbeats.
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
			c.mu.Lock()
			h := c.hub
			c.mu.Unlock()
			if h == nil {
				continue
			}
			c.log.Info("connection back; resuming configuration watches")
			select {
			case h.kick <- struct{}{}:
			default: // a reopen is already pending
			}
		}
	}()
}
