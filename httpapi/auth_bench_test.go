package httpapi

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/store/sqlite"
)

// BenchmarkGuard measures what the authentication layer adds to a request: the same cheap
// route served with authentication off, and on (key look-up from the cache, SHA-256, scope,
// token bucket, switch) with the key's limit high enough never to refuse.
func BenchmarkGuard(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			s := newFuzzServer(b)
			token := ""
			if on {
				db, err := sqlite.Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { db.Close() })
				keys := auth.NewService(db.Auth(), auth.Config{})
				limits, _ := auth.NewLimiter(auth.Limit{RatePerS: 1e6, Burst: 1e6}, nil)
				s.UseAuth(Guard{Keys: keys, Limits: limits, Switches: auth.NewSwitches(), Rejected: func(string) {}})
				_, token, err = keys.CreateKey(context.Background(), auth.Origin{Actor: "bench"}, auth.KeySpec{Name: "b", Scopes: []string{"ledger:read"}})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/v1/accounts/nope", nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != 404 {
					b.Fatal(rec.Code, rec.Body)
				}
			}
		})
	}
}
