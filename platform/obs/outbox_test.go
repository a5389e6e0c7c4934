package obs_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/platform/outbox"
)

// scrapeRegistry reads m's /metrics handler directly and parses it.
func scrapeRegistry(t *testing.T, m *obs.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// countingPublisher accepts every event and counts them.
type countingPublisher struct {
	mu sync.Mutex
	n  int
}

func (p *countingPublisher) Publish(_ context.Context, _, _ string, _ []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	return nil
}

// TestOutboxLag: the outbox gauges report the committed, unpublished events, and fall to zero
// once a relay has published them.
func TestOutboxLag(t *testing.T) {
	e := newEnv(t)
	m := obs.New()
	if _, ok := scrapeRegistry(t, m)["fincore_outbox_unpublished"]; ok {
		t.Fatal("outbox gauge reported before WatchOutbox")
	}
	e.want(201, "POST", "/v1/accounts", `{"id":"a","currency":"USD"}`)
	e.want(201, "POST", "/v1/accounts", `{"id":"b","currency":"USD"}`)
	for i := 0; i < 5; i++ {
		e.want(201, "POST", "/v1/transfers", transferBody(fmt.Sprintf("t%d", i), 10))
	}
	p, ok := e.st.(outbox.Provider)
	if !ok {
		t.Fatalf("store %T has no outbox", e.st)
	}
	pub := &countingPublisher{}
	relay := outbox.NewRelay(p.Outbox(), pub, outbox.Config{PollInterval: 10 * time.Millisecond})
	m.WatchOutbox(relay.Lag)
	fams := scrapeRegistry(t, m)
	if got := value(t, fams, "fincore_outbox_unpublished"); got != 7 {
		t.Fatalf("unpublished = %v, want 7 (2 accounts, 5 transfers)", got)
	}
	if got := value(t, fams, "fincore_outbox_oldest_unpublished_age_seconds"); got < 0 {
		t.Fatalf("oldest age = %v", got)
	}
	relay.Start()
	defer relay.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for value(t, scrapeRegistry(t, m), "fincore_outbox_unpublished") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("outbox backlog did not drain")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := value(t, scrapeRegistry(t, m), "fincore_outbox_oldest_unpublished_age_seconds"); got != 0 {
		t.Fatalf("oldest age after drain = %v", got)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if pub.n != 7 {
		t.Fatalf("published %d events, want 7", pub.n)
	}
}
