package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/payment"
)

// withRecon adds the reconciliation routes; statement files are in the format of the
// simulated bank's (docs/channels.md), which is fincore's statement format.
func withRecon(api *httpapi.Server, p *payments) *httpapi.Server {
	api.RegisterRecon(p.svc, httpapi.ReconOptions{Parse: sim.ReadStatement})
	return api
}

const reconUsage = `usage:
  fincore recon import  --channel C --date YYYY-MM-DD [--url URL] [--json] FILE   (FILE - reads stdin)
  fincore recon fetch   --channel C --date YYYY-MM-DD [--url URL] [--json]          (asks the channel for its statement)
  fincore recon show    --channel C --date YYYY-MM-DD [--url URL] [--json]
  fincore recon resolve --channel C --date YYYY-MM-DD --id DISCREPANCY --action adjust|suspense|accept --note TEXT [--url URL] [--json]

The commands talk to a running server (default http://127.0.0.1:8080, or $FINCORE_URL) with
the key in $FINCORE_API_KEY (scope recon:write to import, fetch and resolve, recon:read to show; admin
holds both).
`

// cmdRecon runs `fincore recon import|fetch|show|resolve`.
func cmdRecon(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(reconUsage)
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("recon "+verb, flag.ContinueOnError)
	base := fs.String("url", envOr("FINCORE_URL", "http://127.0.0.1:8080"), "the server's base URL")
	channel := fs.String("channel", "", "the channel code (required)")
	date := fs.String("date", "", "the business day, YYYY-MM-DD (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var id, action, note *string
	switch verb {
	case "import", "fetch", "show":
	case "resolve":
		id = fs.String("id", "", "the discrepancy id, <kind>:<bank id> (required)")
		action = fs.String("action", "", "adjust, suspense or accept (required)")
		note = fs.String("note", "", "why (required; kept in the report's audit trail)")
	default:
		return fmt.Errorf("unknown recon command %q\n%s", verb, reconUsage)
	}
	// Flags may come before and after the file.
	if err := fs.Parse(args); err != nil {
		return err
	}
	var file string
	if verb == "import" && fs.NArg() > 0 {
		file = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	switch {
	case *channel == "" || *date == "":
		return errors.New("--channel and --date are required\n" + reconUsage)
	case verb == "import" && file == "":
		return errors.New("recon import needs a statement FILE\n" + reconUsage)
	case verb == "resolve" && (*id == "" || *action == "" || *note == ""):
		return errors.New("recon resolve needs --id, --action and --note\n" + reconUsage)
	}
	if _, err := time.Parse(time.DateOnly, *date); err != nil {
		return fmt.Errorf("--date %q is not YYYY-MM-DD", *date)
	}
	c, err := newAPIClient(*base, 5*time.Minute, "set $"+envAPIKey+" to a key with scope recon:write (or recon:read to show)")
	if err != nil {
		return err
	}
	path := "/v1/recon/" + url.PathEscape(*channel) + "/" + url.PathEscape(*date)
	ctx := context.Background()
	var rep payment.Report
	switch verb {
	case "import":
		var body []byte
		if file == "-" {
			body, err = io.ReadAll(io.LimitReader(os.Stdin, httpapi.ReconStatementMaxBytes+1))
		} else {
			body, err = os.ReadFile(file)
		}
		if err != nil {
			return err
		}
		err = c.do(ctx, "POST", path, rawBody{"text/csv", body}, &rep)
	case "fetch":
		err = c.do(ctx, "POST", path+"/fetch", nil, &rep)
	case "show":
		err = c.do(ctx, "GET", path, nil, &rep)
	case "resolve":
		err = c.do(ctx, "POST", path+"/discrepancies/"+url.PathEscape(*id)+"/resolve", map[string]string{"action": *action, "note": *note}, &rep)
	}
	if err != nil {
		return err
	}
	// Answers carry the first discrepancies only: fetch the rest, page by page.
	if rep.MoreDiscrepancies {
		if rep.Discrepancies, err = allDiscrepancies(ctx, c, path); err != nil {
			return err
		}
		rep.MoreDiscrepancies = false
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printReport(stdout, rep)
}

// allDiscrepancies reads every discrepancy of the report at path.
func allDiscrepancies(ctx context.Context, c *httpKeys, path string) ([]payment.Discrepancy, error) {
	var all []payment.Discrepancy
	after := ""
	for {
		var page struct {
			Data    []payment.Discrepancy `json:"data"`
			HasMore bool                  `json:"has_more"`
		}
		q := url.Values{"limit": {"500"}}
		if after != "" {
			q.Set("starting_after", after)
		}
		if err := c.do(ctx, "GET", path+"/discrepancies?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if !page.HasMore || len(page.Data) == 0 {
			return all, nil
		}
		after = page.Data[len(page.Data)-1].ID
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// printReport prints a report for people: its state, the counts, and every discrepancy.
func printReport(w io.Writer, r payment.Report) error {
	s := r.Statement.Summary
	fmt.Fprintf(w, "report %s: %s, revision %d (statement of %d lines, sha256 %.12s, imported %s by %s)\n",
		r.ID, r.Status, r.Revision, r.Statement.Lines, r.Statement.SHA256, r.Statement.ImportedAt.Format(time.RFC3339), r.Statement.ImportedBy)
	fmt.Fprintf(w, "matched %d, on another day's statement %d, ignored %d; long %d, short %d, amount mismatches %d, status mismatches %d\n",
		s.Matched, s.MatchedOtherDay, s.Ignored, s.Long, s.Short, s.AmountMismatch, s.StatusMismatch)
	for _, t := range s.Totals {
		fmt.Fprintf(w, "%s: bank payments %d, refunds %d; ours payments %d, refunds %d\n", t.Currency, t.BankPayments, t.BankRefunds, t.OurPayments, t.OurRefunds)
	}
	if len(r.Discrepancies) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tBANK\tOURS\tDELTA\tADJUSTED\tRESOLUTION")
	side := func(s *payment.Side) string {
		if s == nil {
			return "-"
		}
		return fmt.Sprintf("%s %d %s", s.Status, s.Amount, s.Currency)
	}
	for _, d := range r.Discrepancies {
		res := "-"
		if n := len(d.Resolutions); n > 0 {
			l := d.Resolutions[n-1]
			res = fmt.Sprintf("%s by %s: %s", l.Action, l.Actor, l.Note)
		}
		status := d.Status
		if d.Superseded {
			status += " (superseded)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", d.ID, d.Type, status, side(d.Bank), side(d.Ours), d.Delta, d.Adjusted, res)
	}
	return tw.Flush()
}

// rawBody is a request body sent as it is, with its content type.
type rawBody struct {
	contentType string
	data        []byte
}

// newAPIClient is a client of the server at base, authenticated with the key in
// $FINCORE_API_KEY; noKey is the error when there is none.
func newAPIClient(base string, timeout time.Duration, noKey string) (*httpKeys, error) {
	token := os.Getenv(envAPIKey)
	if token == "" {
		return nil, errors.New(noKey)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q is not an http(s) URL", base)
	}
	return &httpKeys{base: strings.TrimSuffix(base, "/"), token: token, c: &http.Client{Timeout: timeout}}, nil
}
