package credit

import (
	"reflect"
	"testing"

	"github.com/fincore/fincore/money"
)

func TestBuckets(t *testing.T) {
	for dpd, want := range map[int]Bucket{
		-3: BucketCurrent, 0: BucketCurrent, 1: BucketM1, 30: BucketM1, 31: BucketM2, 60: BucketM2,
		61: BucketM3, 90: BucketM3, 91: BucketM3Plus, 400: BucketM3Plus,
	} {
		if got := BucketOf(dpd); got != want {
			t.Errorf("BucketOf(%d) = %s, want %s", dpd, got, want)
		}
	}
}

func TestDaysPastDue(t *testing.T) {
	items := threeMonths() // due 01-10, 02-10, 03-10
	for _, tc := range []struct {
		asOf string
		dpd  int
	}{
		{"2026-01-09", 0}, {"2026-01-10", 0}, {"2026-01-11", 1}, {"2026-02-09", 30}, {"2026-02-10", 31}, {"2026-04-11", 91},
	} {
		if got := DaysPastDue(items, MustDate(tc.asOf)); got != tc.dpd {
			t.Errorf("DaysPastDue on %s = %d, want %d", tc.asOf, got, tc.dpd)
		}
	}
	// Once period 1 is paid (penalty included), the age runs from period 2.
	items[0] = Item{Period: 1, DueDate: items[0].DueDate}
	if got := DaysPastDue(items, MustDate("2026-02-15")); got != 5 {
		t.Errorf("DaysPastDue after paying period 1 = %d, want 5", got)
	}
	// A penalty still unpaid keeps the installment past due.
	items[0].Penalty = 1
	if got := DaysPastDue(items, MustDate("2026-02-15")); got != 36 {
		t.Errorf("DaysPastDue with an unpaid penalty = %d, want 36", got)
	}
}

func TestDailyPenalties(t *testing.T) {
	rate := money.MustRate("0.0005") // 0.05 % a day
	items := []Item{
		// 1,000.00 due: 100,000 × 0.0005 = 50 a day. The existing penalty is not charged on.
		{Period: 1, DueDate: MustDate("2026-01-10"), Penalty: 999, Fee: 1_000, Interest: 2_000, Principal: 97_000},
		// 10.00: 1,000 × 0.0005 = 0.5 -> 1 (half up).
		{Period: 2, DueDate: MustDate("2026-01-12"), Principal: 1_000},
		// 9.99: 0.4995 -> 0: no split.
		{Period: 3, DueDate: MustDate("2026-01-12"), Principal: 999},
		// Not yet due.
		{Period: 4, DueDate: MustDate("2026-01-20"), Principal: 100_000},
	}
	got := DailyPenalties(items, MustDate("2026-01-15"), rate, 0)
	want := []Split{{1, ComponentPenalty, 50}, {2, ComponentPenalty, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DailyPenalties = %+v, want %+v", got, want)
	}
	// Grace of 3 days: period 1 (5 days past due) accrues; period 2 (3 days) does not yet.
	got = DailyPenalties(items, MustDate("2026-01-15"), rate, 3)
	if want := []Split{{1, ComponentPenalty, 50}}; !reflect.DeepEqual(got, want) {
		t.Errorf("with grace: %+v, want %+v", got, want)
	}
	if got := DailyPenalties(items, MustDate("2026-01-16"), rate, 3); len(got) != 2 {
		t.Errorf("the day after grace: %+v", got)
	}
	// The due date itself is not past due.
	if got := DailyPenalties(items[:1], MustDate("2026-01-10"), rate, 0); len(got) != 0 {
		t.Errorf("on the due date: %+v", got)
	}
}
