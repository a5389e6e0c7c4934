package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fincore/fincore/platform/timer"
)

// TimerConfig describes a durable timer run: Timers pending timers are loaded, due one every
// 1/Rate seconds, then the timer service fires them at that rate for Duration.
type TimerConfig struct {
	Timers   int           // pending timers loaded before the run
	Rate     int           // fires per second to sustain
	Duration time.Duration // measured run: Rate × Duration timers fire, at most Timers
	// WindowMax and RefillBatchMax override the service's defaults when positive.
	WindowMax, RefillBatchMax int
	// Progress receives human-readable lines; nil discards them.
	Progress io.Writer
	// Logger is the service's logger (default: discard).
	Logger *slog.Logger
}

// TimerResult is the outcome of a timer run; it is printed as the final JSON line.
type TimerResult struct {
	Backend       string  `json:"backend"`
	Timers        int     `json:"timers"`
	Rate          int     `json:"rate"`
	DurationS     float64 `json:"duration_s"`
	LoadS         float64 `json:"load_s"`
	Fired         int     `json:"fired"`
	FiresPerS     float64 `json:"fires_per_s"`
	LatenessP50Ms float64 `json:"lateness_p50_ms"`
	LatenessP99Ms float64 `json:"lateness_p99_ms"`
	LatenessMaxMs float64 `json:"lateness_max_ms"`
	Early         int     `json:"early"` // fires before their time: must be 0
	WindowMax     int     `json:"window_max"`
	WindowTimers  int     `json:"window_timers"` // in memory once the window had filled
	// HeapBytes is the Go heap the service added over the loaded store (after GC), the larger
	// of two measurements: once the window had filled, and at the end of the run.
	HeapBytes           int64   `json:"heap_bytes"`
	BytesPerTimer       float64 `json:"bytes_per_timer"`        // HeapBytes / Timers
	BytesPerWindowTimer float64 `json:"bytes_per_window_timer"` // HeapBytes / WindowTimers
}

// Limits of a timer run.
const (
	timerRunTimersMax = 10_000_000
	timerRunRateMax   = 1_000_000
	timerLoadChunk    = 50_000
	// timerLead is how long after the service starts the first loaded timer comes due: time
	// to fill the window and measure the heap before the run.
	timerLead = 5 * time.Second
)

// BenchTimerHandler is the handler name of the timers RunTimers loads.
const BenchTimerHandler = "bench"

// benchTimerBase is the fire time of the first loaded timer; a shifted clock makes it come
// due timerLead after the service starts.
var benchTimerBase = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// shiftedClock is the system clock moved by a fixed offset.
type shiftedClock struct{ shift time.Duration }

func (c shiftedClock) Now() time.Time                         { return time.Now().Add(c.shift) }
func (c shiftedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// check validates c, fills its defaults and returns how many timers fire.
func (c *TimerConfig) check() (fires int, err error) {
	if c.Timers < 1 || c.Timers > timerRunTimersMax {
		return 0, fmt.Errorf("timers must be between 1 and %d", timerRunTimersMax)
	}
	if c.Rate < 1 || c.Rate > timerRunRateMax {
		return 0, fmt.Errorf("rate must be between 1 and %d per second", timerRunRateMax)
	}
	fires = int(int64(c.Rate) * int64(c.Duration) / int64(time.Second))
	if c.Duration < 0 || fires < 1 || fires > c.Timers {
		return 0, fmt.Errorf("rate × duration is %d fires; it must be between 1 and the %d timers loaded", fires, c.Timers)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return fires, nil
}

// BenchTimerID is the id of the i-th loaded timer.
func BenchTimerID(i int) string { return fmt.Sprintf("bench:%09d", i) }

// BenchTimerPayload is the payload of every loaded timer.
var BenchTimerPayload = []byte("0123456789abcdef")

// LoadTimers schedules n timers in st through Store.ScheduleMany, in transactions of up to
// 50,000: the i-th (BenchTimerID(i), handler BenchTimerHandler) due at base + i×gap.
func LoadTimers(ctx context.Context, st timer.Store, n int, base time.Time, gap time.Duration) error {
	chunk := make([]timer.Timer, 0, min(n, timerLoadChunk))
	for i := 0; i < n; {
		chunk = chunk[:0]
		for ; i < n && len(chunk) < timerLoadChunk; i++ {
			chunk = append(chunk, timer.Timer{ID: BenchTimerID(i), Handler: BenchTimerHandler,
				FireAt: base.Add(time.Duration(i) * gap), Payload: BenchTimerPayload})
		}
		if _, err := st.ScheduleMany(ctx, chunk); err != nil {
			return fmt.Errorf("load timers: %w", err)
		}
	}
	return nil
}

func heapBytes() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// RunTimers loads cfg.Timers pending timers into st (which should hold no other pending
// timers), runs a timer service over it with the default configuration (but for the
// overrides in cfg), and measures the heap the service takes per pending timer, the fire
// rate it sustains and how late each timer fires (handler start minus fire time).
func RunTimers(ctx context.Context, cfg TimerConfig, st timer.Store) (*TimerResult, error) {
	fires, err := cfg.check()
	if err != nil {
		return nil, err
	}
	gap := time.Second / time.Duration(cfg.Rate)
	fmt.Fprintf(cfg.Progress, "bench timers: loading %d pending timers, one due every %s\n", cfg.Timers, gap)
	t0 := time.Now()
	if err := LoadTimers(ctx, st, cfg.Timers, benchTimerBase, gap); err != nil {
		return nil, err
	}
	res := &TimerResult{Timers: cfg.Timers, Rate: cfg.Rate, LoadS: round3(time.Since(t0).Seconds())}
	fmt.Fprintf(cfg.Progress, "bench timers: loaded in %.1f s\n", res.LoadS)

	lateness := make([]time.Duration, fires)
	var fired, early atomic.Int64
	allFired := make(chan struct{})
	clock := shiftedClock{shift: benchTimerBase.Sub(time.Now()) - timerLead}
	before := heapBytes()
	svc, err := timer.New(timer.Config{Store: st, Clock: clock, Logger: cfg.Logger,
		WindowMax: cfg.WindowMax, RefillBatchMax: cfg.RefillBatchMax})
	if err != nil {
		return nil, err
	}
	svc.Register(BenchTimerHandler, func(_ context.Context, t timer.Timer) error {
		late := clock.Now().Sub(t.FireAt)
		if late < 0 {
			early.Add(1)
		}
		if i := fired.Add(1) - 1; i < int64(fires) {
			lateness[i] = late
			if i == int64(fires)-1 {
				close(allFired)
			}
		}
		return nil
	})
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	defer svc.Stop()

	// The window holds what is due within the lookahead, up to its bound; refills load whole
	// chunks, so a full window has less than two chunks free.
	res.WindowMax = svc.Stats().WindowMax
	want := min(res.WindowMax, cfg.Timers, int(timer.DefaultLookahead/gap))
	if want > 4*timer.DefaultRefillBatchMax {
		want -= 2 * timer.DefaultRefillBatchMax
	}
	for deadline := time.Now().Add(timerLead - 500*time.Millisecond); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if svc.Stats().InMemory >= want {
			break
		}
	}
	res.WindowTimers = svc.Stats().InMemory
	heapWindow := heapBytes() - before
	fmt.Fprintf(cfg.Progress, "bench timers: %d timers in the window (at most %d); heap +%.1f MB over the loaded store\n",
		res.WindowTimers, res.WindowMax, float64(heapWindow)/1e6)
	fmt.Fprintf(cfg.Progress, "bench timers: firing %d timers at %d/s for %s\n", fires, cfg.Rate, cfg.Duration)

	select {
	case <-allFired:
	case <-time.After(timerLead + cfg.Duration + time.Minute):
		return nil, fmt.Errorf("only %d of %d timers fired a minute after the last was due", fired.Load(), fires)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	elapsed := clock.Now().Sub(benchTimerBase)
	heapEnd := heapBytes() - before
	res.HeapBytes = max(heapWindow, heapEnd)
	res.Fired = fires
	res.DurationS = round3(elapsed.Seconds())
	res.FiresPerS = round3(float64(fires) / elapsed.Seconds())
	slices.Sort(lateness)
	res.LatenessP50Ms = ms(percentile(lateness, 0.50))
	res.LatenessP99Ms = ms(percentile(lateness, 0.99))
	res.LatenessMaxMs = ms(percentile(lateness, 1))
	res.Early = int(early.Load())
	res.BytesPerTimer = round3(float64(res.HeapBytes) / float64(cfg.Timers))
	res.BytesPerWindowTimer = round3(float64(res.HeapBytes) / float64(max(res.WindowTimers, 1)))
	fmt.Fprintf(cfg.Progress, "bench timers: %d fired in %.2f s: %.0f fires/s; lateness p50 %.3f ms, p99 %.3f ms, max %.3f ms; %d early\n",
		fires, res.DurationS, res.FiresPerS, res.LatenessP50Ms, res.LatenessP99Ms, res.LatenessMaxMs, res.Early)
	fmt.Fprintf(cfg.Progress, "bench timers: heap +%.1f MB (window full) / +%.1f MB (end): %.1f B per pending timer, %.0f B per window timer\n",
		float64(heapWindow)/1e6, float64(heapEnd)/1e6, res.BytesPerTimer, res.BytesPerWindowTimer)
	return res, nil
}
