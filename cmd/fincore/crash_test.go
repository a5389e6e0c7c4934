package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fincore/fincore/store/postgres/pgtest"
)

// binPath is the fincore binary built once for the tests that run it as a separate process.
var binPath string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "fincore-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binPath = filepath.Join(dir, "fincore")
		// Every server the tests start takes this admin key, and client sends it.
		os.Setenv(envAPIKey, testAPIKey)
		// And this card key (PostgreSQL mode needs one; embedded mode would make a key file).
		os.Setenv("FINCORE_CARD_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build fincore: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a fincore process under test.
type server struct {
	t    testing.TB
	args []string
	addr string
	cmd  *exec.Cmd
	logs *lockedBuffer
	env  []string // the process environment; nil: this one's
	bin  string   // the binary; "": binPath
}

func startServer(t testing.TB, storeArgs ...string) *server {
	s := &server{t: t, args: storeArgs, addr: freeAddr(t)}
	s.start()
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.logs = &lockedBuffer{}
	args := append([]string{"serve", "--addr", s.addr, "--log-level", "warn"}, s.args...)
	bin := binPath
	if s.bin != "" {
		bin = s.bin
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = s.env
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			s.t.Fatalf("server did not become healthy: %v\n%s", err, s.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown code runs.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

var client = &http.Client{Timeout: 10 * time.Second, Transport: bearerTransport{testAPIKey}}

func doJSON(method, url string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type wireXfer struct {
	ID       string `json:"id"`
	Debit    string `json:"debit_account_id"`
	Credit   string `json:"credit_account_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// unit is what one request tried to apply: one transfer, or an atomic batch.
type unit struct {
	xfers []wireXfer
	acked bool // the server answered 200/201
}

func TestCrashSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs separate processes")
	}
	dir := t.TempDir()
	crashTest(t, []string{"--data", dir}, []string{"--data", dir})
}

func TestCrashPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs separate processes")
	}
	url := pgtest.URL(t)
	crashTest(t, []string{"--postgres", url, "--migrate", "--data", t.TempDir()}, []string{"--postgres", url})
}

// crashTest loads a server from this process, kills it with SIGKILL mid-load several times,
// restarts it, and checks that every acknowledged transfer is present exactly once, that
// unacknowledged ones are all-or-nothing, that balances equal the sum of transfers, and that
// `fincore ledger verify` passes.
func crashTest(t *testing.T, serveArgs, verifyArgs []string) {
	const accounts, workers, cycles = 12, 8, 4
	srv := startServer(t, serveArgs...)
	defer func() {
		if srv.cmd.ProcessState == nil {
			srv.kill()
		}
	}()
	for i := 0; i < accounts; i++ {
		st, body, err := doJSON("POST", srv.url("/v1/accounts"), map[string]any{"id": fmt.Sprintf("acct-%d", i), "currency": "CNY"})
		if err != nil || (st != 201 && st != 200) {
			t.Fatalf("create account: %d %s %v", st, body, err)
		}
	}
	var (
		mu    sync.Mutex
		units []*unit
	)
	for cycle := 0; cycle < cycles; cycle++ {
		if cycle > 0 {
			srv.start()
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(cycle), uint64(w)))
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					u := &unit{}
					size := 1
					if n%3 == 2 {
						size = 1 + rng.IntN(5)
					}
					for k := 0; k < size; k++ {
						d := rng.IntN(accounts)
						c := (d + 1 + rng.IntN(accounts-1)) % accounts
						u.xfers = append(u.xfers, wireXfer{
							ID: fmt.Sprintf("c%d-w%d-n%d-k%d", cycle, w, n, k), Debit: fmt.Sprintf("acct-%d", d),
							Credit: fmt.Sprintf("acct-%d", c), Amount: 1 + rng.Int64N(1000), Currency: "CNY",
						})
					}
					var st int
					var err error
					if size == 1 && n%3 != 2 {
						st, _, err = doJSON("POST", srv.url("/v1/transfers"), u.xfers[0])
					} else {
						st, _, err = doJSON("POST", srv.url("/v1/transfer_batches"), map[string]any{"transfers": u.xfers, "atomic": true})
					}
					u.acked = err == nil && (st == 200 || st == 201)
					mu.Lock()
					units = append(units, u)
					mu.Unlock()
					if err != nil {
						return // the server is gone
					}
					if !u.acked {
						t.Errorf("transfer refused with HTTP %d", st)
						return
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(300+rand.IntN(500)) * time.Millisecond)
		srv.kill()
		close(stop)
		wg.Wait()
	}

	// Check after one more restart.
	srv.start()
	acked, present := 0, 0
	want := map[string][2]int64{} // account -> debits, credits
	for _, u := range units {
		found := 0
		for _, x := range u.xfers {
			st, body, err := doJSON("GET", srv.url("/v1/transfers/"+x.ID), nil)
			if err != nil {
				t.Fatal(err)
			}
			switch st {
			case 200:
				var got wireXfer
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				if got != x {
					t.Fatalf("transfer %s stored as %+v, sent %+v", x.ID, got, x)
				}
				found++
			case 404:
			default:
				t.Fatalf("GET transfer %s: HTTP %d %s", x.ID, st, body)
			}
		}
		if u.acked {
			acked++
		}
		switch {
		case u.acked && found != len(u.xfers):
			t.Fatalf("acknowledged request lost: %d of %d transfers present (%s)", found, len(u.xfers), u.xfers[0].ID)
		case found != 0 && found != len(u.xfers):
			t.Fatalf("unacknowledged atomic batch half applied: %d of %d (%s)", found, len(u.xfers), u.xfers[0].ID)
		}
		if found > 0 {
			present++
			for _, x := range u.xfers {
				d, c := want[x.Debit], want[x.Credit]
				d[0] += x.Amount
				c[1] += x.Amount
				want[x.Debit], want[x.Credit] = d, c
			}
		}
	}
	if acked == 0 {
		t.Fatal("no request was acknowledged: the test measured nothing")
	}
	// Exactly once: each account's history holds exactly the transfers we know of.
	for i := 0; i < accounts; i++ {
		id := fmt.Sprintf("acct-%d", i)
		st, body, err := doJSON("GET", srv.url("/v1/accounts/"+id), nil)
		if err != nil || st != 200 {
			t.Fatalf("GET account: %d %v", st, err)
		}
		var a struct {
			Balances struct {
				DebitsPosted  int64 `json:"debits_posted"`
				CreditsPosted int64 `json:"credits_posted"`
			} `json:"balances"`
		}
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
		if a.Balances.DebitsPosted != want[id][0] || a.Balances.CreditsPosted != want[id][1] {
			t.Fatalf("account %s: balances %+v, transfers sum to %v", id, a.Balances, want[id])
		}
		seen := map[string]bool{}
		after := ""
		for {
			u := srv.url("/v1/accounts/" + id + "/transfers?limit=1000")
			if after != "" {
				u += "&starting_after=" + after
			}
			st, body, err := doJSON("GET", u, nil)
			if err != nil || st != 200 {
				t.Fatalf("list transfers: %d %s %v", st, body, err)
			}
			var page struct {
				Data    []wireXfer `json:"data"`
				HasMore bool       `json:"has_more"`
			}
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			for _, x := range page.Data {
				if seen[x.ID] {
					t.Fatalf("transfer %s listed twice", x.ID)
				}
				seen[x.ID] = true
			}
			if !page.HasMore {
				break
			}
			after = page.Data[len(page.Data)-1].ID
		}
	}
	srv.kill()
	out, err := exec.Command(binPath, append([]string{"ledger", "verify"}, verifyArgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ledger verify failed: %v\n%s", err, out)
	}
	t.Logf("%d requests (%d acknowledged, %d applied) over %d kills; ledger verify OK", len(units), acked, present, cycles)
}
