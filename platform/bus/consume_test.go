package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consumerSettled waits until the consumer has acknowledged (or given up on) every message
// up to stream sequence seq and has nothing in flight: the server will not deliver those
// messages again.
func consumerSettled(t testing.TB, b *Bus, stream, durable string, seq uint64) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	waitFor(t, 10*time.Second, func() error {
		c, err := b.JetStream().Consumer(t.Context(), stream, durable)
		if err != nil {
			return err
		}
		info, err = c.Info(t.Context())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < seq || info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("consumer not settled: ack floor %d (want %d), %d awaiting ack, %d pending",
				info.AckFloor.Stream, seq, info.NumAckPending, info.NumPending)
		}
		return nil
	})
	return info
}

// deliveries records each delivery of each message id.
type deliveries struct {
	mu  sync.Mutex
	got map[string][]int // id -> Delivered of each call
}

func (d *deliveries) record(m Msg) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.got == nil {
		d.got = map[string][]int{}
	}
	d.got[m.ID] = append(d.got[m.ID], m.Delivered)
	return len(d.got[m.ID])
}

func (d *deliveries) of(id string) []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.got[id]...)
}

func TestConsumerRetriesFailures(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *Bus) {
		stream, prefix := testStream(t, b)
		var d deliveries
		handled := make(chan string, 10)
		handler := func(ctx context.Context, m Msg) error {
			n := d.record(m)
			switch {
			case m.ID == "fails-once" && n == 1:
				return errors.New("transient failure")
			case m.ID == "panics-once" && n == 1:
				panic("handler bug")
			}
			handled <- m.ID
			return nil
		}
		mustConsume(t, b, stream, "retrier", handler, WithRetryBackoff(10*time.Millisecond, 20*time.Millisecond))

		ids := []string{"fails-once", "succeeds", "panics-once"}
		for _, id := range ids {
			if err := b.Publish(t.Context(), prefix+"work", id, []byte(id)); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		for range ids {
			select {
			case id := <-handled:
				seen[id] = true
			case <-time.After(10 * time.Second):
				t.Fatalf("handled only %v", seen)
			}
		}
		info := consumerSettled(t, b, stream, "retrier", 3)

		for id, want := range map[string][]int{
			"fails-once":  {1, 2},
			"panics-once": {1, 2},
			"succeeds":    {1},
		} {
			if got := d.of(id); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s delivered as %v, want %v", id, got, want)
			}
		}
		if info.NumRedelivered != 0 {
			t.Errorf("%d messages still marked for redelivery", info.NumRedelivered)
		}
	})
}

func TestConsumerGivesUpAfterMaxDeliver(t *testing.T) {
	forEachMode(t, func(t *testing.T, b *Bus) {
		stream, prefix := testStream(t, b)
		var d deliveries
		mustConsume(t, b, stream, "hopeless", func(_ context.Context, m Msg) error {
			d.record(m)
			if m.ID == "poison" {
				return errors.New("always fails")
			}
			return nil
		}, WithMaxDeliver(3), WithRetryBackoff(time.Millisecond, 5*time.Millisecond))
		if err := b.Publish(t.Context(), prefix+"work", "poison", []byte("x")); err != nil {
			t.Fatal(err)
		}
		// Then a good message behind it still gets through.
		if err := b.Publish(t.Context(), prefix+"work", "after", []byte("y")); err != nil {
			t.Fatal(err)
		}
		consumerSettled(t, b, stream, "hopeless", 2)
		if got := d.of("poison"); fmt.Sprint(got) != "[1 2 3]" {
			t.Fatalf("poison message delivered as %v, want [1 2 3]", got)
		}
		if got := d.of("after"); fmt.Sprint(got) != "[1]" {
			t.Fatalf("message after the poison one delivered as %v, want [1]", got)
		}
		if n := streamMsgs(t, b, stream); n != 2 {
			t.Fatalf("stream holds %d messages, want both kept", n)
		}
	})
}

func TestConsumeStopAndClose(t *testing.T) {
	b, err := Start(t.Context(), Options{DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	stream, prefix := testStream(t, b)
	c := newCollector()
	stop, err := b.Consume(t.Context(), stream, "a", c.handle)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // idempotent
	// A second consumer is left running: Close must stop it and return.
	if _, err := b.Consume(t.Context(), stream, "b", c.handle); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), prefix+"x", "1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if m := c.next(t); m.ID != "1" {
		t.Fatalf("got %+v", m)
	}
	done := make(chan error)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Consume(t.Context(), stream, "c", c.handle); err == nil {
		t.Fatal("Consume after Close succeeded")
	}
	for _, bad := range []ConsumeOption{WithMaxDeliver(0), WithAckWait(0), WithMaxAckPending(0), WithRetryBackoff(time.Second, time.Millisecond)} {
		if _, err := b.Consume(t.Context(), stream, "d", c.handle, bad); err == nil {
			t.Error("Consume with an invalid option succeeded")
		}
	}
}

func TestBackoff(t *testing.T) {
	c := &consumer{cfg: consumeConfig{retryMin: time.Second, retryMax: 10 * time.Second}}
	for delivered, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 1000: 10 * time.Second} {
		if got := c.backoff(delivered); got != want {
			t.Errorf("backoff(%d) = %s, want %s", delivered, got, want)
		}
	}
}

// TestStopReleasesBufferedMessages checks that messages the client had fetched but not yet
// handled when a consumer stops are handed back at once, not after their ack wait (30 s by
// default), so a restarted process resumes promptly.
func TestStopReleasesBufferedMessages(t *testing.T) {
	b := MustStart(t, Options{DataDir: t.TempDir()})
	stream, prefix := testStream(t, b)
	for i := 1; i <= 5; i++ {
		if err := b.Publish(t.Context(), prefix+"x", fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	started, release := make(chan struct{}), make(chan struct{})
	stop, err := b.Consume(ctx, stream, "shared", func(context.Context, Msg) error {
		close(started)
		<-release
		return errors.New("shutting down")
	}, WithRetryBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	<-started // message 1 is in the handler; the others are buffered
	cancel()
	close(release)
	stop()

	c := newCollector()
	mustConsume(t, b, stream, "shared", c.handle)
	got := map[string]bool{}
	for range 5 {
		got[c.next(t).ID] = true // next fails the test after 10 s, well before the ack wait
	}
	if len(got) != 5 {
		t.Fatalf("got %v, want all 5 messages", got)
	}
}
