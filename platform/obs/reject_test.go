package obs_test

import (
	"testing"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/platform/obs"
)

func TestRejectCounter(t *testing.T) {
	m := obs.New()
	count := m.RejectCounter(httpapi.RejectReasons)
	count(httpapi.RejectForbidden)
	count(httpapi.RejectForbidden)
	count(httpapi.RejectRateLimited)
	got := map[string]float64{}
	for _, mt := range scrapeRegistry(t, m)["fincore_http_rejected_total"].GetMetric() {
		got[mt.GetLabel()[0].GetValue()] = mt.GetCounter().GetValue()
	}
	want := map[string]float64{"unauthenticated": 0, "forbidden": 2, "rate_limited": 1, "degraded": 0}
	if len(got) != len(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
	for r, n := range want {
		if got[r] != n {
			t.Errorf("%s: %v, want %v", r, got[r], n)
		}
	}
}
