package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fincore/fincore/platform/bus"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// mustBus starts a bus and closes it when the test ends.
func mustBus(t testing.TB, opts bus.Options) *bus.Bus {
	t.Helper()
	opts.Logger = testLogger(t)
	b, err := bus.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("start bus: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// testBucket is a bucket name no other test (or run sharing an external server) uses.
func testBucket(t testing.TB) string {
	return fmt.Sprintf("test_config_%08x", rand.Uint32())
}

// mustOpen opens a Center on bucket and, when the test ends, closes it and deletes the bucket.
func mustOpen(t testing.TB, b *bus.Bus, bucket string, opts Options) *Center {
	t.Helper()
	opts.Bucket = bucket
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	c, err := Open(t.Context(), b.JetStream(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.JetStream().DeleteKeyValue(ctx, bucket)
	})
	return c
}

// forEachMode runs f on a Center over an embedded bus and, if FINCORE_TEST_NATS is set, over
// that external server.
func forEachMode(t *testing.T, opts Options, f func(t *testing.T, b *bus.Bus, c *Center)) {
	t.Run("embedded", func(t *testing.T) {
		b := mustBus(t, bus.Options{DataDir: t.TempDir()})
		f(t, b, mustOpen(t, b, testBucket(t), opts))
	})
	t.Run("external", func(t *testing.T) {
		url := os.Getenv("FINCORE_TEST_NATS")
		if url == "" {
			t.Skip("FINCORE_TEST_NATS not set")
		}
		b := mustBus(t, bus.Options{URL: url})
		f(t, b, mustOpen(t, b, testBucket(t), opts))
	})
}

func mustSet(t testing.TB, c *Center, key, value string, meta Meta) Change {
	t.Helper()
	ch, err := c.Set(t.Context(), key, []byte(value), meta)
	if err != nil {
		t.Fatalf("Set(%s, %s): %v", key, value, err)
	}
	return ch
}

func ptr(v uint64) *uint64 { return &v }

func TestSetGetHistory(t *testing.T) {
	forEachMode(t, Options{}, func(t *testing.T, b *bus.Bus, c *Center) {
		if _, err := c.Get(t.Context(), "channel.icbc.weight"); !errors.Is(err, ErrNotSet) {
			t.Fatalf("Get of an unset key: %v, want ErrNotSet", err)
		}
		if h, err := c.History(t.Context(), "channel.icbc.weight"); err != nil || len(h) != 0 {
			t.Fatalf("History of an unset key: %v %v", h, err)
		}
		before := time.Now().UTC()
		ch1 := mustSet(t, c, "channel.icbc.weight", " 100 ", Meta{})
		if ch1.Version == 0 || string(ch1.Value) != "100" || ch1.OldValue != nil || ch1.OldVersion != 0 ||
			ch1.Actor != AnonymousActor || ch1.At.Before(before) {
			t.Fatalf("first change: %+v", ch1)
		}
		ch2 := mustSet(t, c, "channel.icbc.weight", "250", Meta{Actor: "key_ops", Reason: "shift traffic to ICBC"})
		if ch2.Version <= ch1.Version || string(ch2.OldValue) != "100" || ch2.OldVersion != ch1.Version ||
			ch2.Actor != "key_ops" || ch2.Reason != "shift traffic to ICBC" {
			t.Fatalf("second change: %+v", ch2)
		}
		e, err := c.Get(t.Context(), "channel.icbc.weight")
		if err != nil {
			t.Fatal(err)
		}
		if e.Key != "channel.icbc.weight" || string(e.Value) != "250" || e.Version != ch2.Version ||
			e.Actor != "key_ops" || e.Reason != "shift traffic to ICBC" || !e.At.Equal(ch2.At) {
			t.Fatalf("Get: %+v", e)
		}
		h, err := c.History(t.Context(), "channel.icbc.weight")
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 || !sameChange(h[0], ch2) || !sameChange(h[1], ch1) {
			t.Fatalf("history (newest first): %+v\nwant %+v, %+v", h, ch2, ch1)
		}
		// Other keys have their own history.
		mustSet(t, c, "switch.payments", `"degraded"`, Meta{Actor: "a"})
		if h, _ := c.History(t.Context(), "channel.icbc.weight"); len(h) != 2 {
			t.Fatalf("history grew to %d with another key's change", len(h))
		}
		if _, err := c.History(t.Context(), "nope"); !errors.Is(err, ErrKeyUnknown) {
			t.Fatalf("History of an unknown key: %v", err)
		}
		if _, err := c.Get(t.Context(), "channel.icbc"); !errors.Is(err, ErrKeyUnknown) {
			t.Fatalf("Get of an unknown key: %v", err)
		}
	})
}

func sameChange(a, b Change) bool {
	return a.Key == b.Key && a.Version == b.Version && string(a.Value) == string(b.Value) &&
		string(a.OldValue) == string(b.OldValue) && a.OldVersion == b.OldVersion &&
		a.Actor == b.Actor && a.Reason == b.Reason && a.At.Equal(b.At)
}

// TestRefusedChangesStoreNothing: an unknown key, an invalid value, bad metadata or a version
// conflict leave the bucket as it was.
func TestRefusedChangesStoreNothing(t *testing.T) {
	forEachMode(t, Options{}, func(t *testing.T, b *bus.Bus, c *Center) {
		base := mustSet(t, c, "channel.icbc.weight", "10", Meta{})
		for _, tc := range []struct {
			name  string
			key   string
			value string
			meta  Meta
			want  error
		}{
			{"unknown key", "channel.icbc.colour", `"red"`, Meta{}, ErrKeyUnknown},
			{"malformed key", "channel.icbc.weight.", "10", Meta{}, ErrKeyUnknown},
			{"out of range", "channel.icbc.weight", "1001", Meta{}, ErrValueInvalid},
			{"wrong type", "channel.icbc.weight", `"10"`, Meta{}, ErrValueInvalid},
			{"not JSON", "channel.icbc.weight", "10,", Meta{}, ErrValueInvalid},
			{"empty", "channel.icbc.weight", "", Meta{}, ErrValueInvalid},
			{"too large", "switch.x", `"` + string(make([]byte, ValueMaxBytes)) + `"`, Meta{}, ErrValueInvalid},
			{"long reason", "channel.icbc.weight", "11", Meta{Reason: string(make([]byte, ReasonMaxBytes+1))}, ErrMetaInvalid},
			{"bad actor", "channel.icbc.weight", "11", Meta{Actor: "\xff"}, ErrMetaInvalid},
			{"stale version", "channel.icbc.weight", "11", Meta{ExpectVersion: ptr(base.Version - 1)}, ErrConflict},
			{"expected unset", "channel.icbc.weight", "11", Meta{ExpectVersion: ptr(0)}, ErrConflict},
			{"expected set", "channel.cmb.weight", "11", Meta{ExpectVersion: ptr(base.Version)}, ErrConflict},
		} {
			_, err := c.Set(t.Context(), tc.key, []byte(tc.value), tc.meta)
			var ce *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || ce.Detail == "" {
				t.Errorf("%s: Set = %v, want %v with a detail", tc.name, err, tc.want)
			}
		}
		st, err := b.JetStream().Stream(t.Context(), "KV_"+bucketOf(t, c))
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != 1 || info.State.LastSeq != base.Version {
			t.Fatalf("bucket holds %d revisions (last %d) after refused changes, want only %d", info.State.Msgs, info.State.LastSeq, base.Version)
		}
		// The right expected version is accepted; so is 0 for a key without a value.
		if _, err := c.Set(t.Context(), "channel.icbc.weight", []byte("12"), Meta{ExpectVersion: ptr(base.Version)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(t.Context(), "channel.cmb.weight", []byte("12"), Meta{ExpectVersion: ptr(0)}); err != nil {
			t.Fatal(err)
		}
	})
}

func bucketOf(t testing.TB, c *Center) string {
	t.Helper()
	return c.kv.Bucket()
}

// TestConcurrentSets: writers without an expected version never lose an update, and each
// change records exactly the value it replaced; writers expecting the same version have
// exactly one winner.
func TestConcurrentSets(t *testing.T) {
	forEachMode(t, Options{}, func(t *testing.T, b *bus.Bus, c *Center) {
		const writers, each = 4, 8
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if _, err := c.Set(t.Context(), "channel.a.priority", []byte(strconv.Itoa(w*100+i)), Meta{Actor: fmt.Sprint("w", w)}); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		h, err := c.History(t.Context(), "channel.a.priority")
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != writers*each {
			t.Fatalf("history holds %d changes, want %d", len(h), writers*each)
		}
		for i := 0; i+1 < len(h); i++ {
			if h[i].OldVersion != h[i+1].Version || string(h[i].OldValue) != string(h[i+1].Value) {
				t.Fatalf("change %d replaced version %d (%s), but the one before it is version %d (%s)",
					h[i].Version, h[i].OldVersion, h[i].OldValue, h[i+1].Version, h[i+1].Value)
			}
		}

		cur, _ := c.Get(t.Context(), "channel.a.priority")
		var wins, conflicts int
		var mu sync.Mutex
		for w := range writers {
			wg.Go(func() {
				_, err := c.Set(t.Context(), "channel.a.priority", []byte(strconv.Itoa(w)), Meta{ExpectVersion: ptr(cur.Version)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, ErrConflict):
					conflicts++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins != 1 || conflicts != writers-1 {
			t.Fatalf("%d writers expecting version %d: %d won, %d conflicted", writers, cur.Version, wins, conflicts)
		}
	})
}

func TestHistoryIsBounded(t *testing.T) {
	b := mustBus(t, bus.Options{DataDir: t.TempDir()})
	c := mustOpen(t, b, testBucket(t), Options{})
	for i := range HistoryDefault + 6 {
		mustSet(t, c, "risk.ruleset.r.version", strconv.Itoa(i+1), Meta{})
	}
	h, err := c.History(t.Context(), "risk.ruleset.r.version")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != HistoryDefault || string(h[0].Value) != strconv.Itoa(HistoryDefault+6) || string(h[len(h)-1].Value) != "7" {
		t.Fatalf("history: %d changes, newest %s, oldest %s", len(h), h[0].Value, h[len(h)-1].Value)
	}
}

func TestList(t *testing.T) {
	forEachMode(t, Options{}, func(t *testing.T, b *bus.Bus, c *Center) {
		if l, err := c.List(t.Context(), ""); err != nil || len(l) != 0 {
			t.Fatalf("List of an empty bucket: %v %v", l, err)
		}
		mustSet(t, c, "channel.b.weight", "1", Meta{})
		mustSet(t, c, "channel.a.weight", "2", Meta{})
		mustSet(t, c, "channel.a.weight", "3", Meta{Actor: "x"})
		mustSet(t, c, "switch.pay", `"off"`, Meta{})
		mustSet(t, c, "ratelimit.default", `{"rate_per_s":5,"burst":10}`, Meta{})
		keys := func(prefix string) string {
			t.Helper()
			l, err := c.List(t.Context(), prefix)
			if err != nil {
				t.Fatal(err)
			}
			var s string
			for _, e := range l {
				s += fmt.Sprintf("%s=%s ", e.Key, e.Value)
			}
			return s
		}
		for prefix, want := range map[string]string{
			"":                 `channel.a.weight=3 channel.b.weight=1 ratelimit.default={"rate_per_s":5,"burst":10} switch.pay="off" `,
			"channel.":         "channel.a.weight=3 channel.b.weight=1 ",
			"channel":          "channel.a.weight=3 channel.b.weight=1 ",
			"chan":             "channel.a.weight=3 channel.b.weight=1 ",
			"channel.a":        "channel.a.weight=3 ",
			"channel.a.weight": "channel.a.weight=3 ",
			"s":                `switch.pay="off" `,
			"risk.":            "",
			"*":                "",
		} {
			if got := keys(prefix); got != want {
				t.Errorf("List(%q) = %s, want %s", prefix, got, want)
			}
		}
		l, _ := c.List(t.Context(), "channel.a.")
		if len(l) != 1 || l[0].Actor != "x" || l[0].Version == 0 {
			t.Fatalf("entry: %+v", l)
		}
	})
}

type auditLog struct {
	mu      sync.Mutex
	changes []Change
	fail    error
}

func (a *auditLog) AuditConfigChange(_ context.Context, c Change) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.changes = append(a.changes, c)
	return nil
}

type observed struct {
	mu      sync.Mutex
	changed []uint64
	applied []uint64
}

func (o *observed) ConfigChanged(c Change) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.changed = append(o.changed, c.Version)
}

func (o *observed) ConfigApplied(key string, version uint64, latency time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if latency >= 0 {
		o.applied = append(o.applied, version)
	}
}

func TestAuditorAndObserver(t *testing.T) {
	audit, obs := &auditLog{}, &observed{}
	b := mustBus(t, bus.Options{DataDir: t.TempDir()})
	c := mustOpen(t, b, testBucket(t), Options{Auditor: audit, Observer: obs})
	got := make(chan uint64, 10)
	stop, err := c.Watch(t.Context(), "", func(key string, value json.RawMessage, version uint64) { got <- version })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ch := mustSet(t, c, "switch.pay", `"off"`, Meta{Actor: "ops", Reason: "bank outage"})
	if len(audit.changes) != 1 || !sameChange(audit.changes[0], ch) {
		t.Fatalf("audited %+v, want %+v", audit.changes, ch)
	}
	<-got
	audit.fail = errors.New("audit store down")
	ch2, err := c.Set(t.Context(), "switch.pay", []byte(`"on"`), Meta{})
	if !errors.Is(err, ErrAuditFailed) || ch2.Version == 0 {
		t.Fatalf("Set with a failing auditor: %+v %v", ch2, err)
	}
	if e, _ := c.Get(t.Context(), "switch.pay"); e.Version != ch2.Version {
		t.Fatalf("the change was not stored: %+v", e)
	}
	<-got
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if fmt.Sprint(obs.changed) != fmt.Sprint([]uint64{ch.Version, ch2.Version}) ||
		fmt.Sprint(obs.applied) != fmt.Sprint([]uint64{ch.Version, ch2.Version}) {
		t.Fatalf("observer: changed %v applied %v", obs.changed, obs.applied)
	}
}

func TestOpenUsesJetStreamBucket(t *testing.T) {
	b := mustBus(t, bus.Options{DataDir: t.TempDir()})
	name := testBucket(t)
	mustOpen(t, b, name, Options{})
	kv, err := b.JetStream().KeyValue(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != HistoryDefault {
		t.Fatalf("bucket keeps %d revisions per key, want %d", st.History(), HistoryDefault)
	}
	if st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.MaxBytes != DefaultBucketMaxBytes {
		t.Fatalf("bucket is not bounded to %d bytes", DefaultBucketMaxBytes)
	}
	// A second Open on the same bucket (another instance) works.
	if _, err := Open(t.Context(), b.JetStream(), Options{Bucket: name}); err != nil {
		t.Fatal(err)
	}
}
