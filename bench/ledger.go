// Package bench holds fincore's load generators. Each scenario drives a real engine (in
// process or over HTTP) and reports throughput and latency percentiles.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fincore/fincore/ledger"
)

// LedgerConfig describes a ledger load run.
type LedgerConfig struct {
	Scenario string        // "uniform" or "hot"
	Batch    int           // transfers per request
	Clients  int           // concurrent clients
	Duration time.Duration // measured run time
	Accounts int           // accounts to spread over (default 100,000)
	HotCount int           // hot accounts in the hot scenario (default 10)
	Currency string        // default CNY
}

// LedgerResult is the outcome of a run; it is printed as the final JSON line.
type LedgerResult struct {
	Scenario      string  `json:"scenario"`
	Transport     string  `json:"transport"`
	Backend       string  `json:"backend"`
	Batch         int     `json:"batch"`
	Clients       int     `json:"clients"`
	Accounts      int     `json:"accounts"`
	DurationS     float64 `json:"duration_s"`
	Transfers     int64   `json:"transfers"`
	Failed        int64   `json:"failed"`
	TransfersPerS float64 `json:"transfers_per_s"`
	RequestsPerS  float64 `json:"requests_per_s"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	Groups        int64   `json:"groups,omitempty"`
	AvgGroup      float64 `json:"avg_group,omitempty"`
	AvgCommitMs   float64 `json:"avg_commit_ms,omitempty"`
}

// Submitter sends one request of transfers and reports how many failed.
type Submitter interface {
	Submit(ctx context.Context, ins []ledger.TransferInput) (failed int, err error)
}

func (c *LedgerConfig) defaults() error {
	if c.Scenario == "" {
		c.Scenario = "uniform"
	}
	if c.Scenario != "uniform" && c.Scenario != "hot" {
		return fmt.Errorf("scenario must be uniform or hot, not %q", c.Scenario)
	}
	if c.Batch <= 0 || c.Batch > ledger.BatchMax {
		return fmt.Errorf("batch must be between 1 and %d", ledger.BatchMax)
	}
	if c.Clients <= 0 || c.Clients > 10000 {
		return fmt.Errorf("clients must be between 1 and 10000")
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Accounts <= 0 {
		c.Accounts = 100_000
	}
	if c.HotCount <= 0 {
		c.HotCount = 10
	}
	if c.Currency == "" {
		c.Currency = "CNY"
	}
	if c.Accounts < 2*c.HotCount {
		return fmt.Errorf("need at least %d accounts", 2*c.HotCount)
	}
	return nil
}

// AccountID names bench account i.
func AccountID(i int) string { return fmt.Sprintf("bench-%06d", i) }

// SetupAccounts creates the bench accounts (idempotently, so a data directory can be reused).
func SetupAccounts(ctx context.Context, eng *ledger.Engine, n int, currency string) error {
	const chunk = 8190
	for start := 0; start < n; start += chunk {
		ins := make([]ledger.AccountInput, 0, chunk)
		for i := start; i < min(n, start+chunk); i++ {
			ins = append(ins, ledger.AccountInput{ID: AccountID(i), Currency: currency, Code: "bench"})
		}
		res, err := eng.CreateAccounts(ctx, ins)
		if err != nil {
			return fmt.Errorf("create bench accounts: %w", err)
		}
		for _, r := range res {
			if r.Err != nil {
				return fmt.Errorf("create bench account: %w", r.Err)
			}
		}
	}
	return nil
}

// RunLedger drives sub with the configured load and measures it.
func RunLedger(ctx context.Context, cfg LedgerConfig, sub Submitter) (*LedgerResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	run := fmt.Sprintf("%x", rand.Uint64()&0xffffffff)
	var transfers, failed, requests atomic.Int64
	lat := make([][]time.Duration, cfg.Clients)
	var firstErr error
	var errOnce sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(cfg.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < cfg.Clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
			ins := make([]ledger.TransferInput, cfg.Batch)
			for seq := 0; time.Now().Before(deadline); seq++ {
				for i := range ins {
					dr, cr := pick(rng, &cfg)
					ins[i] = ledger.TransferInput{
						ID:             fmt.Sprintf("b%s-%d-%d-%d", run, c, seq, i),
						DebitAccountID: AccountID(dr), CreditAccountID: AccountID(cr),
						Amount: 1 + rng.Int64N(10000), Currency: cfg.Currency,
					}
				}
				t0 := time.Now()
				n, err := sub.Submit(ctx, ins)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
				requests.Add(1)
				transfers.Add(int64(len(ins) - n))
				failed.Add(int64(n))
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return nil, firstErr
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res := &LedgerResult{
		Scenario: cfg.Scenario, Batch: cfg.Batch, Clients: cfg.Clients, Accounts: cfg.Accounts,
		DurationS: round3(elapsed.Seconds()), Transfers: transfers.Load(), Failed: failed.Load(),
		TransfersPerS: round3(float64(transfers.Load()) / elapsed.Seconds()),
		RequestsPerS:  round3(float64(requests.Load()) / elapsed.Seconds()),
		P50Ms:         ms(percentile(all, 0.50)), P99Ms: ms(percentile(all, 0.99)), MaxMs: ms(percentile(all, 1)),
	}
	return res, nil
}

// pick chooses a debit and a credit account. In the hot scenario 90% of credits go to the
// first HotCount accounts.
func pick(rng *rand.Rand, cfg *LedgerConfig) (int, int) {
	n := cfg.Accounts
	if cfg.Scenario == "hot" {
		dr := cfg.HotCount + rng.IntN(n-cfg.HotCount)
		if rng.IntN(10) < 9 {
			return dr, rng.IntN(cfg.HotCount)
		}
		cr := cfg.HotCount + rng.IntN(n-cfg.HotCount)
		for cr == dr {
			cr = cfg.HotCount + rng.IntN(n-cfg.HotCount)
		}
		return dr, cr
	}
	dr, cr := rng.IntN(n), rng.IntN(n)
	for cr == dr {
		cr = rng.IntN(n)
	}
	return dr, cr
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(p * float64(len(d)-1))
	return d[i]
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// EngineSubmitter submits straight to an in-process engine.
type EngineSubmitter struct{ Engine *ledger.Engine }

// Submit implements Submitter.
func (s EngineSubmitter) Submit(ctx context.Context, ins []ledger.TransferInput) (int, error) {
	res, err := s.Engine.CreateTransfers(ctx, ins, false)
	if err != nil {
		return 0, err
	}
	failed := 0
	for _, r := range res {
		if r.Err != nil {
			failed++
		}
	}
	return failed, nil
}

// HTTPSubmitter submits over the HTTP API: single transfers to /v1/transfers, larger
// requests to /v1/transfer_batches.
type HTTPSubmitter struct {
	BaseURL string
	Client  *http.Client
	// APIKey, if set, is sent as Authorization: Bearer.
	APIKey string
}

type wireTransfer struct {
	ID              string `json:"id"`
	DebitAccountID  string `json:"debit_account_id"`
	CreditAccountID string `json:"credit_account_id"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
}

// Submit implements Submitter.
func (s HTTPSubmitter) Submit(ctx context.Context, ins []ledger.TransferInput) (int, error) {
	wire := make([]wireTransfer, len(ins))
	for i, in := range ins {
		wire[i] = wireTransfer{in.ID, in.DebitAccountID, in.CreditAccountID, in.Amount, in.Currency}
	}
	var body any = wire[0]
	path := "/v1/transfers"
	if len(ins) > 1 {
		body = map[string]any{"transfers": wire, "atomic": false}
		path = "/v1/transfer_batches"
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.APIKey)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if len(ins) == 1 {
		io.Copy(io.Discard, resp.Body)
		switch {
		case resp.StatusCode == 200 || resp.StatusCode == 201:
			return 0, nil
		case resp.StatusCode >= 500:
			return 0, fmt.Errorf("POST %s: HTTP %d", path, resp.StatusCode)
		default:
			return 1, nil
		}
	}
	if resp.StatusCode != 200 && resp.StatusCode != 201 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("POST %s: HTTP %d: %s", path, resp.StatusCode, msg)
	}
	var out struct {
		Data []struct {
			Status int `json:"status"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("decode batch response: %w", err)
	}
	failed := 0
	for _, d := range out.Data {
		if d.Status >= 300 {
			failed++
		}
	}
	return failed, nil
}
