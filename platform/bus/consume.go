package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Consumer limits that apply unless an option overrides them.
const (
	// DefaultAckWait is how long a handler has for one message. A message not acknowledged
	// by then is delivered again, and the handler's context is cancelled.
	DefaultAckWait = 30 * time.Second

	// DefaultMaxDeliver is how many times a message is delivered before the consumer gives
	// up on it (logged at error level and terminated; it stays in the stream).
	DefaultMaxDeliver = 20

	// DefaultMaxAckPending bounds the messages delivered to a consumer and not yet
	// acknowledged.
	DefaultMaxAckPending = 256

	// DefaultRetryMin and DefaultRetryMax bound the delay before a failed message is
	// delivered again: it doubles from DefaultRetryMin with every failed delivery, up to
	// DefaultRetryMax.
	DefaultRetryMin = time.Second
	DefaultRetryMax = time.Minute

	// defaultPrefetch is how many messages the client buffers ahead of the handler. Kept
	// small because buffered messages' ack wait is already running.
	defaultPrefetch = 16
)

// Msg is a message delivered to a consumer's handler.
type Msg struct {
	Subject   string
	ID        string // the publisher's message id (Nats-Msg-Id), "" if none
	Data      []byte
	Header    nats.Header
	Sequence  uint64    // the message's sequence number in its stream
	Delivered int       // 1 on first delivery, 2 on the first redelivery, ...
	Time      time.Time // when the stream stored it
}

// Handler processes one message. Returning nil acknowledges it; returning an error (or
// panicking) makes it be delivered again after a backoff. Handlers must be idempotent: a
// message can be delivered more than once (after an error, a timeout, a lost
// acknowledgement, or a restart), and the same event can be published under a new id after
// the duplicate window.
type Handler func(ctx context.Context, m Msg) error

// ConsumeOption changes one setting of a consumer.
type ConsumeOption func(*consumeConfig)

type consumeConfig struct {
	filter        []string
	ackWait       time.Duration
	maxDeliver    int
	maxAckPending int
	retryMin      time.Duration
	retryMax      time.Duration
}

// WithFilterSubjects makes the consumer receive only messages on these subjects (wildcards
// allowed) instead of the whole stream.
func WithFilterSubjects(subjects ...string) ConsumeOption {
	return func(c *consumeConfig) { c.filter = subjects }
}

// WithAckWait sets how long the handler has for one message (default DefaultAckWait).
func WithAckWait(d time.Duration) ConsumeOption {
	return func(c *consumeConfig) { c.ackWait = d }
}

// WithMaxDeliver sets how many times a message is delivered before the consumer gives up on
// it (default DefaultMaxDeliver).
func WithMaxDeliver(n int) ConsumeOption {
	return func(c *consumeConfig) { c.maxDeliver = n }
}

// WithMaxAckPending bounds the unacknowledged messages of the consumer (default
// DefaultMaxAckPending).
func WithMaxAckPending(n int) ConsumeOption {
	return func(c *consumeConfig) { c.maxAckPending = n }
}

// WithRetryBackoff sets the delay before a failed message is delivered again: min after the
// first failure, doubling after each further one, never more than max (defaults
// DefaultRetryMin, DefaultRetryMax).
func WithRetryBackoff(min, max time.Duration) ConsumeOption {
	return func(c *consumeConfig) { c.retryMin, c.retryMax = min, max }
}

// consumer is one running Consume loop.
type consumer struct {
	bus    *Bus
	name   string
	cfg    consumeConfig
	it     jetstream.MessagesContext
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Consume runs handler on the messages of stream through the durable pull consumer durable,
// creating it (from the start of the stream) or updating it to these options. Delivery is
// at-least-once: a message is acknowledged when handler returns nil and delivered again
// after a backoff when it returns an error, so handlers must be idempotent (see Handler).
// Messages are handled one at a time, in stream order except for redeliveries.
//
// A durable consumer remembers its position across restarts and is shared by every process
// that consumes under the same name, which then split its messages. Messages fetched but not
// yet handled when the loop stops are handed back at once; a message that was in flight when
// the server itself stopped is delivered again after the ack wait.
//
// stop ends the loop, waits for a handler in flight and returns; cancelling ctx ends the loop
// too, and Close stops every consumer. The handler's context is not cancelled by stop or ctx
// (so that a handler in flight can finish and be acknowledged) but expires after the ack wait.
func (b *Bus) Consume(ctx context.Context, stream, durable string, handler Handler, opts ...ConsumeOption) (stop func(), err error) {
	if durable == "" || stream == "" || handler == nil {
		return nil, fmt.Errorf("bus: consume %q/%q: stream, durable name and handler are required", stream, durable)
	}
	cfg := consumeConfig{
		ackWait:       DefaultAckWait,
		maxDeliver:    DefaultMaxDeliver,
		maxAckPending: DefaultMaxAckPending,
		retryMin:      DefaultRetryMin,
		retryMax:      DefaultRetryMax,
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case cfg.ackWait <= 0:
		return nil, fmt.Errorf("bus: consume %s/%s: ack wait must be positive", stream, durable)
	case cfg.maxDeliver <= 0:
		return nil, fmt.Errorf("bus: consume %s/%s: max deliver must be positive (deliveries are bounded)", stream, durable)
	case cfg.maxAckPending <= 0:
		return nil, fmt.Errorf("bus: consume %s/%s: max ack pending must be positive", stream, durable)
	case cfg.retryMin <= 0 || cfg.retryMax < cfg.retryMin:
		return nil, fmt.Errorf("bus: consume %s/%s: retry backoff needs 0 < min <= max", stream, durable)
	}

	ccfg := jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       cfg.ackWait,
		MaxDeliver:    cfg.maxDeliver,
		MaxAckPending: cfg.maxAckPending,
	}
	if len(cfg.filter) == 1 {
		ccfg.FilterSubject = cfg.filter[0]
	} else {
		ccfg.FilterSubjects = cfg.filter
	}
	jc, err := b.js.CreateOrUpdateConsumer(ctx, stream, ccfg)
	if err != nil {
		return nil, fmt.Errorf("bus: consume %s/%s: create consumer: %w", stream, durable, err)
	}
	it, err := jc.Messages(jetstream.PullMaxMessages(min(defaultPrefetch, cfg.maxAckPending)))
	if err != nil {
		return nil, fmt.Errorf("bus: consume %s/%s: start pulling: %w", stream, durable, err)
	}

	loopCtx, cancel := context.WithCancel(ctx)
	c := &consumer{bus: b, name: stream + "/" + durable, cfg: cfg, it: it, cancel: cancel, done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		cancel()
		it.Stop()
		return nil, fmt.Errorf("bus: consume %s: bus is closed", c.name)
	}
	b.consumers[c] = struct{}{}
	b.mu.Unlock()

	go c.run(loopCtx, context.WithoutCancel(ctx), handler)
	return c.stop, nil
}

// stop ends the loop and waits for it; safe to call more than once.
func (c *consumer) stop() {
	c.once.Do(c.cancel)
	<-c.done
	c.bus.mu.Lock()
	delete(c.bus.consumers, c)
	c.bus.mu.Unlock()
}

func (c *consumer) run(loopCtx, handlerBase context.Context, handler Handler) {
	defer close(c.done)
	defer c.release()
	log := c.bus.log.With("consumer", c.name)
	for loopCtx.Err() == nil {
		jm, err := c.it.Next(jetstream.NextContext(loopCtx))
		if err != nil {
			if loopCtx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			// Missed heartbeats and the like are transient: the iterator keeps pulling.
			log.Warn("pull messages", "err", err)
			select {
			case <-loopCtx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		c.handle(handlerBase, handler, jm, log)
	}
}

func (c *consumer) handle(base context.Context, handler Handler, jm jetstream.Msg, log *slog.Logger) {
	meta, err := jm.Metadata()
	if err != nil {
		// Not a JetStream message; nothing sensible to do but drop it.
		log.Error("message without metadata", "subject", jm.Subject(), "err", err)
		_ = jm.Term()
		return
	}
	m := Msg{
		Subject:   jm.Subject(),
		ID:        jm.Headers().Get(jetstream.MsgIDHeader),
		Data:      jm.Data(),
		Header:    jm.Headers(),
		Sequence:  meta.Sequence.Stream,
		Delivered: int(meta.NumDelivered),
		Time:      meta.Timestamp,
	}
	ctx, cancel := context.WithTimeout(base, c.cfg.ackWait)
	err = safeCall(ctx, handler, m)
	cancel()
	if err == nil {
		if err := jm.Ack(); err != nil {
			log.Warn("ack failed; the message will be delivered again", "seq", m.Sequence, "err", err)
		}
		return
	}
	if m.Delivered >= c.cfg.maxDeliver {
		log.Error("handler failed on the last allowed delivery; giving up on the message",
			"seq", m.Sequence, "subject", m.Subject, "id", m.ID, "deliveries", m.Delivered, "err", err)
		_ = jm.Term()
		return
	}
	delay := c.backoff(m.Delivered)
	log.Warn("handler failed; will retry", "seq", m.Sequence, "subject", m.Subject, "id", m.ID,
		"delivery", m.Delivered, "retry_in", delay, "err", err)
	if err := jm.NakWithDelay(delay); err != nil {
		log.Warn("nak failed; the message will be delivered again after the ack wait", "seq", m.Sequence, "err", err)
	}
}

// release stops pulling and hands back the messages the client had buffered but not given to
// the handler, so that they are delivered again at once (to this process after a restart, or
// to another one sharing the durable consumer) rather than after their ack wait.
func (c *consumer) release() {
	c.it.Drain()
	for range defaultPrefetch + 1 {
		jm, err := c.it.Next(jetstream.NextMaxWait(100 * time.Millisecond))
		if err != nil {
			break
		}
		_ = jm.Nak()
	}
	c.it.Stop()
}

// backoff is the delay before delivery number delivered+1.
func (c *consumer) backoff(delivered int) time.Duration {
	d := c.cfg.retryMin
	for i := 1; i < delivered && d < c.cfg.retryMax; i++ {
		d *= 2
	}
	return min(d, c.cfg.retryMax)
}

// safeCall runs the handler, turning a panic into an error so that one bad message cannot
// take the process down; the message is retried like any other failure.
func safeCall(ctx context.Context, h Handler, m Msg) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, m)
}
