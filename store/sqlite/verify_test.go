package sqlite

import (
	"context"
	"strings"
	"testing"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/storetest"
)

// TestVerifyDetectsTampering edits the stored journal and balances behind the engine's back
// and checks that ledger.Verify notices each kind of edit.
func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"amount", `UPDATE transfers SET amount = amount + 1 WHERE id = 't2'`, "hash chain broken"},
		{"delta", `UPDATE transfers SET posted_delta = posted_delta + 1 WHERE id = 't2'`, "hash chain broken"},
		{"snapshot", `UPDATE transfers SET cr_credits_posted = cr_credits_posted + 1 WHERE id = 't3'`, "hash chain broken"},
		{"orphan account", `DELETE FROM accounts WHERE id = 'b'`, "does not exist"},
		{"deleted record", `DELETE FROM transfers WHERE id = 't2'`, "hash chain broken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := OpenLedger(dir)
			if err != nil {
				t.Fatal(err)
			}
			eng := storetest.OpenEngine(t, st, storetest.NewClock().Now)
			if _, err := eng.CreateAccounts(ctx, []ledger.AccountInput{{ID: "a", Currency: "CNY"}, {ID: "b", Currency: "CNY"}}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"t1", "t2", "t3"} {
				if _, _, err := eng.CreateTransfer(ctx, ledger.TransferInput{ID: id, DebitAccountID: "a", CreditAccountID: "b", Amount: 10, Currency: "CNY"}); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := ledger.Verify(ctx, st)
			if err != nil || !rep.OK() || rep.Records != 3 || rep.Totals["CNY"].DebitsPosted.Int64() != 30 {
				t.Fatalf("clean verify: %+v %v", rep, err)
			}
			if _, err := st.(ownedLedger).db.write.ExecContext(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			rep, err = ledger.Verify(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), tc.want) {
				t.Fatalf("tampering not detected as %q: %v", tc.want, rep.Problems)
			}
		})
	}
}
