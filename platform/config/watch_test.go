package config

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/fincore/fincore/platform/bus"
)

// seen is one call of a watch function.
type seen struct {
	key     string
	value   string // "" for a deletion
	version uint64
}

func (u seen) String() string { return fmt.Sprintf("%s=%s@%d", u.key, u.value, u.version) }

// recorder is a watch function that keeps every call, and lets a test wait for a version.
type recorder struct {
	mu   sync.Mutex
	got  []seen
	cond chan struct{} // closed and replaced on every call
}

func newRecorder() *recorder { return &recorder{cond: make(chan struct{})} }

func (r *recorder) fn(key string, value json.RawMessage, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, seen{key, string(value), version})
	close(r.cond)
	r.cond = make(chan struct{})
}

func (r *recorder) updates() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.got...)
}

// waitVersion waits until the recorder has seen version v or a later one.
func (r *recorder) waitVersion(t testing.TB, v uint64, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		done := len(r.got) > 0 && r.got[len(r.got)-1].version >= v
		cond := r.cond
		r.mu.Unlock()
		if done {
			return
		}
		select {
		case <-cond:
		case <-deadline:
			t.Fatalf("version %d not delivered within %s; got %v", v, within, r.updates())
		}
	}
}

func mustWatch(t testing.TB, c *Center, prefix string, fn Func) func() {
	t.Helper()
	stop, err := c.Watch(t.Context(), prefix, fn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return stop
}

func TestWatch(t *testing.T) {
	forEachMode(t, Options{}, func(t *testing.T, b *bus.Bus, c *Center) {
		mustSet(t, c, "channel.a.weight", "1", Meta{})
		a2 := mustSet(t, c, "channel.a.weight", "2", Meta{})
		b1 := mustSet(t, c, "channel.b.enabled", "false", Meta{})
		mustSet(t, c, "switch.pay", `"on"`, Meta{})

		channels, all, partial := newRecorder(), newRecorder(), newRecorder()
		mustWatch(t, c, "channel.", channels.fn)
		mustWatch(t, c, "", all.fn)
		stopPartial := mustWatch(t, c, "channel.a", partial.fn)
		// The current values arrive before Watch returns: the latest of each key, in version
		// order.
		if got, want := fmt.Sprint(channels.updates()), fmt.Sprint([]seen{
			{"channel.a.weight", "2", a2.Version}, {"channel.b.enabled", "false", b1.Version},
		}); got != want {
			t.Fatalf("initial values: %s, want %s", got, want)
		}
		if n := len(all.updates()); n != 3 {
			t.Fatalf("watch of everything started with %d values, want 3", n)
		}

		var want []seen
		for i := range 20 {
			ch := mustSet(t, c, "channel.b.weight", strconv.Itoa(i), Meta{})
			want = append(want, seen{"channel.b.weight", strconv.Itoa(i), ch.Version})
			mustSet(t, c, "switch.pay", `"off"`, Meta{})
		}
		last := mustSet(t, c, "channel.a.weight", "3", Meta{})
		want = append(want, seen{"channel.a.weight", "3", last.Version})
		channels.waitVersion(t, last.Version, 10*time.Second)
		if got := channels.updates()[2:]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("changes: %v\nwant %v", got, want)
		}
		all.waitVersion(t, last.Version, 10*time.Second)
		if n := len(all.updates()); n != 3+41 {
			t.Fatalf("watch of everything saw %d updates, want 44", n)
		}
		partial.waitVersion(t, last.Version, 10*time.Second)
		if got := fmt.Sprint(partial.updates()); got != fmt.Sprint([]seen{
			{"channel.a.weight", "2", a2.Version}, {"channel.a.weight", "3", last.Version},
		}) {
			t.Fatalf("watch of channel.a: %s", got)
		}

		// After stop, nothing more is delivered.
		stopPartial()
		after := mustSet(t, c, "channel.a.weight", "4", Meta{})
		channels.waitVersion(t, after.Version, 10*time.Second)
		if n := len(partial.updates()); n != 2 {
			t.Fatalf("a stopped watch got %d updates", n)
		}

		// A deletion made outside the Center arrives as a nil value.
		kv, err := b.JetStream().KeyValue(t.Context(), c.kv.Bucket())
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(t.Context(), "channel.a.weight"); err != nil {
			t.Fatal(err)
		}
		channels.waitVersion(t, after.Version+1, 10*time.Second)
		if u := channels.updates(); u[len(u)-1] != (seen{"channel.a.weight", "", after.Version + 1}) {
			t.Fatalf("deletion delivered as %v", u[len(u)-1])
		}
	})
}

// TestWatchEveryChangeInOrder: concurrent writers on several keys; every watcher sees every
// version exactly once, in increasing order.
func TestWatchEveryChangeInOrder(t *testing.T) {
	forEachMode(t, Options{}, func(t *testing.T, b *bus.Bus, c *Center) {
		// A second Center on its own connection, as another instance would have.
		b2 := b
		if !b.Embedded() {
			b2 = mustBus(t, bus.Options{URL: b.Conn().ConnectedUrl()})
		}
		c2 := mustOpen(t, b2, c.kv.Bucket(), Options{})
		watchers := []*recorder{newRecorder(), newRecorder(), newRecorder()}
		mustWatch(t, c, "channel.", watchers[0].fn)
		mustWatch(t, c2, "channel.", watchers[1].fn)
		mustWatch(t, c2, "", watchers[2].fn)

		const writers, each = 4, 25
		var wg sync.WaitGroup
		var mu sync.Mutex
		var versions []uint64
		for w := range writers {
			center := []*Center{c, c2}[w%2]
			wg.Go(func() {
				for i := range each {
					ch, err := center.Set(t.Context(), fmt.Sprintf("channel.k%d.weight", i%3), []byte(strconv.Itoa(w*100+i%100)), Meta{})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					versions = append(versions, ch.Version)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		var top uint64
		for _, v := range versions {
			top = max(top, v)
		}
		for i, r := range watchers {
			r.waitVersion(t, top, 10*time.Second)
			got := r.updates()
			if len(got) != writers*each {
				t.Fatalf("watcher %d saw %d updates, want %d", i, len(got), writers*each)
			}
			for j := 1; j < len(got); j++ {
				if got[j].version <= got[j-1].version {
					t.Fatalf("watcher %d: version %d after %d", i, got[j].version, got[j-1].version)
				}
			}
		}
	})
}

func TestWatchSurvivesPanicsAndEnds(t *testing.T) {
	b := mustBus(t, bus.Options{DataDir: t.TempDir()})
	c := mustOpen(t, b, testBucket(t), Options{})
	r := newRecorder()
	mustWatch(t, c, "", func(key string, value json.RawMessage, version uint64) {
		r.fn(key, value, version)
		if string(value) == `"off"` {
			panic("bad value")
		}
	})
	mustSet(t, c, "switch.a", `"off"`, Meta{})
	ch := mustSet(t, c, "switch.a", `"on"`, Meta{})
	r.waitVersion(t, ch.Version, 10*time.Second)

	// Cancelling the context ends a watch; so does closing the Center.
	ctx, cancel := context.WithCancel(t.Context())
	byCtx, byClose := newRecorder(), newRecorder()
	if _, err := c.Watch(ctx, "", byCtx.fn); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Watch(t.Context(), "", byClose.fn); err != nil {
		t.Fatal(err)
	}
	cancel()
	waitGone := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c.mu.Lock()
			left := len(c.watchers)
			c.mu.Unlock()
			if left == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d watches running, want %d", left, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitGone(2)
	c.Close()
	waitGone(0)
	if _, err := c.Watch(t.Context(), "", byClose.fn); err == nil {
		t.Fatal("Watch on a closed Center succeeded")
	}
	// The Center still writes; the ended watches see nothing.
	mustSet(t, c, "switch.a", `"degraded"`, Meta{})
	if len(byCtx.updates()) != 1 || len(byClose.updates()) != 1 {
		t.Fatalf("ended watches saw %v and %v", byCtx.updates(), byClose.updates())
	}
}

// natsServer runs a NATS server with JetStream on a loopback port, as an external cluster
// would, so that a test can stop and restart it. The test stops it after closing its clients
// (whose close would otherwise wait for a server that is gone).
type natsServer struct {
	t    testing.TB
	dir  string
	port int
	srv  *server.Server
}

func startNATS(t testing.TB, dir string, port int) *natsServer {
	t.Helper()
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return &natsServer{t: t, dir: dir, port: port, srv: srv}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsServer) stop() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// TestWatchResumesAfterReconnect stops the NATS server under two watching instances, starts
// it again, and changes keys before the watchers' connections are back: each watcher still
// sees every change exactly once, in order, soon after its connection returns.
func TestWatchResumesAfterReconnect(t *testing.T) {
	dir := t.TempDir()
	ns := startNATS(t, dir, 0)
	t.Cleanup(func() { ns.stop() }) // the server running at the end
	bucket := testBucket(t)
	b1 := mustBus(t, bus.Options{URL: ns.url()})
	c1 := mustOpen(t, b1, bucket, Options{})
	b2 := mustBus(t, bus.Options{URL: ns.url()})
	c2 := mustOpen(t, b2, bucket, Options{})
	r1, r2 := newRecorder(), newRecorder()
	mustWatch(t, c1, "channel.", r1.fn)
	mustWatch(t, c2, "", r2.fn)

	var want []seen
	set := func(c *Center, key, value string) uint64 {
		t.Helper()
		ch := mustSet(t, c, key, value, Meta{})
		want = append(want, seen{key, value, ch.Version})
		return ch.Version
	}
	for i := range 5 {
		set(c1, "channel.a.weight", strconv.Itoa(i))
	}
	r1.waitVersion(t, want[len(want)-1].version, 10*time.Second)

	ns.stop()
	ns = startNATS(t, dir, ns.port)
	// A writer that connects at once changes keys while the watchers' connections are
	// still waiting to reconnect (they retry every second).
	b3 := mustBus(t, bus.Options{URL: ns.url()})
	c3 := mustOpen(t, b3, bucket, Options{})
	for i := range 10 {
		set(c3, "channel.a.weight", strconv.Itoa(100+i))
		set(c3, "channel.b.enabled", strconv.FormatBool(i%2 == 0))
	}
	top := want[len(want)-1].version
	start := time.Now()
	r1.waitVersion(t, top, 10*time.Second)
	r2.waitVersion(t, top, 10*time.Second)
	t.Logf("watchers caught up %s after the writes", time.Since(start).Round(time.Millisecond))
	if got := fmt.Sprint(r1.updates()); got != fmt.Sprint(want) {
		t.Fatalf("watcher 1 saw\n%s\nwant\n%s", got, fmt.Sprint(want))
	}
	if got := fmt.Sprint(r2.updates()); got != fmt.Sprint(want) {
		t.Fatalf("watcher 2 saw\n%s\nwant\n%s", got, fmt.Sprint(want))
	}

	// And they keep following after the reconnection.
	v := set(c1, "channel.a.weight", "999")
	r1.waitVersion(t, v, 10*time.Second)
	r2.waitVersion(t, v, 10*time.Second)
	if got := fmt.Sprint(r2.updates()); got != fmt.Sprint(want) {
		t.Fatalf("after the reconnection watcher 2 saw\n%s\nwant\n%s", got, fmt.Sprint(want))
	}
}

// TestWatchesShareOneSubscription: however many watches a Center runs, the server has one
// consumer for them.
func TestWatchesShareOneSubscription(t *testing.T) {
	forEachMode(t, Options{}, func(t *testing.T, b *bus.Bus, c *Center) {
		var rs []*recorder
		for i := range 10 {
			r := newRecorder()
			rs = append(rs, r)
			mustWatch(t, c, []string{"", "channel.", "switch."}[i%3], r.fn)
		}
		st, err := b.JetStream().Stream(t.Context(), "KV_"+c.kv.Bucket())
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Consumers != 1 {
			t.Fatalf("%d consumers for 10 watches, want 1", info.State.Consumers)
		}
		ch := mustSet(t, c, "channel.a.weight", "1", Meta{})
		for i, r := range rs {
			if i%3 != 2 {
				r.waitVersion(t, ch.Version, 10*time.Second)
			}
		}
	})
}

// TestWatchJoinsDuringWrites: a watch started while keys keep changing gets their current
// values and then every later version: for each key, every version from the first it saw on,
// in increasing order overall, none twice. (Eight keys, 25 changes each: fewer than the
// bucket keeps per key, so nothing may be skipped.)
func TestWatchJoinsDuringWrites(t *testing.T) {
	b := mustBus(t, bus.Options{DataDir: t.TempDir()})
	c := mustOpen(t, b, testBucket(t), Options{})
	mustWatch(t, c, "", func(string, json.RawMessage, uint64) {}) // the subscription runs already
	const n, keys = 200, 8
	type write struct {
		key     string
		version uint64
	}
	writes := make(chan write, n)
	go func() {
		defer close(writes)
		for i := range n {
			key := fmt.Sprintf("channel.k%d.weight", i%keys)
			ch, err := c.Set(context.Background(), key, []byte(strconv.Itoa(i%1000)), Meta{})
			if err != nil {
				t.Error(err)
				return
			}
			writes <- write{key, ch.Version}
		}
	}()
	var rs []*recorder
	byKey := map[string][]uint64{}
	var top uint64
	for i := 0; ; i++ {
		w, ok := <-writes
		if !ok {
			break
		}
		byKey[w.key] = append(byKey[w.key], w.version)
		top = max(top, w.version)
		if i%40 == 0 {
			r := newRecorder()
			mustWatch(t, c, "channel.", r.fn)
			rs = append(rs, r)
		}
	}
	for i, r := range rs {
		r.waitVersion(t, top, 10*time.Second)
		got := r.updates()
		seen := map[string][]uint64{}
		for j, u := range got {
			if j > 0 && u.version <= got[j-1].version {
				t.Fatalf("watch %d: version %d after %d", i, u.version, got[j-1].version)
			}
			seen[u.key] = append(seen[u.key], u.version)
		}
		for key, vs := range byKey {
			var want []uint64
			for _, v := range vs {
				if len(seen[key]) > 0 && v >= seen[key][0] {
					want = append(want, v)
				}
			}
			if len(want) == 0 || fmt.Sprint(seen[key]) != fmt.Sprint(want) {
				t.Fatalf("watch %d saw %s at versions %v; it was written at %v", i, key, seen[key], vs)
			}
		}
	}
}

// TestWatchFarBehind: an instance that falls further behind on one key than the bucket keeps
// skips that key's oldest intermediate values but stays in order, repeats nothing and ends on
// the current value.
func TestWatchFarBehind(t *testing.T) {
	// The blocked watch's full queue holds up the Center's subscription, which stops reading
	// while the key changes far more often than the bucket keeps. (Whether the server then
	// drops revisions before this instance reads them depends on its buffers; the log says how
	// many were seen.)
	_, release, slow, fast, last := slowAndFast(t, Options{WatchQueueMax: 1}, 16*HistoryDefault)
	release()
	for _, r := range []*recorder{slow, fast} {
		r.waitVersion(t, last, 10*time.Second)
		got := r.updates()
		for j := 1; j < len(got); j++ {
			if got[j].version <= got[j-1].version {
				t.Fatalf("version %d after %d", got[j].version, got[j-1].version)
			}
		}
		if got[len(got)-1].value != `"off"` && got[len(got)-1].value != `"on"` {
			t.Fatalf("last value %v", got[len(got)-1])
		}
	}
	t.Logf("of %d changes the slow watch saw %d, the fast one %d", 16*HistoryDefault, len(slow.updates()), len(fast.updates()))
}

// slowAndFast starts two watches of everything on a new Center, one blocked until release is
// called (at the latest when the test ends), and makes n changes; last is the version of the
// last one.
func slowAndFast(t *testing.T, opts Options, n int) (c *Center, release func(), slow, fast *recorder, last uint64) {
	t.Helper()
	b := mustBus(t, bus.Options{DataDir: t.TempDir()})
	c = mustOpen(t, b, testBucket(t), opts)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	slow, fast = newRecorder(), newRecorder()
	mustWatch(t, c, "", func(k string, v json.RawMessage, ver uint64) {
		<-gate
		slow.fn(k, v, ver)
	})
	mustWatch(t, c, "", fast.fn)
	t.Cleanup(release) // runs before the watches' and the Center's cleanups, which wait for them
	for i := range n {
		last = mustSet(t, c, "switch.x", []string{`"on"`, `"off"`}[i%2], Meta{}).Version
	}
	return c, release, slow, fast, last
}

// TestSlowWatchLosesNothing: a watch whose function blocks gets every change once it resumes,
// in order, and does not hold up the others while its queue has room.
func TestSlowWatchLosesNothing(t *testing.T) {
	_, release, slow, fast, last := slowAndFast(t, Options{}, 50)
	fast.waitVersion(t, last, 10*time.Second)
	if n := len(slow.updates()); n != 0 {
		t.Fatalf("the blocked watch saw %d changes", n)
	}
	release()
	slow.waitVersion(t, last, 10*time.Second)
	if got, want := fmt.Sprint(slow.updates()), fmt.Sprint(fast.updates()); got != want {
		t.Fatalf("slow watch saw\n%s\nfast watch saw\n%s", got, want)
	}
}

// TestFullQueueHoldsUpOthers: when a blocked watch's queue is full the other watches wait
// (nothing is dropped), and everyone gets every change once it resumes.
func TestFullQueueHoldsUpOthers(t *testing.T) {
	c, release, slow, fast, last := slowAndFast(t, Options{WatchQueueMax: 3}, 10)
	// The slow watch holds one change in its function and three in its queue; the fourth
	// waits for room, and the fast watch with it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		full := 0
		c.mu.Lock()
		for w := range c.watchers {
			w.mu.Lock()
			if len(w.queue) == 3 {
				full++
			}
			w.mu.Unlock()
		}
		c.mu.Unlock()
		if full == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no watch queue filled up")
		}
		time.Sleep(time.Millisecond)
	}
	if n := len(fast.updates()); n >= 10 {
		t.Fatalf("the fast watch got all %d changes past a full queue", n)
	}
	release()
	slow.waitVersion(t, last, 10*time.Second)
	fast.waitVersion(t, last, 10*time.Second)
	if len(slow.updates()) != 10 || fmt.Sprint(slow.updates()) != fmt.Sprint(fast.updates()) {
		t.Fatalf("slow %v\nfast %v", slow.updates(), fast.updates())
	}
}
