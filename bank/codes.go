package bank

// Code is the unified result code every channel maps its raw response codes onto.
type Code string

// The unified codes. The table in codeInfo says, for each, whether the outcome is final and
// whether the bank certainly did not charge (so the payment may be sent to another channel).
const (
	CodeApproved           Code = "approved"
	CodeDeclined           Code = "declined"
	CodeInsufficientFunds  Code = "insufficient_funds"
	CodeCardInvalid        Code = "card_invalid"
	CodeCardExpired        Code = "card_expired"
	CodeLimitExceeded      Code = "limit_exceeded"
	CodeSuspectedFraud     Code = "suspected_fraud"
	CodeInvalidAmount      Code = "invalid_amount"
	CodeNotFound           Code = "not_found"
	CodeDuplicate          Code = "duplicate"
	CodeTimeout            Code = "timeout"
	CodeChannelUnavailable Code = "channel_unavailable"
	CodeBankSystemError    Code = "bank_system_error"
	CodeReversed           Code = "reversed"
)

// CodeInfo describes a unified code.
type CodeInfo struct {
	Code Code
	// Retriable: the bank certainly did not charge and the cause is the channel, not the
	// card, so the same payment may be tried on another channel.
	Retriable bool
	// Unknown: the bank may or may not have charged; only a Query resolves it.
	Unknown     bool
	Description string
}

var codeInfo = map[Code]CodeInfo{
	CodeApproved:           {Description: "the bank approved the request"},
	CodeDeclined:           {Description: "the issuer declined the payment (do not honour)"},
	CodeInsufficientFunds:  {Description: "the account has insufficient funds"},
	CodeCardInvalid:        {Description: "the card number, holder or expiry is not valid at the bank"},
	CodeCardExpired:        {Description: "the card has expired"},
	CodeLimitExceeded:      {Description: "a per-payment or daily limit of the card or channel was exceeded"},
	CodeSuspectedFraud:     {Description: "the bank refused the payment as suspected fraud"},
	CodeInvalidAmount:      {Description: "the bank refused the amount or currency"},
	CodeNotFound:           {Description: "the bank has no record of the payment or refund: it was never charged"},
	CodeDuplicate:          {Description: "the bank already has a request with this id; query it"},
	CodeTimeout:            {Unknown: true, Description: "no answer in time after the request may have reached the bank; resolve by query"},
	CodeChannelUnavailable: {Retriable: true, Description: "the channel could not be reached; the request certainly never reached the bank"},
	CodeBankSystemError:    {Retriable: true, Description: "the bank answered that it failed before charging (system error, maintenance)"},
	CodeReversed:           {Retriable: true, Description: "the request was reversed after a timeout: the bank holds no charge"},
}

// Info returns the description of c; unknown codes are treated as Unknown outcomes, the safe
// reading of a code nobody mapped.
func (c Code) Info() CodeInfo {
	info, ok := codeInfo[c]
	if !ok {
		return CodeInfo{Code: c, Unknown: true, Description: "unmapped code: treated as an unknown outcome"}
	}
	info.Code = c
	return info
}

// Retriable reports whether a payment that got c may be sent to another channel.
func (c Code) Retriable() bool { return c.Info().Retriable }

// Codes lists every unified code, for documentation and for adapters' mapping tests.
func Codes() []CodeInfo {
	order := []Code{CodeApproved, CodeDeclined, CodeInsufficientFunds, CodeCardInvalid, CodeCardExpired,
		CodeLimitExceeded, CodeSuspectedFraud, CodeInvalidAmount, CodeNotFound, CodeDuplicate, CodeTimeout,
		CodeChannelUnavailable, CodeBankSystemError, CodeReversed}
	out := make([]CodeInfo, len(order))
	for i, c := range order {
		out[i] = c.Info()
	}
	return out
}
