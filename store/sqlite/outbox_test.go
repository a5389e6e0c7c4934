package sqlite

import (
	"testing"

	"github.com/fincore/fincore/store/storetest"
)

func TestOutboxConformance(t *testing.T)  { storetest.TestOutbox(t, Factory) }
func TestRecordsConformance(t *testing.T) { storetest.TestRecords(t, Factory) }
