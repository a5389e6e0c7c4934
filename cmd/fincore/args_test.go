package main

import "testing"

// TestStrayArguments: no subcommand takes positional arguments; a stray one (a mistyped flag,
// a path without --data) is refused instead of silently ignored.
func TestStrayArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"migrate", "--data", dir, "extra"}, 1},
		{[]string{"ledger", "verify", "--data", dir, "extra"}, 2},
		{[]string{"bench", "ledger", "--duration", "1ms", "extra"}, 1},
		{[]string{"credit", "schedule", "--principal", "100", "--periods", "1", "--method", "flat_fee", "--fee-rate", "0", "--start", "2026-01-01", "extra"}, 1},
		{[]string{"serve", "--data", dir, "extra"}, 1},
		{[]string{"migrate", "--data", dir}, 0},
	} {
		if got := run(tc.args); got != tc.code {
			t.Errorf("fincore %v exited %d, want %d", tc.args, got, tc.code)
		}
	}
}
