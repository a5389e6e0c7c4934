package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream limits that apply unless an option overrides them.
const (
	// DefaultDuplicateWindow is how long a stream remembers message ids to drop duplicates.
	// A publisher that retries after a crash is de-duplicated if it retries within this
	// window; consumers stay idempotent for retries after it.
	DefaultDuplicateWindow = 10 * time.Minute

	// DefaultStreamMaxAge is how long a stream keeps a message.
	DefaultStreamMaxAge = 7 * 24 * time.Hour

	// DefaultStreamMaxBytes is the most a stream stores. When it is full, publishing fails
	// (the stream discards new messages, never old ones): a publisher backed by an outbox
	// keeps the event and retries, so nothing is dropped silently.
	DefaultStreamMaxBytes = 1 << 30

	// defaultPublishTimeout bounds a publish whose context has no deadline.
	defaultPublishTimeout = 5 * time.Second
)

// StreamOption changes one setting of the stream EnsureStream creates.
type StreamOption func(*jetstream.StreamConfig)

// WithDuplicateWindow sets how long the stream remembers message ids (default
// DefaultDuplicateWindow). It must not exceed the stream's max age.
func WithDuplicateWindow(d time.Duration) StreamOption {
	return func(c *jetstream.StreamConfig) { c.Duplicates = d }
}

// WithMaxAge sets how long the stream keeps a message (default DefaultStreamMaxAge).
func WithMaxAge(d time.Duration) StreamOption {
	return func(c *jetstream.StreamConfig) { c.MaxAge = d }
}

// WithMaxBytes sets the most the stream stores (default DefaultStreamMaxBytes).
func WithMaxBytes(n int64) StreamOption {
	return func(c *jetstream.StreamConfig) { c.MaxBytes = n }
}

// WithReplicas sets how many servers of an external cluster hold the stream (default 1; the
// embedded server is a single node and accepts only 1).
func WithReplicas(n int) StreamOption {
	return func(c *jetstream.StreamConfig) { c.Replicas = n }
}

// EnsureStream creates the file-backed stream name capturing subjects, or updates it to this
// configuration if it exists; calling it again with the same arguments changes nothing.
// Messages are de-duplicated by their Nats-Msg-Id header within the duplicate window, and are
// at most Bus.MaxPayload bytes.
func (b *Bus) EnsureStream(ctx context.Context, name string, subjects []string, opts ...StreamOption) error {
	if name == "" {
		return errors.New("bus: ensure stream: empty name")
	}
	if len(subjects) == 0 {
		return fmt.Errorf("bus: ensure stream %s: no subjects", name)
	}
	cfg := jetstream.StreamConfig{
		Name:       name,
		Subjects:   subjects,
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardNew,
		Duplicates: DefaultDuplicateWindow,
		MaxAge:     DefaultStreamMaxAge,
		MaxBytes:   DefaultStreamMaxBytes,
		MaxMsgs:    -1,
		MaxMsgSize: int32(b.maxPayload),
		Replicas:   1,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Duplicates <= 0 {
		return fmt.Errorf("bus: ensure stream %s: duplicate window must be positive, got %s", name, cfg.Duplicates)
	}
	if cfg.MaxAge > 0 && cfg.Duplicates > cfg.MaxAge {
		return fmt.Errorf("bus: ensure stream %s: duplicate window %s exceeds max age %s", name, cfg.Duplicates, cfg.MaxAge)
	}
	if cfg.MaxBytes <= 0 || cfg.MaxAge <= 0 {
		return fmt.Errorf("bus: ensure stream %s: max bytes and max age must be positive (streams are bounded)", name)
	}
	if _, err := b.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("bus: ensure stream %s on %v: %w", name, subjects, err)
	}
	return nil
}

// ErrNoStream is returned by StreamFor when no stream captures a subject.
var ErrNoStream = errors.New("bus: no stream captures the subject")

// StreamFor returns the name of the stream that captures subject (a concrete subject, without
// wildcards), or an error wrapping ErrNoStream if none does: a Publish on it would fail.
func (b *Bus) StreamFor(ctx context.Context, subject string) (string, error) {
	name, err := b.js.StreamNameBySubject(ctx, subject)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return "", fmt.Errorf("%w: %s", ErrNoStream, subject)
	}
	if err != nil {
		return "", fmt.Errorf("bus: find the stream of %s: %w", subject, err)
	}
	return name, nil
}

// Publish stores data on subject in the stream that captures it and waits for the stream's
// acknowledgement. msgID identifies the message: publishing the same id again within the
// stream's duplicate window stores nothing more and still returns nil, so a caller may retry
// until it sees nil. The context bounds the wait (5 s if it has no deadline).
func (b *Bus) Publish(ctx context.Context, subject, msgID string, data []byte) error {
	if msgID == "" {
		return fmt.Errorf("bus: publish %s: empty message id (needed for de-duplication)", subject)
	}
	if len(data) > b.maxPayload {
		return fmt.Errorf("bus: publish %s: payload of %d bytes exceeds the %d-byte limit", subject, len(data), b.maxPayload)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultPublishTimeout)
		defer cancel()
	}
	if _, err := b.js.Publish(ctx, subject, data, jetstream.WithMsgID(msgID)); err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return fmt.Errorf("bus: publish %s (id %s): no stream captures this subject, or it did not answer: %w", subject, msgID, err)
		}
		return fmt.Errorf("bus: publish %s (id %s): %w", subject, msgID, err)
	}
	return nil
}
