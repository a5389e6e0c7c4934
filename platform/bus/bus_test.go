package bus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testLogger shows the bus's warnings and errors in the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// MustStart starts a bus with opts and closes it when the test ends.
func MustStart(t testing.TB, opts Options) *Bus {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	b, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// forEachMode runs f against an embedded bus and, if FINCORE_TEST_NATS names a NATS server
// with JetStream, against that server.
func forEachMode(t *testing.T, f func(t *testing.T, b *Bus)) {
	t.Run("embedded", func(t *testing.T) {
		f(t, MustStart(t, Options{DataDir: t.TempDir()}))
	})
	t.Run("external", func(t *testing.T) {
		url := os.Getenv("FINCORE_TEST_NATS")
		if url == "" {
			t.Skip("FINCORE_TEST_NATS not set")
		}
		f(t, MustStart(t, Options{URL: url}))
	})
}

// testStream creates a stream with a name and subjects no other test (or test run sharing an
// external server) uses, deletes it when the test ends, and returns its name and the subject
// prefix it captures (prefix + anything).
func testStream(t testing.TB, b *Bus, opts ...StreamOption) (name, prefix string) {
	t.Helper()
	id := fmt.Sprintf("%08x", rand.Uint32())
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	name = "TEST_" + safe + "_" + id
	prefix = "fincoretest." + id + "."
	if err := b.EnsureStream(t.Context(), name, []string{prefix + ">"}, opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.JetStream().DeleteStream(ctx, name); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			t.Errorf("delete stream %s: %v", name, err)
		}
	})
	return name, prefix
}

// waitFor polls cond until it returns nil or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func streamMsgs(t testing.TB, b *Bus, name string) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// collector is a handler that records what it is given and sends it on a channel.
type collector struct {
	ch chan Msg
}

func newCollector() *collector { return &collector{ch: make(chan Msg, 100)} }

func (c *collector) handle(_ context.Context, m Msg) error {
	c.ch <- m
	return nil
}

// next returns the next message handled, failing the test if none comes in time.
func (c *collector) next(t testing.TB) Msg {
	t.Helper()
	select {
	case m := <-c.ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message delivered within 10s")
		return Msg{}
	}
}

func mustConsume(t testing.TB, b *Bus, stream, durable string, h Handler, opts ...ConsumeOption) {
	t.Helper()
	stop, err := b.Consume(t.Context(), stream, durable, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

func TestPublishConsume(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *Bus) {
		name, prefix := testStream(t, b)
		// EnsureStream is idempotent.
		if err := b.EnsureStream(t.Context(), name, []string{prefix + ">"}); err != nil {
			t.Fatalf("second EnsureStream: %v", err)
		}
		for i := range 3 {
			if err := b.Publish(t.Context(), prefix+"created", fmt.Sprintf("m%d", i), fmt.Appendf(nil, "body %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		c := newCollector()
		mustConsume(t, b, name, "reader", c.handle)
		for i := range 3 {
			m := c.next(t)
			if m.ID != fmt.Sprintf("m%d", i) || string(m.Data) != fmt.Sprintf("body %d", i) ||
				m.Subject != prefix+"created" || m.Sequence != uint64(i+1) || m.Delivered != 1 || m.Time.IsZero() {
				t.Fatalf("message %d: %+v", i, m)
			}
		}
	})
}

func TestDeduplication(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *Bus) {
		name, prefix := testStream(t, b)
		for range 2 {
			if err := b.Publish(t.Context(), prefix+"x", "same-id", []byte("first")); err != nil {
				t.Fatal(err)
			}
		}
		// A different body under the same id is still the same message.
		if err := b.Publish(t.Context(), prefix+"x", "same-id", []byte("second")); err != nil {
			t.Fatal(err)
		}
		if n := streamMsgs(t, b, name); n != 1 {
			t.Fatalf("stream holds %d messages after publishing one id three times, want 1", n)
		}
		if err := b.Publish(t.Context(), prefix+"x", "other-id", []byte("first")); err != nil {
			t.Fatal(err)
		}
		if n := streamMsgs(t, b, name); n != 2 {
			t.Fatalf("stream holds %d messages, want 2", n)
		}
	})
}

func TestPublishErrors(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *Bus) {
		name, prefix := testStream(t, b)
		if err := b.Publish(t.Context(), prefix+"x", "", []byte("a")); err == nil {
			t.Error("publish without a message id succeeded")
		}
		if err := b.Publish(t.Context(), prefix+"x", "big", make([]byte, b.MaxPayload()+1)); err == nil {
			t.Error("publish of an oversized payload succeeded")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := b.Publish(ctx, "fincoretest.nostream.here", "id", []byte("a")); err == nil {
			t.Error("publish on a subject no stream captures succeeded")
		}
		if n := streamMsgs(t, b, name); n != 0 {
			t.Errorf("failed publishes stored %d messages", n)
		}
		if err := b.EnsureStream(t.Context(), name, nil); err == nil {
			t.Error("EnsureStream without subjects succeeded")
		}
		if err := b.EnsureStream(t.Context(), name, []string{prefix + ">"}, WithDuplicateWindow(2*time.Hour), WithMaxAge(time.Hour)); err == nil {
			t.Error("EnsureStream with a duplicate window longer than the max age succeeded")
		}
	})
}

func TestStreamFor(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *Bus) {
		name, prefix := testStream(t, b)
		if got, err := b.StreamFor(t.Context(), prefix+"a.b"); err != nil || got != name {
			t.Errorf("StreamFor(%sa.b) = %q, %v; want %s", prefix, got, err, name)
		}
		if got, err := b.StreamFor(t.Context(), "fincoretest.nostream.here"); !errors.Is(err, ErrNoStream) || !strings.Contains(err.Error(), "fincoretest.nostream.here") {
			t.Errorf("StreamFor of a subject no stream captures = %q, %v", got, err)
		}
	})
}

func TestStartErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no data dir", Options{}, "data directory"},
		{"listen with url", Options{URL: "nats://127.0.0.1:1", Listen: "127.0.0.1:0"}, "embedded server only"},
		{"bad listen", Options{DataDir: t.TempDir(), Listen: "no-port"}, "listen address"},
		{"bad port", Options{DataDir: t.TempDir(), Listen: "127.0.0.1:99999"}, "port must be"},
		{"negative payload", Options{DataDir: t.TempDir(), MaxPayload: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Logger = testLogger(t)
			b, err := Start(t.Context(), tc.opts)
			if err == nil {
				b.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestExternalWithoutJetStream starts a plain NATS server (JetStream off) on a free loopback
// port and checks that Start refuses it with an error that says why.
func TestExternalWithoutJetStream(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("plain NATS server not ready")
	}
	b, err := Start(t.Context(), Options{URL: srv.ClientURL(), Logger: testLogger(t)})
	if err == nil {
		b.Close()
		t.Fatal("Start succeeded against a server without JetStream")
	}
	if !strings.Contains(err.Error(), "does not have JetStream enabled") {
		t.Fatalf("unclear error: %v", err)
	}
}

// listeningSockets counts the TCP sockets in LISTEN state that this process holds (Linux).
func listeningSockets(t testing.TB) int {
	t.Helper()
	listening := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Skipf("cannot read socket table: %v", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[3] == "0A" { // 0A is TCP_LISTEN
				listening[fields[9]] = true
			}
		}
		fh.Close()
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list file descriptors: %v", err)
	}
	n := 0
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && listening[strings.TrimSuffix(inode, "]")] {
			n++
		}
	}
	return n
}

func TestEmbeddedListener(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc to see this process's sockets")
	}
	before := listeningSockets(t)

	quiet := MustStart(t, Options{DataDir: t.TempDir()})
	if got := quiet.ClientURL(); got != "" {
		t.Errorf("ClientURL without a listener = %q, want empty", got)
	}
	if addr := quiet.srv.Addr(); addr != nil {
		t.Errorf("server without a listener has address %v", addr)
	}
	if n := listeningSockets(t); n != before {
		t.Fatalf("embedded bus without Listen opened %d listening sockets", n-before)
	}

	open := MustStart(t, Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	url := open.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":4222") {
		t.Fatalf("ClientURL = %q, want a free loopback port", url)
	}
	if n := listeningSockets(t); n != before+1 {
		t.Fatalf("embedded bus with Listen holds %d new listening sockets, want 1", n-before)
	}

	// An ordinary client connects over TCP and publishes through JetStream; the bus's own
	// consumer sees it.
	name, prefix := testStream(t, open)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("external client: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), prefix+"from.outside", []byte("hello"), jetstream.WithMsgID("ext-1")); err != nil {
		t.Fatalf("external publish: %v", err)
	}
	c := newCollector()
	mustConsume(t, open, name, "reader", c.handle)
	if m := c.next(t); string(m.Data) != "hello" || m.ID != "ext-1" {
		t.Fatalf("got %+v", m)
	}
}

// TestEmbeddedRestart publishes, closes the bus, starts it again on the same directory and
// checks that the message, the duplicate-detection state and the durable consumer's position
// all survived.
func TestEmbeddedRestart(t *testing.T) {
	dir := t.TempDir()
	const stream = "RESTART"
	subjects := []string{"restart.>"}

	b1, err := Start(t.Context(), Options{DataDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.EnsureStream(t.Context(), stream, subjects); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := b1.Publish(t.Context(), "restart.x", id, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	// Consume and acknowledge "a" only: stop after the first message.
	c := newCollector()
	var once sync.Once
	first := make(chan struct{})
	stop, err := b1.Consume(t.Context(), stream, "durable", func(ctx context.Context, m Msg) error {
		if m.ID != "a" {
			<-ctx.Done() // hold "b" unacknowledged until stop
			return ctx.Err()
		}
		once.Do(func() { close(first) })
		return c.handle(ctx, m)
	}, WithAckWait(time.Second), WithRetryBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	<-first
	if m := c.next(t); m.ID != "a" {
		t.Fatalf("first message %q", m.ID)
	}
	stop()
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := MustStart(t, Options{DataDir: dir})
	if err := b2.EnsureStream(t.Context(), stream, subjects); err != nil {
		t.Fatal(err)
	}
	// Republishing "a" after the restart, as an outbox relay would after a crash, is
	// de-duplicated.
	if err := b2.Publish(t.Context(), "restart.x", "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := b2.Publish(t.Context(), "restart.x", "c", []byte("c")); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, b2, stream); n != 3 {
		t.Fatalf("stream holds %d messages after restart, want 3 (a, b, c)", n)
	}
	c2 := newCollector()
	// A message left pending at shutdown is redelivered after the ack wait.
	start := time.Now()
	mustConsume(t, b2, stream, "durable", c2.handle, WithAckWait(2*time.Second))
	// "b" was never acknowledged and "c" is new; a redelivery may come before or after.
	got := map[string]int{}
	for range 2 {
		got[c2.next(t).ID]++
	}
	if got["b"] != 1 || got["c"] != 1 {
		t.Fatalf("after restart the durable consumer got %v, want b and c once each", got)
	}
	t.Logf("b and c delivered %s after restart", time.Since(start))
	// A fresh consumer sees everything that was persisted.
	c3 := newCollector()
	mustConsume(t, b2, stream, "fresh", c3.handle)
	for _, want := range []string{"a", "b", "c"} {
		if m := c3.next(t); m.ID != want {
			t.Fatalf("fresh consumer got %q, want %q", m.ID, want)
		}
	}
}
