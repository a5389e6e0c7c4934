package service

// EventSubjects are every subject the credit service publishes through the outbox
// (docs/credit.md), for checking that the bus has a stream for each: the outbox relay cannot
// publish past an event no stream captures. A test checks that the service's events use no
// other subject.
var EventSubjects = []string{
	"credit.application.decided",
	"credit.line.opened",
	"credit.line.frozen",
	"credit.line.unfrozen",
	"credit.purchase.created",
	"credit.purchase.paid_off",
	"credit.purchase.refunded",
	"credit.repayment.applied",
	"credit.statement.issued",
	"credit.loan.stage_changed",
	"credit.loan.written_off",
	"credit.eod.completed",
}
