package clock

import (
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFake(start)
	now := c.After(0)
	soon, later := c.After(time.Second), c.After(time.Minute)
	if got := <-now; !got.Equal(start) {
		t.Fatalf("After(0) = %v", got)
	}
	c.Advance(time.Second)
	select {
	case got := <-soon:
		if !got.Equal(start.Add(time.Second)) {
			t.Fatalf("fired at %v", got)
		}
	default:
		t.Fatal("waiter due at +1s did not fire")
	}
	select {
	case <-later:
		t.Fatal("waiter due at +1m fired early")
	default:
	}
	c.Advance(time.Minute)
	<-later
	if !c.Now().Equal(start.Add(61 * time.Second)) {
		t.Fatalf("Now = %v", c.Now())
	}
}
