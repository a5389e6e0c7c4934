package sqlite

import (
	"testing"

	"github.com/fincore/fincore/store/storetest"
)

// BenchmarkBalancesAt1M: go test ./store/sqlite -run '^$' -bench BalancesAt1M -benchtime 2000x
func BenchmarkBalancesAt1M(b *testing.B) { storetest.BenchBalancesAt(b, Factory, 1_000_000) }
