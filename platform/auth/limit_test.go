package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/clock"
)

const keyA, keyB = "fk_000000000000000a", "fk_000000000000000b"

func newTestLimiter(t *testing.T, def Limit) (*Limiter, *clock.Fake) {
	t.Helper()
	c := clock.NewFake(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC))
	l, err := NewLimiter(def, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

// take calls Allow n times and returns how many were allowed.
func take(l *Limiter, id string, n int) int {
	ok := 0
	for range n {
		if a, _ := l.Allow(id); a {
			ok++
		}
	}
	return ok
}

func TestLimiterBurstThenRate(t *testing.T) {
	l, c := newTestLimiter(t, Limit{RatePerS: 10, Burst: 5})
	if got := take(l, keyA, 20); got != 5 {
		t.Fatalf("a full bucket let %d through, want the burst of 5", got)
	}
	ok, wait := l.Allow(keyA)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("empty bucket: allowed %v, wait %v, want 100ms", ok, wait)
	}
	// Another key has its own bucket.
	if got := take(l, keyB, 5); got != 5 {
		t.Fatalf("key B got %d", got)
	}
	c.Advance(250 * time.Millisecond) // 2.5 tokens
	if got := take(l, keyA, 10); got != 2 {
		t.Fatalf("after 250ms at 10/s: %d allowed, want 2", got)
	}
	ok, wait = l.Allow(keyA)
	if ok || wait != 50*time.Millisecond {
		t.Fatalf("half a token left: allowed %v wait %v, want 50ms", ok, wait)
	}
	c.Advance(time.Hour) // refills to the burst, no more
	if got := take(l, keyA, 100); got != 5 {
		t.Fatalf("after an hour: %d allowed, want 5", got)
	}
}

func TestLimiterSustainedRate(t *testing.T) {
	l, c := newTestLimiter(t, Limit{RatePerS: 100, Burst: 1})
	allowed := 0
	for range 10_000 { // 10 s in steps of 1 ms, one attempt each
		if ok, _ := l.Allow(keyA); ok {
			allowed++
		}
		c.Advance(time.Millisecond)
	}
	if allowed < 999 || allowed > 1001 {
		t.Fatalf("%d allowed in 10 s at 100/s", allowed)
	}
}

func TestLimiterPerKeyAndDefaultChanges(t *testing.T) {
	l, c := newTestLimiter(t, Limit{}) // no limit
	if got := take(l, keyA, 1000); got != 1000 {
		t.Fatalf("unlimited let %d through", got)
	}
	if err := l.SetKey(keyA, Limit{RatePerS: 1, Burst: 3}); err != nil {
		t.Fatal(err)
	}
	if got := take(l, keyA, 10); got != 3 {
		t.Fatalf("per-key limit let %d through", got)
	}
	if got := take(l, keyB, 10); got != 10 {
		t.Fatalf("key B (default, unlimited) got %d", got)
	}
	// Lowering the burst caps what a bucket holds.
	c.Advance(time.Hour)
	if err := l.SetKey(keyA, Limit{RatePerS: 1, Burst: 1}); err != nil {
		t.Fatal(err)
	}
	if got := take(l, keyA, 10); got != 1 {
		t.Fatalf("lowered burst let %d through", got)
	}
	l.DeleteKey(keyA)
	if got := take(l, keyA, 10); got != 10 {
		t.Fatalf("back on the unlimited default: %d", got)
	}
	if err := l.SetDefault(Limit{RatePerS: 2, Burst: 2}); err != nil {
		t.Fatal(err)
	}
	if got := take(l, keyB, 10); got != 2 {
		t.Fatalf("new default let %d through", got)
	}
	def, per := l.Limits()
	if def != (Limit{RatePerS: 2, Burst: 2}) || len(per) != 0 {
		t.Fatalf("Limits() = %v %v", def, per)
	}
}

func TestLimiterRefusesBadSettings(t *testing.T) {
	l, _ := newTestLimiter(t, Limit{RatePerS: 1, Burst: 1})
	for _, bad := range []Limit{{RatePerS: -1, Burst: 1}, {RatePerS: 1, Burst: 0}, {RatePerS: 0, Burst: 5}, {RatePerS: 2e9, Burst: 1}, {RatePerS: 1, Burst: 2e9}} {
		if l.SetDefault(bad) == nil || l.SetKey(keyA, bad) == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	if l.SetKey("not-a-key", Limit{RatePerS: 1, Burst: 1}) == nil {
		t.Error("accepted a bad key id")
	}
	if def, _ := l.Limits(); def != (Limit{RatePerS: 1, Burst: 1}) {
		t.Errorf("a refused setting changed the default to %+v", def)
	}
}

func TestLimiterBucketsBounded(t *testing.T) {
	l, c := newTestLimiter(t, Limit{RatePerS: 1000, Burst: 1})
	for i := range bucketsMax {
		l.Allow(fmt.Sprintf("fk_%016x", i))
	}
	if n := len(l.buckets); n != bucketsMax {
		t.Fatalf("%d buckets, want %d", n, bucketsMax)
	}
	c.Advance(time.Second) // every bucket refills; the next new key's sweep drops them
	l.Allow("fk_ffffffffffffffff")
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after a sweep of full ones, want 1", n)
	}
	// With no full bucket to drop, memory stays bounded all the same.
	for i := range bucketsMax + 10 {
		l.Allow(fmt.Sprintf("fk_%016x", i))
	}
	if n := len(l.buckets); n > bucketsMax {
		t.Fatalf("%d buckets, max %d", n, bucketsMax)
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]Limit{
		"100:200": {100, 200},
		"100":     {100, 100},
		"0.5":     {0.5, 1},
		"0":       {},
		"2.5:3":   {2.5, 3},
	} {
		got, err := ParseLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "10:y", "-1", "10:0", "0:5", "NaN"} {
		if _, err := ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q) accepted", bad)
		}
	}
}
