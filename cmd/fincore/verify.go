package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/fincore/fincore/ledger"
)

// cmdVerify recomputes the journal's hash chain and the double-entry invariant; it exits 1
// on any break. With embedded storage the server must be stopped (it holds the directory).
func cmdVerify(args []string) int {
	fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs, false)
	if err := parseFlags(fs, args); err != nil {
		fmt.Fprintf(os.Stderr, "fincore ledger verify: %v\n", err)
		return 2
	}
	ctx := context.Background()
	st, err := sf.openLedgerStore(ctx, false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fincore ledger verify: %v\n", err)
		return 2
	}
	defer st.Close()
	rep, err := ledger.Verify(ctx, st)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fincore ledger verify: %v\n", err)
		return 2
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	if !rep.OK() {
		fmt.Fprintf(os.Stderr, "ledger verify: %d problem(s) found\n", len(rep.Problems))
		return 1
	}
	fmt.Fprintf(os.Stderr, "ledger verify: OK (%d records, %d accounts)\n", rep.Records, rep.Accounts)
	return 0
}
