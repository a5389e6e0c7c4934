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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/payment"
)

// TestReconEndToEnd reconciles a real `fincore bank-sim` process's statement file against a
// real fincore server through `fincore recon`: the honest file matches, and importing it again
// changes nothing; a tampered file (an extra line, an altered amount, a removed line) gives
// exactly those three discrepancies; resolving them moves the ledger by exactly the
// adjustments; bad input gets a clear error and changes nothing.
func TestReconEndToEnd(t *testing.T) {
	// The statement is of one business day (UTC): do not straddle midnight.
	if left := time.Until(time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)); left < 2*time.Minute {
		time.Sleep(left + time.Second)
	}
	bankAddr := freeAddr(t)
	bankCmd := exec.Command(binPath, "bank-sim", "--addr", bankAddr, "--name", "R", "--median", "2ms", "--p99", "10ms",
		"--decline", "0.25", "--insufficient", "0", "--system-error", "0", "--drop", "0", "--lost-answer", "0", "--async", "0", "--seed", "3")
	if err := bankCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { bankCmd.Process.Kill(); bankCmd.Wait() }()
	bankURL := "http://" + bankAddr
	waitListening(t, bankURL)
	srv := startServer(t, "--data", t.TempDir(), "--no-sim-banks", "--bank-sim", "recon-a="+bankURL, "--recon-fetch-after", "1s")
	defer srv.kill()

	post := func(path string, body any) map[string]any {
		t.Helper()
		st, b, err := doJSON("POST", srv.url(path), body)
		if err != nil || st >= 300 {
			t.Fatalf("POST %s: %d %s %v", path, st, b, err)
		}
		var out map[string]any
		json.Unmarshal(b, &out)
		return out
	}
	status := func(path string) string {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			_, b, _ := doJSON("GET", srv.url(path), nil)
			var v struct{ Status string }
			json.Unmarshal(b, &v)
			if v.Status != "processing" && v.Status != "" {
				return v.Status
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still processing: %s", path, b)
			}
		}
	}
	post("/v1/merchants", map[string]any{"id": "shop", "name": "Shop", "currency": "CNY"})
	card := post("/v1/cards", map[string]any{"pan": "6222020200112233446", "holder": "Wang Wu", "expiry_month": 3, "expiry_year": 2036, "bank_code": "ICBC"})
	var succeeded []string
	amounts := map[string]int64{}
	for i := range 12 {
		id := fmt.Sprintf("rp%02d", i)
		amounts[id] = int64(1000 + 100*i)
		post("/v1/payments", map[string]any{"id": id, "merchant_id": "shop", "amount": amounts[id], "currency": "CNY", "card_id": card["id"]})
	}
	for i := range 12 {
		id := fmt.Sprintf("rp%02d", i)
		if status("/v1/payments/"+id) == "succeeded" {
			succeeded = append(succeeded, id)
		}
	}
	if len(succeeded) < 4 || len(succeeded) == 12 {
		t.Fatalf("%d of 12 payments succeeded; the test wants some of each", len(succeeded))
	}
	post("/v1/payments/"+succeeded[0]+"/refunds", map[string]any{"id": "rr1", "amount": 300})
	if s := status("/v1/refunds/rr1"); s != "succeeded" {
		t.Fatalf("refund %s", s)
	}
	day := time.Now().UTC().Format(time.DateOnly)

	// The bank's statement file.
	resp, err := http.Get(bankURL + "/v1/statements/" + day)
	if err != nil {
		t.Fatal(err)
	}
	honest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	recon := func(args ...string) (payment.Report, string, error) {
		t.Helper()
		cmd := exec.Command(binPath, append([]string{"recon"}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var r payment.Report
		if err == nil && slices.Contains(args, "--json") {
			if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
				t.Fatalf("recon %v: %v\n%s", args, jerr, out.String())
			}
		}
		return r, out.String() + errOut.String(), err
	}
	flags := []string{"--url", srv.url(""), "--channel", "recon-a", "--date", day, "--json"}
	mustRecon := func(args ...string) payment.Report {
		t.Helper()
		r, out, err := recon(append(args, flags...)...)
		if err != nil {
			t.Fatalf("recon %v: %v\n%s", args, err, out)
		}
		return r
	}

	lines := strings.Split(strings.TrimSpace(string(honest)), "\n")
	rep := mustRecon("import", write("honest.csv", honest))
	if rep.Revision != 1 || rep.Status != payment.ReportReconciled || len(rep.Discrepancies) != 0 || rep.Statement.Summary.Matched != len(lines)-1 {
		t.Fatalf("honest statement (%d lines): %+v", len(lines)-1, rep)
	}
	again := mustRecon("import", write("honest-again.csv", honest))
	if again.Revision != 1 || !again.Statement.ImportedAt.Equal(rep.Statement.ImportedAt) {
		t.Fatalf("re-import made revision %d", again.Revision)
	}

	// Tamper: alter the amount of one succeeded payment, remove another, add one the bank
	// never had.
	altered, removed := succeeded[1]+".1", succeeded[2]+".1"
	var tampered []string
	var at string
	for _, l := range lines {
		f := strings.Split(l, ",")
		switch f[1] {
		case removed:
			continue
		case altered:
			f[3] = fmt.Sprint(amounts[succeeded[1]] + 100)
		}
		at = f[6]
		tampered = append(tampered, strings.Join(f, ","))
	}
	tampered = append(tampered, "payment,ghost.1,RP999,777,CNY,succeeded,"+at)
	rep = mustRecon("import", write("tampered.csv", []byte(strings.Join(tampered, "\n")+"\n")))
	want := map[string]struct {
		typ   string
		delta int64
	}{
		"payment:" + altered: {payment.DiscrepancyAmount, 100},
		"payment:" + removed: {payment.DiscrepancyShort, -amounts[succeeded[2]]},
		"payment:ghost.1":    {payment.DiscrepancyLong, 777},
	}
	if rep.Revision != 2 || len(rep.Discrepancies) != len(want) || len(rep.History) != 1 {
		t.Fatalf("tampered statement: revision %d, %+v", rep.Revision, rep.Discrepancies)
	}
	for _, d := range rep.Discrepancies {
		if w := want[d.ID]; w.typ != d.Type || w.delta != d.Delta || d.Status != payment.DiscrepancyOpen {
			t.Errorf("discrepancy %+v, want %+v", d, w)
		}
	}
	// The human-readable view lists them.
	_, text, err := recon("show", "--url", srv.url(""), "--channel", "recon-a", "--date", day)
	if err != nil || !strings.Contains(text, "payment:ghost.1") || !strings.Contains(text, "short") || !strings.Contains(text, "revision 2") {
		t.Fatalf("recon show: %v\n%s", err, text)
	}

	// Resolve: every adjustment moves the balances by exactly its amount.
	clearing, merchant, suspense := payment.ClearingAccount("recon-a", "CNY"), payment.MerchantAccount("shop", "CNY"), payment.SuspenseAccount("CNY")
	net := func(id string) int64 {
		st, b, _ := doJSON("GET", srv.url("/v1/accounts/"+id), nil)
		if st == 404 {
			return 0
		}
		var a struct {
			Balances struct {
				DebitsPosted  int64 `json:"debits_posted"`
				CreditsPosted int64 `json:"credits_posted"`
			} `json:"balances"`
		}
		if err := json.Unmarshal(b, &a); err != nil || st != 200 {
			t.Fatalf("account %s: %d %s", id, st, b)
		}
		return a.Balances.DebitsPosted - a.Balances.CreditsPosted
	}
	resolve := func(id, action string, moves map[string]int64) {
		t.Helper()
		before := map[string]int64{clearing: net(clearing), merchant: net(merchant), suspense: net(suspense)}
		r := mustRecon("resolve", "--id", id, "--action", action, "--note", "statement checked with the bank")
		var d payment.Discrepancy
		for _, x := range r.Discrepancies {
			if x.ID == id {
				d = x
			}
		}
		if d.Status != payment.DiscrepancyResolved || len(d.Resolutions) != 1 || d.Resolutions[0].Actor == "" || d.Resolutions[0].Note != "statement checked with the bank" {
			t.Errorf("%s after resolve: %+v", id, d)
		}
		for acc, b := range before {
			if got := net(acc) - b; got != moves[acc] {
				t.Errorf("resolving %s by %s moved %s by %d, want %d", id, action, acc, got, moves[acc])
			}
		}
	}
	short := amounts[succeeded[2]]
	resolve("payment:"+removed, payment.ResolveAdjust, map[string]int64{clearing: -short, merchant: short})
	resolve("payment:ghost.1", payment.ResolveAdjust, map[string]int64{clearing: 777, suspense: -777})
	resolve("payment:"+altered, payment.ResolveAccept, nil)
	if _, out, err := recon(append([]string{"resolve", "--id", "payment:ghost.1", "--action", "accept", "--note", "again"}, flags...)...); err == nil || !strings.Contains(out, "recon_already_resolved") {
		t.Errorf("second resolution: %v %s", err, out)
	}
	rep = mustRecon("show")
	if rep.Status != payment.ReportReconciled || rep.Revision != 2 {
		t.Fatalf("after resolving: %s revision %d", rep.Status, rep.Revision)
	}

	// Bad input: a clear error, nothing changed.
	before := rep
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"malformed csv":   {[]string{"import", "--url", srv.url(""), "--channel", "recon-a", "--date", day, write("bad.csv", []byte(lines[0]+"\npayment,x.1,R1,12x,CNY,succeeded,"+at+"\n"))}, "recon_statement_invalid"},
		"wrong header":    {[]string{"import", "--url", srv.url(""), "--channel", "recon-a", "--date", day, write("bad2.csv", []byte("id,amount\nx,1\n"))}, "recon_statement_invalid"},
		"unknown channel": {[]string{"import", "--url", srv.url(""), "--channel", "nope", "--date", day, write("ok.csv", honest)}, "channel_not_found"},
		"bad date":        {[]string{"import", "--url", srv.url(""), "--channel", "recon-a", "--date", "2026-13-40", write("ok2.csv", honest)}, "not YYYY-MM-DD"},
	} {
		if _, out, err := recon(tc.args...); err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: %v %s, want %s", name, err, out, tc.want)
		}
	}
	for _, tc := range []struct {
		path, ct string
		status   int
		code     string
	}{
		{"/v1/recon/recon-a/2026-13-40", "text/csv", 400, "invalid_request"},
		{"/v1/recon/recon-a/" + day, "application/json", 415, "unsupported_media_type"},
		{"/v1/recon/recon-a/2999-01-01", "text/csv", 400, "invalid_request"},
	} {
		req, _ := http.NewRequest("POST", srv.url(tc.path), bytes.NewReader(honest))
		req.Header.Set("Content-Type", tc.ct)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), `"code":"`+tc.code+`"`) {
			t.Errorf("POST %s as %s: %d %s", tc.path, tc.ct, resp.StatusCode, b)
		}
	}
	after := mustRecon("show")
	if after.Revision != before.Revision || !after.Updated.Equal(before.Updated) {
		t.Errorf("bad input changed the report: revision %d→%d", before.Revision, after.Revision)
	}
	if st, b, _ := doJSON("GET", srv.url("/v1/recon/nope/"+day), nil); st != 404 || !strings.Contains(string(b), "channel_not_found") {
		t.Errorf("unknown channel's report: %d %s", st, b)
	}

	// Automatic reconciliation: the start scheduled the fetch of yesterday's statements,
	// past due, so the bank-sim's was fetched and reconciled by the scheduler; `recon fetch`
	// asks again and gets the same report; today's cannot be fetched before it ends.
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	yflags := []string{"--url", srv.url(""), "--channel", "recon-a", "--date", yesterday, "--json"}
	var auto payment.Report
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st, b, _ := doJSON("GET", srv.url("/v1/recon/recon-a/"+yesterday), nil); st == 200 {
			if err := json.Unmarshal(b, &auto); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("yesterday's statement of recon-a was not fetched")
		}
	}
	if auto.Statement.ImportedBy != payment.ReconFetchActor || auto.Status != payment.ReportReconciled {
		t.Fatalf("fetched report: by %q, %s", auto.Statement.ImportedBy, auto.Status)
	}
	fetched, out, err := recon(append([]string{"fetch"}, yflags...)...)
	if err != nil || fetched.Revision != auto.Revision || fetched.Statement.SHA256 != auto.Statement.SHA256 {
		t.Fatalf("recon fetch of yesterday: %v revision %d (was %d)\n%s", err, fetched.Revision, auto.Revision, out)
	}
	if _, out, err := recon(append([]string{"fetch"}, flags...)...); err == nil || !strings.Contains(out, "has not ended") {
		t.Errorf("recon fetch of today: %v %s", err, out)
	}
}

// TestReconManyDiscrepanciesCLI imports a statement with more discrepancies than an answer
// carries: the report's answer holds the first ReconInlineDiscrepancies and the counts, GET
// .../discrepancies pages through all of them, and `fincore recon import` and `show` print
// every one (as text and as JSON).
func TestReconManyDiscrepanciesCLI(t *testing.T) {
	if left := time.Until(time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)); left < time.Minute {
		time.Sleep(left + time.Second)
	}
	srv := startServer(t, "--data", t.TempDir())
	defer srv.kill()
	day := time.Now().UTC().Format(time.DateOnly)
	const n = 130
	csv := "kind,id,channel_ref,amount,currency,status,at\n"
	var ids []string
	for i := range n {
		csv += fmt.Sprintf("payment,ghost%03d.1,G%d,%d,CNY,succeeded,%sT10:00:00Z\n", i, i, 100+i, day)
		ids = append(ids, fmt.Sprintf("payment:ghost%03d.1", i))
	}
	file := filepath.Join(t.TempDir(), "statement.csv")
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(binPath, append([]string{"recon"}, append(args, "--url", srv.url(""), "--channel", "sim-a", "--date", day)...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("recon %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	text := run("import", file)
	for _, id := range ids {
		if !strings.Contains(text, id+" ") {
			t.Fatalf("recon import does not print %s:\n%s", id, text)
		}
	}
	var rep payment.Report
	if err := json.Unmarshal([]byte(run("show", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, n)
	for _, d := range rep.Discrepancies {
		got = append(got, d.ID)
	}
	if !slices.Equal(got, ids) || rep.MoreDiscrepancies || rep.DiscrepancyCount != n {
		t.Fatalf("recon show --json: %d discrepancies, count %d, more %v", len(got), rep.DiscrepancyCount, rep.MoreDiscrepancies)
	}

	path := "/v1/recon/sim-a/" + day
	st, b, err := doJSON("GET", srv.url(path), nil)
	var brief payment.Report
	if err != nil || st != 200 || json.Unmarshal(b, &brief) != nil {
		t.Fatalf("GET %s: %d %v", path, st, err)
	}
	if len(brief.Discrepancies) != payment.ReconInlineDiscrepancies || !brief.MoreDiscrepancies || brief.DiscrepancyCount != n || brief.OpenCount != n {
		t.Fatalf("GET %s: %d discrepancies, more %v, count %d, open %d", path, len(brief.Discrepancies), brief.MoreDiscrepancies, brief.DiscrepancyCount, brief.OpenCount)
	}
	got = got[:0]
	for after, pages := "", 0; ; pages++ {
		q := "?limit=60"
		if after != "" {
			q += "&starting_after=" + after
		}
		st, b, err := doJSON("GET", srv.url(path+"/discrepancies"+q), nil)
		var page struct {
			Data    []payment.Discrepancy `json:"data"`
			HasMore bool                  `json:"has_more"`
		}
		if err != nil || st != 200 || json.Unmarshal(b, &page) != nil {
			t.Fatalf("GET discrepancies%s: %d %s %v", q, st, b, err)
		}
		for _, d := range page.Data {
			got = append(got, d.ID)
		}
		if !page.HasMore {
			if pages != 2 || !slices.Equal(got, ids) {
				t.Fatalf("%d pages of 60 listed %d discrepancies", pages+1, len(got))
			}
			break
		}
		after = page.Data[len(page.Data)-1].ID
	}
	for q, want := range map[string]int{"?status=settled": 400, "?limit=501": 400, "?starting_after=payment:nope": 404} {
		if st, b, _ := doJSON("GET", srv.url(path+"/discrepancies"+q), nil); st != want {
			t.Errorf("GET discrepancies%s: %d %s, want %d", q, st, b, want)
		}
	}
}
