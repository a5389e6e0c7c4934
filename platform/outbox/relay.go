package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Defaults of Config.
const (
	// DefaultPageMax is the most rows the relay reads and publishes before marking them.
	DefaultPageMax = 512
	// DefaultPollInterval is how often the relay looks for rows without being notified.
	DefaultPollInterval = time.Second
	// DefaultRetention is how long published rows stay in the outbox (for inspection and
	// replay by hand) before they are deleted. A published row is never read by the relay
	// again, so retention is for people only.
	DefaultRetention = 24 * time.Hour
	// DefaultPruneInterval is how often published rows past the retention are deleted.
	DefaultPruneInterval = time.Minute
	// maxBackoff bounds the wait between attempts to publish after a failure.
	maxBackoff = 5 * time.Second
)

// Publisher publishes one message, de-duplicated by msgID (platform/bus.Bus is one).
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, data []byte) error
}

// Config tunes a Relay. Zero values take the defaults.
type Config struct {
	PageMax       int
	PollInterval  time.Duration
	Retention     time.Duration
	PruneInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	// TracerProvider makes the relay's spans, one per page published (default: none are
	// made).
	TracerProvider trace.TracerProvider
}

func (c *Config) defaults() {
	if c.PageMax <= 0 {
		c.PageMax = DefaultPageMax
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = DefaultPruneInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
}

// Relay publishes the outbox's rows to the bus in Seq order. One goroutine does the work
// (Start); it wakes on Notify and on a ticker as a fallback.
type Relay struct {
	st     Store
	pub    Publisher
	cfg    Config
	tracer trace.Tracer
	notify chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// NewRelay returns a relay from st to pub. It does nothing until Start.
func NewRelay(st Store, pub Publisher, cfg Config) *Relay {
	cfg.defaults()
	return &Relay{st: st, pub: pub, cfg: cfg, notify: make(chan struct{}, 1),
		tracer: cfg.TracerProvider.Tracer("github.com/fincore/fincore/platform/outbox")}
}

// Notify tells the relay that rows may have been committed. It never blocks: a signal already
// pending absorbs it. Give it to the ledger engine as ledger.Config.Committed.
func (r *Relay) Notify() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Start runs the relay until Stop.
func (r *Relay) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.run(ctx)
}

// Stop stops the relay and waits for it: a publish in flight is abandoned, and its rows stay
// unpublished until the next start publishes them again.
func (r *Relay) Stop() {
	r.once.Do(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
	})
}

// Lag reads how far the relay is behind (for metrics).
func (r *Relay) Lag(ctx context.Context) (Lag, error) {
	n, oldest, err := r.st.Backlog(ctx)
	if err != nil || n == 0 {
		return Lag{Unpublished: n}, err
	}
	return Lag{Unpublished: n, OldestAge: max(0, r.cfg.Now().Sub(oldest))}, nil
}

func (r *Relay) run(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	var after int64
	var lastPrune time.Time
	backoff := 50 * time.Millisecond
	for {
		var err error
		after, err = r.Drain(ctx, after)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("outbox relay", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		if now := r.cfg.Now(); now.Sub(lastPrune) >= r.cfg.PruneInterval {
			lastPrune = now
			if _, err := r.st.Prune(ctx, now.Add(-r.cfg.Retention)); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("outbox prune", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.notify:
		case <-tick.C:
		}
	}
}

// Drain publishes every unpublished row with Seq > after, page by page, marking each page
// published once all of it is, and returns the last Seq published. The relay's goroutine
// calls it; tests may call it directly on a relay that was not started.
func (r *Relay) Drain(ctx context.Context, after int64) (int64, error) {
	for {
		recs, err := r.st.Unpublished(ctx, after, r.cfg.PageMax)
		if err != nil {
			return after, fmt.Errorf("read outbox: %w", err)
		}
		if len(recs) == 0 {
			return after, nil
		}
		if after, err = r.publishPage(ctx, after, recs); err != nil {
			return after, err
		}
		if len(recs) < r.cfg.PageMax {
			return after, nil
		}
	}
}

// publishPage publishes recs, rows after after in Seq order, and marks them published. It
// returns the last Seq marked.
func (r *Relay) publishPage(ctx context.Context, after int64, recs []Record) (_ int64, err error) {
	ctx, span := r.tracer.Start(ctx, "outbox.publish", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.Int("outbox.events", len(recs)),
		attribute.Int64("outbox.first_seq", recs[0].Seq),
		attribute.Int64("outbox.last_seq", recs[len(recs)-1].Seq),
	))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}()
	for i := range recs {
		rec := &recs[i]
		if rec.Seq <= after {
			return after, errors.New("outbox: store returned rows out of order")
		}
		if err := r.pub.Publish(ctx, rec.Subject, rec.MsgID, rec.Payload); err != nil {
			// Mark what went out, so that a restart repeats as little as possible.
			if i > 0 {
				if merr := r.st.MarkPublished(ctx, recs[i-1].Seq); merr == nil {
					after = recs[i-1].Seq
				}
			}
			return after, err
		}
	}
	last := recs[len(recs)-1].Seq
	if err := r.st.MarkPublished(ctx, last); err != nil {
		return after, fmt.Errorf("mark outbox published: %w", err)
	}
	return last, nil
}
