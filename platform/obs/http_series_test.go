package obs_test

import (
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fincore/fincore/platform/obs"
)

// TestObserveHTTPConcurrent checks the resolved-once HTTP series: requests observed from
// many goroutines at once, for combinations of method, route and status that appear while
// others are being counted, all land in the right series.
func TestObserveHTTPConcurrent(t *testing.T) {
	m := obs.New()
	type key struct {
		method, route string
		status        int
	}
	keys := []key{{"POST", "POST /v1/risk/decisions", 200}, {"POST", "POST /v1/risk/decisions", 400},
		{"GET", "GET /v1/accounts/{id}", 404}, {"BREW", "unmatched", 404}}
	const goroutines, per = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				k := keys[(g+i)%len(keys)]
				m.ObserveHTTP(k.method, k.route, k.status, time.Millisecond)
			}
		})
	}
	wg.Wait()
	want := map[key]float64{}
	for g := range goroutines {
		for i := range per {
			want[keys[(g+i)%len(keys)]]++
		}
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range want {
		method := k.method
		if method == "BREW" {
			method = "OTHER"
		}
		if v := value(t, fams, "fincore_http_requests_total", "method="+method, "route="+k.route, "status="+strconv.Itoa(k.status)); v != n {
			t.Errorf("%v: %v requests, want %v", k, v, n)
		}
	}
	if c := histogram(t, fams, "fincore_http_request_duration_seconds", "method=POST", "route=POST /v1/risk/decisions").GetSampleCount(); c != uint64(want[keys[0]]+want[keys[1]]) {
		t.Errorf("duration samples %d", c)
	}
}
