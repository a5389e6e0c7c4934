package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fincore/fincore/platform/config"
)

// The config benchmark measures the time from a configuration change being set to it being
// applied by every watcher, across processes (issue F3: p99 <= 30 ms, aim <= 5 ms).
//
// The setter writes ConfigProbeKey with the wall-clock time (Unix nanoseconds) at which it
// called Set; each watcher, when the change reaches it, records now minus that time. The
// processes run on one machine, so their wall clocks are the same clock.

// ConfigProbeKey is the key the benchmark sets; it exists only in the benchmark's bucket.
const ConfigProbeKey = "bench.config.probe"

// RegisterConfigProbe declares ConfigProbeKey (an integer >= 0) in reg.
func RegisterConfigProbe(reg *config.Registry) error {
	return reg.Register(config.Spec{Pattern: ConfigProbeKey, Type: "int >= 0", Validate: config.Int(0, 1<<62),
		Doc: "The config benchmark's probe: the wall-clock time of its Set, in Unix nanoseconds."})
}

// ConfigWatchers is a set of watchers of ConfigProbeKey, each recording how long every change
// took to reach it.
type ConfigWatchers struct {
	want  int // changes each watcher waits for
	stops []func()

	mu      sync.Mutex
	latency []time.Duration
	seen    []int // changes seen, per watcher
	done    chan struct{}
	left    int // watchers that have not yet seen want changes
}

// WatchConfigProbe starts n watchers of ConfigProbeKey on c, each expecting want changes.
// Values set before they started are not counted.
func WatchConfigProbe(ctx context.Context, c *config.Center, n, want int) (*ConfigWatchers, error) {
	if n <= 0 || want <= 0 {
		return nil, fmt.Errorf("bench: config watchers: need n > 0 and want > 0, got %d and %d", n, want)
	}
	w := &ConfigWatchers{want: want, seen: make([]int, n), done: make(chan struct{}), left: n,
		latency: make([]time.Duration, 0, n*want)}
	// A value set before the watchers started (a previous run's) is not a measurement.
	start := time.Now().UnixNano()
	for i := range n {
		stop, err := c.Watch(ctx, ConfigProbeKey, func(key string, value json.RawMessage, version uint64) {
			now := time.Now()
			if key != ConfigProbeKey || value == nil {
				return
			}
			ns, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || ns < start {
				return
			}
			w.record(i, now.Sub(time.Unix(0, ns)))
		})
		if err != nil {
			w.Stop()
			return nil, err
		}
		w.stops = append(w.stops, stop)
	}
	return w, nil
}

func (w *ConfigWatchers) record(i int, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.latency = append(w.latency, d)
	w.seen[i]++
	if w.seen[i] == w.want {
		w.left--
		if w.left == 0 {
			close(w.done)
		}
	}
}

// Wait waits until every watcher has seen the changes it expects, or until ctx ends, and
// returns the latencies recorded and how many expected deliveries are missing.
func (w *ConfigWatchers) Wait(ctx context.Context) (latency []time.Duration, missing int) {
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		missing += max(w.want-s, 0)
	}
	return slices.Clone(w.latency), missing
}

// Stop ends the watchers.
func (w *ConfigWatchers) Stop() {
	for _, s := range w.stops {
		s()
	}
}

// SetConfigProbe sets ConfigProbeKey n times, one change every interval, each value the time
// of its Set.
func SetConfigProbe(ctx context.Context, c *config.Center, n int, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		now := time.Now()
		if _, err := c.Set(ctx, ConfigProbeKey, strconv.AppendInt(nil, now.UnixNano(), 10), config.Meta{Actor: "system:bench"}); err != nil {
			return fmt.Errorf("set %d of %d: %w", i+1, n, err)
		}
	}
	return nil
}

// ConfigResult is the benchmark's summary, printed as its final JSON line.
type ConfigResult struct {
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	Count     int     `json:"count"`   // deliveries measured (sets x watchers when none is missing)
	Missing   int     `json:"missing"` // deliveries that did not arrive in time
	Sets      int     `json:"sets"`
	Watchers  int     `json:"watchers"`
	Processes int     `json:"processes"`
	Bus       string  `json:"bus"` // "embedded" or "external"
}

// SummarizeConfig computes the percentiles of the latencies.
func SummarizeConfig(latency []time.Duration) ConfigResult {
	slices.Sort(latency)
	var r ConfigResult
	r.Count = len(latency)
	if len(latency) > 0 {
		r.P50Ms, r.P99Ms, r.MaxMs = ms(percentile(latency, 0.50)), ms(percentile(latency, 0.99)), ms(latency[len(latency)-1])
	}
	return r
}
