package postgres

import (
	"testing"

	"github.com/fincore/fincore/store/storetest"
)

func TestLedgerMachine(t *testing.T) { storetest.TestLedgerMachine(t, Factory) }
