package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fincore/fincore/store/postgres/pgtest"
)

// fencetestBin is fincore built with the fencetest tag (commitgate_fencetest.go), once, next
// to binPath (TestMain removes both).
var fencetestBin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(filepath.Dir(binPath), "fincore-fencetest")
	if out, err := exec.Command("go", "build", "-tags", "fencetest", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build fincore -tags fencetest: %v\n%s", err, out)
	}
	return bin, nil
})

// slowClient waits for answers from a process that the test pauses.
var slowClient = &http.Client{Timeout: 3 * time.Minute, Transport: bearerTransport{testAPIKey}}

// apiAnswer is a status and the error code of an answer.
type apiAnswer struct {
	status int
	code   string
	err    error
}

func post(c *http.Client, url string, body any) apiAnswer {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", url, bytes.NewReader(b))
	if err != nil {
		return apiAnswer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return apiAnswer{err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(raw, &env)
	return apiAnswer{status: resp.StatusCode, code: env.Error.Code}
}

// waitUntil polls cond every 25 ms until it holds or the deadline passes.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); time.Sleep(25 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting until %s", limit, what)
		}
	}
}

func ready(s *server) bool {
	st, _, err := doJSON("GET", s.url("/readyz"), nil)
	return err == nil && st == 200
}

// TestFencingPostgres is the lock issue's test: two fincore processes share PostgreSQL; the
// writer is paused (SIGSTOP) with a write on its way to storage and another queued behind it,
// past its lease; the standby takes over and writes; the paused one resumes (SIGCONT) and
// storage refuses its commit with the fencing error: neither write is stored, both callers get
// not_leader, and the journal verifies. Then the new writer dies and the old one takes over.
func TestFencingPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs separate processes")
	}
	url := pgtest.URL(t)
	bin, err := fencetestBin()
	if err != nil {
		t.Fatal(err)
	}
	const ttl = 5 * time.Second
	gate := t.TempDir()
	common := []string{"--postgres", url, "--lease-ttl", ttl.String()}

	a := &server{t: t, bin: bin, addr: freeAddr(t), env: append(os.Environ(), "FINCORE_TEST_COMMIT_GATE="+gate),
		args: append([]string{"--migrate", "--data", t.TempDir(), "--instance", "A"}, common...)}
	a.start()
	defer func() {
		a.cmd.Process.Signal(syscall.SIGCONT)
		if a.cmd.ProcessState == nil {
			a.kill()
		}
	}()
	waitUntil(t, time.Minute, "A is the writer", func() bool { return ready(a) })
	b := &server{t: t, bin: bin, addr: freeAddr(t), args: append([]string{"--data", t.TempDir(), "--instance", "B"}, common...)}
	b.start()
	defer func() {
		if b.cmd.ProcessState == nil {
			b.kill()
		}
	}()

	for _, id := range []string{"a", "b"} {
		if r := post(client, a.url("/v1/accounts"), map[string]any{"id": id, "currency": "CNY"}); r.status != 201 {
			t.Fatalf("create account %s on the writer: %+v", id, r)
		}
	}
	x := func(id string) wireXfer {
		return wireXfer{ID: id, Debit: "a", Credit: "b", Amount: 10, Currency: "CNY"}
	}
	if r := post(client, a.url("/v1/transfers"), x("t1")); r.status != 201 {
		t.Fatalf("t1 on the writer: %+v", r)
	}
	// B is a standby: it reads, refuses writes with not_leader, and is not ready.
	if r := post(client, b.url("/v1/transfers"), x("tb")); r.status != 503 || r.code != "not_leader" {
		t.Fatalf("write on the standby: %+v, want 503 not_leader", r)
	}
	if st, body, err := doJSON("GET", b.url("/v1/transfers/t1"), nil); err != nil || st != 200 {
		t.Fatalf("read on the standby: %d %s %v", st, body, err)
	}
	if ready(b) {
		t.Fatal("the standby says it is ready")
	}

	// A write reaches A's commit and stops just before storage; then A is paused.
	inflight := make(chan apiAnswer, 1)
	go func() { inflight <- post(slowClient, a.url("/v1/transfers"), x("gated-1")) }()
	waitUntil(t, time.Minute, "the gated write reaches A's commit", func() bool {
		_, err := os.Stat(filepath.Join(gate, "reached"))
		return err == nil
	})
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	// A second write waits for the paused process (the kernel accepts its connection).
	pending := make(chan apiAnswer, 1)
	go func() { pending <- post(slowClient, a.url("/v1/transfers"), x("pending-1")) }()

	// A stops renewing; once its lease has expired, B takes over.
	waitUntil(t, 2*time.Minute, "B takes over", func() bool { return ready(b) })
	t.Logf("B took over %s after A was paused (lease TTL %s)", time.Since(stopped).Round(time.Millisecond), ttl)
	if r := post(client, b.url("/v1/transfers"), x("t2")); r.status != 201 {
		t.Fatalf("t2 on the new writer: %+v", r)
	}

	// A resumes with its write already past every check it makes itself.
	if err := os.WriteFile(filepath.Join(gate, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]chan apiAnswer{"in-flight": inflight, "pending": pending} {
		select {
		case r := <-ch:
			if r.err != nil || r.status != 503 || r.code != "not_leader" {
				t.Fatalf("%s write on the resumed old writer: %+v, want 503 not_leader", name, r)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("the %s write on the resumed old writer got no answer", name)
		}
	}
	// Storage refused the in-flight commit: the fencing error, not a check of A's own.
	waitUntil(t, time.Minute, "A logs the fencing error", func() bool {
		return strings.Contains(a.logs.String(), "ledger writer fenced")
	})
	for _, id := range []string{"gated-1", "pending-1", "tb"} {
		for _, s := range []*server{a, b} {
			if st, body, err := doJSON("GET", s.url("/v1/transfers/"+id), nil); err != nil || st != 404 {
				t.Fatalf("refused write %s: GET on %s answered %d %s %v; want 404", id, s.addr, st, body, err)
			}
		}
	}
	// A is now a standby.
	waitUntil(t, time.Minute, "A reports it is not ready", func() bool { return !ready(a) })
	if r := post(client, a.url("/v1/transfers"), x("t-after")); r.status != 503 || r.code != "not_leader" {
		t.Fatalf("write on the deposed writer: %+v, want 503 not_leader", r)
	}
	if got := metricValue(t, b, `fincore_lock_takeovers_total{lock="ledger.writer"}`); got != 1 {
		t.Fatalf("B's takeovers = %v, want 1", got)
	}
	if got := metricValue(t, a, `fincore_lock_lost_total{lock="ledger.writer"}`); got != 1 {
		t.Fatalf("A's lost leases = %v, want 1", got)
	}

	// The new writer dies; the old one takes over once B's lease expires.
	b.kill()
	waitUntil(t, 2*time.Minute, "A takes over again", func() bool { return ready(a) })
	if r := post(client, a.url("/v1/transfers"), x("t3")); r.status != 201 {
		t.Fatalf("t3 on the writer again: %+v", r)
	}
	st, body, err := doJSON("GET", a.url("/v1/accounts/a"), nil)
	if err != nil || st != 200 {
		t.Fatalf("GET account: %d %s %v", st, body, err)
	}
	var acct struct {
		Balances struct {
			DebitsPosted int64 `json:"debits_posted"`
		} `json:"balances"`
	}
	if err := json.Unmarshal(body, &acct); err != nil || acct.Balances.DebitsPosted != 30 {
		t.Fatalf("account a after t1, t2 and t3: %s %v; want debits posted 30", body, err)
	}
	a.kill()
	out, err := exec.Command(binPath, "ledger", "verify", "--postgres", url).CombinedOutput()
	if err != nil {
		t.Fatalf("ledger verify failed: %v\n%s", err, out)
	}
}

// metricValue reads one sample from a server's /metrics, by its exposition name and labels.
func metricValue(t *testing.T, s *server, sample string) float64 {
	t.Helper()
	st, body, err := doJSON("GET", s.url("/metrics"), nil)
	if err != nil || st != 200 {
		t.Fatalf("GET /metrics: %d %v", st, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no sample %s in /metrics", sample)
	return 0
}
