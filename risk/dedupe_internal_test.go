package risk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestSeenWaitsForFirst: a repeat of an event id waits until the first request finishes (the
// channel it waits on is made only then), and one that comes after gets its answer at once.
func TestSeenWaitsForFirst(t *testing.T) {
	var d dedupe
	d.init(100, 1e18)
	e := &Engine{}
	s, first := d.claim("ev1", 7, 1)
	if !first {
		t.Fatal("first claim not first")
	}
	done := make(chan error)
	go func() {
		s2, first := d.claim("ev1", 7, 1)
		if first || s2 != s {
			done <- errors.New("second claim made a new entry")
			return
		}
		done <- e.wait(context.Background(), s2, 7)
	}()
	for {
		s.mu.Lock()
		waiting := s.wake != nil
		s.mu.Unlock()
		if waiting {
			break
		}
	}
	select {
	case err := <-done:
		t.Fatalf("repeat answered before the first finished: %v", err)
	default:
	}
	s.err = ErrOverloaded
	s.finish()
	if err := <-done; err != ErrOverloaded {
		t.Fatalf("repeat got %v, want the first request's error", err)
	}
	if err := e.wait(context.Background(), s, 8); err != ErrIDConflict {
		t.Fatalf("another body: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s3, _ := d.claim("ev2", 1, 1)
	if err := e.wait(ctx, s3, 1); err != context.Canceled {
		t.Fatalf("cancelled wait: %v", err)
	}
}

// TestPackDecision: values and hits come back as given from their shared allocation, an
// empty model list as nil, and writing one part does not touch the others.
func TestPackDecision(t *testing.T) {
	for _, tc := range []struct {
		fv, mv []float64
		hits   []int32
	}{
		{[]float64{1, 2, 3}, []float64{0.5}, []int32{0, 7, 199}},
		{[]float64{1}, nil, []int32{4}},
		{nil, nil, []int32{1, 2}},
		{[]float64{9, 8}, []float64{1, 2}, nil},
	} {
		fv, mv, hits := packDecision(tc.fv, tc.mv, tc.hits)
		if !slices.Equal(fv, tc.fv) || !slices.Equal(mv, tc.mv) || !slices.Equal(hits, tc.hits) || (mv == nil) != (len(tc.mv) == 0) {
			t.Fatalf("packDecision(%v, %v, %v) = %v, %v, %v", tc.fv, tc.mv, tc.hits, fv, mv, hits)
		}
		if len(fv) > 0 {
			fv = append(fv, -1) // capacity ends at the part's end: a new array
			fv[0] = -2
		}
		if !slices.Equal(mv, tc.mv) || !slices.Equal(hits, tc.hits) {
			t.Fatalf("appending to the features changed the rest: %v %v", mv, hits)
		}
	}
}

// TestDedupeBounds: past its bound a part forgets its oldest ids first (the ring grows, wraps
// and keeps its order), and expire forgets ids older than the window.
func TestDedupeBounds(t *testing.T) {
	var d dedupe
	d.init(16*100, 1000) // 101 per part
	n := 5000
	for i := range n {
		s, first := d.claim(fmt.Sprint("id", i), uint64(i), int64(i))
		if !first {
			t.Fatalf("id%d claimed twice", i)
		}
		s.finish()
	}
	kept := 0
	for i := range n {
		s, first := d.claim(fmt.Sprint("id", i), uint64(i), int64(i))
		if first {
			d.forget(fmt.Sprint("id", i))
			if i >= n-16*50 {
				t.Fatalf("id%d, among the newest, forgotten", i)
			}
			continue
		}
		if s.body != uint64(i) || s.ts != int64(i) {
			t.Fatalf("id%d: body %d ts %d", i, s.body, s.ts)
		}
		kept++
	}
	if kept > 16*101 {
		t.Fatalf("%d ids kept, bound %d", kept, 16*101)
	}
	d.expire(int64(n) + 500) // forgets ts < n-500
	for i := n - 1000; i < n; i++ {
		_, first := d.claim(fmt.Sprint("id", i), 0, 0)
		if first != (i < n-500) {
			t.Fatalf("id%d after expire: claimed anew %v", i, first)
		}
		if first {
			d.forget(fmt.Sprint("id", i))
		}
	}
}
