// Package bus is fincore's event bus: NATS JetStream, either embedded in the process or an
// external NATS server or cluster, behind one API (DESIGN.md principle 5, requirement F1).
//
// Embedded mode ([Options.URL] empty) runs a NATS server with JetStream in this process, with
// file storage under [Options.DataDir] and, unless [Options.Listen] is set, no network
// listener at all: the client connects to it in-process. External mode connects to
// [Options.URL] and refuses to start if that server has JetStream disabled. Everything above
// the connection — streams, publishing, consumers — is the same code in both modes.
//
// Delivery is at-least-once. Publishers set a message id that the stream de-duplicates within
// its duplicate window ([DefaultDuplicateWindow]), so a publisher that retries after a crash
// does not store an event twice; consumers ([Bus.Consume]) must still be idempotent, because a
// message whose acknowledgement is lost is delivered again.
//
// Limits, all overridable where they are set: payloads are at most [DefaultMaxPayload] bytes;
// streams keep at most [DefaultStreamMaxBytes] bytes for at most [DefaultStreamMaxAge] and
// refuse new messages when full; consumers have [DefaultAckWait] to handle a message, at most
// [DefaultMaxAckPending] unacknowledged messages and at most [DefaultMaxDeliver] attempts.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Limits that apply when the caller does not choose others.
const (
	// DefaultMaxPayload is the largest message, in bytes, that the embedded server accepts
	// and that Publish sends (an external server's own limit applies if it is smaller).
	DefaultMaxPayload = 1 << 20

	// startTimeout bounds how long the embedded server may take to become ready, and how long
	// connecting and checking JetStream may take in either mode.
	startTimeout = 30 * time.Second

	// drainTimeout bounds Close's wait for in-flight publishes and subscriptions to drain.
	drainTimeout = 10 * time.Second
)

// Options configures Start.
type Options struct {
	// DataDir is where the embedded server keeps JetStream's files, for example <data>/nats.
	// It is created if missing. Required in embedded mode; ignored with URL.
	DataDir string

	// URL, if set, is an external NATS server or cluster (with JetStream enabled) to connect
	// to instead of running one in the process, for example nats://127.0.0.1:4222. Several
	// comma-separated URLs of one cluster are accepted.
	URL string

	// Listen is for embedded mode only. Empty means the embedded server opens no network
	// listener at all; host:port makes it also accept external clients there (port 0 picks a
	// free port; see Bus.ClientURL).
	Listen string

	// MaxPayload is the largest message in bytes; 0 means DefaultMaxPayload.
	MaxPayload int

	// Logger receives the bus's and the embedded server's log lines; nil means slog.Default().
	Logger *slog.Logger
}

// Bus is a connection to JetStream and, in embedded mode, the server it runs. It is safe for
// concurrent use. Close it when done.
type Bus struct {
	srv        *server.Server // nil in external mode
	nc         *nats.Conn
	js         jetstream.JetStream
	log        *slog.Logger
	maxPayload int
	closeConn  <-chan struct{} // closed once the connection is closed

	mu        sync.Mutex
	consumers map[*consumer]struct{}
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

// Start runs the embedded server (Options.URL empty) or connects to an external one, and
// checks that JetStream answers. The context bounds start-up only.
func Start(ctx context.Context, opts Options) (*Bus, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxPayload < 0 {
		return nil, fmt.Errorf("bus: max payload %d is negative", opts.MaxPayload)
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = DefaultMaxPayload
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	b := &Bus{log: opts.Logger.With("component", "bus"), consumers: map[*consumer]struct{}{}}
	closed := make(chan struct{})
	connOpts := []nats.Option{
		nats.Name("fincore"),
		nats.Timeout(5 * time.Second),
		nats.DrainTimeout(drainTimeout),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.log.Info("reconnected to NATS", "url", redact(nc.ConnectedUrl()))
		}),
	}

	var where string
	if opts.URL == "" {
		if opts.DataDir == "" {
			return nil, errors.New("bus: embedded mode needs a data directory")
		}
		srv, err := startServer(opts, b.log)
		if err != nil {
			return nil, err
		}
		b.srv = srv
		// The in-process connection cannot reconnect to anything else: if it breaks, the
		// server is gone.
		connOpts = append(connOpts, nats.InProcessServer(srv), nats.NoReconnect())
		where = "embedded"
	} else {
		if opts.Listen != "" {
			return nil, errors.New("bus: a listen address applies to the embedded server only, not with an external URL")
		}
		// An external server may restart or fail over: keep reconnecting for ever, and
		// let publishes fail by their own deadlines meanwhile.
		connOpts = append(connOpts, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
		where = redact(opts.URL)
	}

	nc, err := nats.Connect(opts.URL, connOpts...)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("bus: connect to NATS %s: %w", where, err)
	}
	b.nc = nc
	b.closeConn = closed
	b.maxPayload = min(opts.MaxPayload, int(nc.MaxPayload()))

	js, err := jetstream.New(nc)
	if err != nil {
		b.abort()
		return nil, fmt.Errorf("bus: JetStream client: %w", err)
	}
	b.js = js
	if _, err := js.AccountInfo(ctx); err != nil {
		b.abort()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, fmt.Errorf("bus: NATS %s does not have JetStream enabled (start nats-server with -js, or enable JetStream for this account): %w", where, err)
		}
		return nil, fmt.Errorf("bus: check JetStream on NATS %s: %w", where, err)
	}

	attrs := []any{"mode", "external", "url", where}
	if b.srv != nil {
		attrs = []any{"mode", "embedded", "store_dir", opts.DataDir, "listen", b.ClientURL()}
	}
	b.log.Info("event bus ready", append(attrs, "max_payload_bytes", b.maxPayload)...)
	return b, nil
}

// startServer runs the embedded NATS server and waits until it accepts connections.
func startServer(opts Options, log *slog.Logger) (*server.Server, error) {
	if opts.MaxPayload > 64<<20 {
		return nil, fmt.Errorf("bus: max payload %d exceeds NATS's limit of 64 MiB", opts.MaxPayload)
	}
	if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("bus: create data directory: %w", err)
	}
	sopts := &server.Options{
		ServerName: "fincore",
		JetStream:  true,
		StoreDir:   opts.DataDir,
		MaxPayload: int32(opts.MaxPayload),
		// The process owns signal handling; the server must not install its own.
		NoSigs: true,
	}
	if opts.Listen == "" {
		sopts.DontListen = true
	} else {
		host, port, err := splitListen(opts.Listen)
		if err != nil {
			return nil, err
		}
		sopts.Host, sopts.Port = host, port
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("bus: configure embedded NATS server: %w", err)
	}
	srv.SetLogger(serverLogger{log.With("component", "nats-server")}, false, false)
	srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded NATS server (store %s, listen %q) not ready within %s", opts.DataDir, opts.Listen, startTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded NATS server started without JetStream (store %s)", opts.DataDir)
	}
	return srv, nil
}

// splitListen parses host:port. Port 0 means "any free port", which nats-server spells -1
// (its 0 means the default port 4222).
func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("bus: listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bus: listen address %q: port must be 0-65535", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Conn returns the NATS connection, for request/reply and core subjects. Do not close it;
// close the Bus.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream API on the bus's connection.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// MaxPayload returns the largest message in bytes that Publish accepts.
func (b *Bus) MaxPayload() int { return b.maxPayload }

// Embedded reports whether the bus runs its own server in this process.
func (b *Bus) Embedded() bool { return b.srv != nil }

// ClientURL returns the URL external clients can use to reach the embedded server, or "" when
// it has no network listener (Options.Listen empty) or the bus is external.
func (b *Bus) ClientURL() string {
	if b.srv == nil {
		return ""
	}
	addr, ok := b.srv.Addr().(*net.TCPAddr)
	if !ok || addr == nil {
		return ""
	}
	return (&url.URL{Scheme: "nats", Host: addr.String()}).String()
}

// Close stops every consumer started with Consume (waiting for handlers in flight, each
// bounded by its ack wait), drains the connection so that pending publishes and
// acknowledgements are flushed, then shuts the embedded server down. It is safe to call more
// than once; later calls return the first call's result.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		consumers := make([]*consumer, 0, len(b.consumers))
		for c := range b.consumers {
			consumers = append(consumers, c)
		}
		b.mu.Unlock()
		for _, c := range consumers {
			c.stop()
		}

		if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			b.closeErr = fmt.Errorf("bus: drain connection: %w", err)
			b.nc.Close()
		}
		select {
		case <-b.closeConn:
		case <-time.After(drainTimeout + time.Second):
			b.nc.Close()
			if b.closeErr == nil {
				b.closeErr = fmt.Errorf("bus: connection did not drain within %s", drainTimeout)
			}
		}
		b.shutdownServer()
		b.log.Info("event bus closed")
	})
	return b.closeErr
}

// abort undoes a partial Start.
func (b *Bus) abort() {
	b.nc.Close()
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// redact hides a password in a NATS URL (or list of URLs) before it is logged or shown.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// serverLogger sends the embedded server's log lines to slog. Its notices (a start-up banner
// of dozens of lines) go to debug; warnings and errors keep their level.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Tracef(format string, v ...any)  {}
