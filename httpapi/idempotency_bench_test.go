package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/idem"
	"github.com/fincore/fincore/store/sqlite"
)

// BenchmarkIdempotencyKey measures POST /v1/transfers through Server.ServeHTTP on SQLite,
// from 32 concurrent clients, without and with an Idempotency-Key (which adds a claim and a
// completion, two small writes on the ledger's write connection). BENCHMARKS.md records it.
func BenchmarkIdempotencyKey(b *testing.B) {
	for _, withKey := range []bool{false, true} {
		name := "none"
		if withKey {
			name = "key"
		}
		b.Run(name, func(b *testing.B) {
			st, err := sqlite.OpenLedger(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			log := slog.New(slog.DiscardHandler)
			eng, err := ledger.Open(context.Background(), st, ledger.Config{Logger: log, ExpiryInterval: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { eng.Close(); st.Close() }()
			s := NewServer(eng, Options{Logger: log, Idempotency: idem.New(st.(idem.Provider).Idempotency(), idem.Config{Logger: log})})
			for _, id := range []string{"a", "b"} {
				if rec := serveRecorder(s, "/v1/accounts", []byte(`{"id":"`+id+`","currency":"USD"}`)); rec.Code != 201 {
					b.Fatal(rec.Code, rec.Body)
				}
			}
			var n atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					body := fmt.Sprintf(`{"id":"t_%d","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD"}`, i)
					req := httptest.NewRequest("POST", "/v1/transfers", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					if withKey {
						req.Header.Set(IdempotencyKeyHeader, fmt.Sprint("key-", i))
					}
					rec := httptest.NewRecorder()
					s.ServeHTTP(rec, req)
					if rec.Code != 201 {
						b.Fatal(rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
