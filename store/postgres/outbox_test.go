package postgres

import (
	"testing"

	"github.com/fincore/fincore/store/storetest"
)

func TestOutboxConformance(t *testing.T) { storetest.TestOutbox(t, Factory) }

// TestOutboxConformanceCopy runs the suite with every commit sent by COPY.
func TestOutboxConformanceCopy(t *testing.T) {
	defer func(old int) { smallCommitMax = old }(smallCommitMax)
	smallCommitMax = 0
	storetest.TestOutbox(t, Factory)
}
func TestRecordsConformance(t *testing.T) { storetest.TestRecords(t, Factory) }
