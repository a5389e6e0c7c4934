package ledger

import (
	"strconv"
	"unicode/utf8"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/money"
)

// Limits.
const (
	// BatchMax is the largest number of transfers in one batch.
	BatchMax = 8190
	// TimeoutSecondsMax bounds a pending transfer's timeout (10 years).
	TimeoutSecondsMax = 10 * 366 * 24 * 3600
	// MetadataKeysMax, MetadataKeyLenMax and MetadataValueLenMax bound metadata.
	MetadataKeysMax     = 50
	MetadataKeyLenMax   = 40
	MetadataValueLenMax = 500
)

// Client-chosen ids are 1 to 128 of the characters [A-Za-z0-9_.:-]. '#' is reserved for
// records the ledger makes itself (expiries), so they can never collide with a client id.
// Account and transfer codes are 0 to 64 of the same characters. (Checked by a loop rather
// than a regular expression: every transfer and record of every unit has its ids checked,
// and the regular expression was 1–2% of the CPU of a payment.)

// ValidID reports whether s is a valid client id.
func ValidID(s string) bool { return len(s) >= 1 && len(s) <= 128 && idChars(s) }

// validCode reports whether s is a valid account or transfer code.
func validCode(s string) bool { return len(s) <= 64 && idChars(s) }

// idChars reports whether s holds only the characters of ids: A-Z, a-z, 0-9, '_', '.', ':', '-'.
func idChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func invalid(param, format string, args ...any) *apierror.Error {
	return apierror.Newf(apierror.InvalidRequest, param, format, args...)
}

func validateMetadata(m map[string]string) *apierror.Error {
	if len(m) > MetadataKeysMax {
		return invalid("metadata", "metadata holds %d keys; at most %d are allowed", len(m), MetadataKeysMax)
	}
	for k, v := range m {
		if k == "" || len(k) > MetadataKeyLenMax || !utf8.ValidString(k) {
			return invalid("metadata", "metadata keys must be 1 to %d bytes of UTF-8", MetadataKeyLenMax)
		}
		if len(v) > MetadataValueLenMax || !utf8.ValidString(v) {
			return invalid("metadata."+k, "metadata values must be at most %d bytes of UTF-8", MetadataValueLenMax)
		}
	}
	return nil
}

// ValidateAccount checks an account request without touching state.
func ValidateAccount(in *AccountInput) *apierror.Error {
	if in.ID != "" && !ValidID(in.ID) {
		return invalid("id", "id must be 1 to 128 characters of A-Z a-z 0-9 _ . : -")
	}
	if !money.ValidCode(in.Currency) {
		return invalid("currency", "currency %q is not a known ISO 4217 code or asset code", in.Currency)
	}
	if !validCode(in.Code) {
		return invalid("code", "code must be at most 64 characters of A-Z a-z 0-9 _ . : -")
	}
	if in.Flags.DebitsMustNotExceedCredits && in.Flags.CreditsMustNotExceedDebits {
		return invalid("flags", "debits_must_not_exceed_credits and credits_must_not_exceed_debits are mutually exclusive")
	}
	return validateMetadata(in.Metadata)
}

// ValidateTransfer checks a transfer request without touching state.
func ValidateTransfer(in *TransferInput) *apierror.Error {
	if !ValidID(in.ID) {
		return invalid("id", "id is required: 1 to 128 characters of A-Z a-z 0-9 _ . : -")
	}
	switch in.Action {
	case ActionPost, ActionVoid:
		if !ValidID(in.PendingID) {
			return invalid("pending_id", "pending_id must name a pending transfer")
		}
		if in.Action == ActionVoid && in.Amount != 0 {
			return invalid("amount", "a void releases the whole pending amount; amount is not allowed")
		}
		if in.Amount != 0 && !money.ValidAmount(in.Amount) {
			return invalid("amount", "amount must be an integer between 1 and %d", money.MaxAmount)
		}
		if in.DebitAccountID != "" || in.CreditAccountID != "" || in.Currency != "" || in.Pending || in.TimeoutSeconds != 0 {
			return invalid("pending_id", "a post or void takes its accounts and currency from the pending transfer")
		}
		return validateMetadata(in.Metadata)
	case ActionCreate:
	default:
		return invalid("action", "action must be post or void")
	}
	if in.PendingID != "" {
		return invalid("pending_id", "pending_id is only allowed with action post or void")
	}
	if !ValidID(in.DebitAccountID) {
		return invalid("debit_account_id", "debit_account_id is required")
	}
	if !ValidID(in.CreditAccountID) {
		return invalid("credit_account_id", "credit_account_id is required")
	}
	if !money.ValidAmount(in.Amount) {
		return invalid("amount", "amount must be an integer between 1 and %d", money.MaxAmount)
	}
	if !money.ValidCode(in.Currency) {
		return invalid("currency", "currency %q is not a known ISO 4217 code or asset code", in.Currency)
	}
	if !validCode(in.Code) {
		return invalid("code", "code must be at most 64 characters of A-Z a-z 0-9 _ . : -")
	}
	if in.TimeoutSeconds < 0 || in.TimeoutSeconds > TimeoutSecondsMax {
		return invalid("timeout_seconds", "timeout_seconds must be between 0 and %d", TimeoutSecondsMax)
	}
	if in.TimeoutSeconds != 0 && !in.Pending {
		return invalid("timeout_seconds", "timeout_seconds is only allowed on pending transfers")
	}
	if in.DebitAccountID == in.CreditAccountID {
		return apierror.New(apierror.SameAccount, "credit_account_id")
	}
	return validateMetadata(in.Metadata)
}

// IndexParam names item i of a batch in an error's param.
func IndexParam(i int) string { return strconv.Itoa(i) }
