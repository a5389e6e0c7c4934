package service

import (
	"context"
	"fmt"

	"github.com/fincore/fincore/ledger"
)

// WriteOffActor is who the freeze log names for a line frozen by a write-off.
const WriteOffActor = "credit.write_off"

// freezeOnWriteOff adds to u, the unit that writes l off, the freeze of its line (docs/credit.md,
// write-off): the line takes no more purchases until operations unfreeze it. A line already
// frozen is left as it is (the freeze it has, an operator's or an earlier write-off's, stays
// in its log).
func (s *Service) freezeOnWriteOff(ctx context.Context, l *Loan, u *ledger.Unit) error {
	line, err := s.Line(ctx, l.Account)
	if err != nil {
		return err
	}
	if line.Frozen {
		return nil
	}
	w, ev := freezeLine(line, FreezeEntry{At: s.cfg.Now().UTC(), Frozen: true, By: WriteOffActor, Loan: l.ID,
		Reason: fmt.Sprintf("purchase %s written off on %s, %d days past due", l.ID, l.WrittenOffOn, l.DPD)})
	u.Records = append(u.Records, w)
	u.Events = append(u.Events, ev)
	return nil
}
