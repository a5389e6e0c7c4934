package sqlite

import (
	"testing"

	"github.com/fincore/fincore/store/storetest"
	"github.com/fincore/fincore/store/storetest/apitest"
)

func TestIdemStore(t *testing.T) { storetest.TestIdemStore(t, Factory) }

func TestIdempotencyHTTP(t *testing.T) { apitest.TestIdempotencyHTTP(t, Factory) }
