package apierror

// This file is the registry of every error code the API can return. Clients depend on the
// code, never on the message. docs/errors.md is generated from this table
// (go test ./apierror -update) and a test keeps the two in sync.

// Codes.
const (
	InvalidRequest       Code = "invalid_request"
	RequestTooLarge      Code = "request_too_large"
	UnsupportedMedia     Code = "unsupported_media_type"
	MethodNotAllowed     Code = "method_not_allowed"
	RouteNotFound        Code = "route_not_found"
	AccountNotFound      Code = "account_not_found"
	TransferNotFound     Code = "transfer_not_found"
	PendingNotFound      Code = "pending_not_found"
	IDConflict           Code = "id_conflict"
	IdempotencyConflict  Code = "idempotency_conflict"
	RecordConflict       Code = "record_conflict"
	IdempotencyInFlight  Code = "idempotency_in_progress"
	CurrencyMismatch     Code = "currency_mismatch"
	SameAccount          Code = "same_account"
	ExceedsCredits       Code = "exceeds_credits"
	ExceedsDebits        Code = "exceeds_debits"
	PendingAlreadyClosed Code = "pending_already_closed"
	AmountExceedsPending Code = "amount_exceeds_pending"
	BalanceOverflow      Code = "balance_overflow"
	BatchTooLarge        Code = "batch_too_large"
	RuleSetNotFound      Code = "risk_ruleset_not_found"
	RuleSetInvalid       Code = "risk_ruleset_invalid"
	RuleSetInactive      Code = "risk_ruleset_inactive"
	RiskOverloaded       Code = "risk_overloaded"
	MerchantNotFound     Code = "merchant_not_found"
	CardNotFound         Code = "card_not_found"
	CardInvalid          Code = "card_invalid"
	PaymentNotFound      Code = "payment_not_found"
	RefundNotFound       Code = "refund_not_found"
	RefundExceedsPayment Code = "refund_exceeds_payment"
	PaymentNotRefundable Code = "payment_not_refundable"
	PaymentNotClosable   Code = "payment_not_closable"
	ChannelNotFound      Code = "channel_not_found"
	WebhookNotFound      Code = "webhook_not_found"
	SignatureInvalid     Code = "signature_invalid"
	Unauthenticated      Code = "unauthenticated"
	Forbidden            Code = "forbidden"
	KeyNotFound          Code = "key_not_found"
	KeyLimitReached      Code = "key_limit_reached"
	RateLimited          Code = "rate_limited"
	Degraded             Code = "degraded"
	Overloaded           Code = "overloaded"
	NotLeader            Code = "not_leader"
	Unavailable          Code = "unavailable"
	Internal             Code = "internal_error"

	PeriodsNotOffered  Code = "periods_not_offered"
	ConfigKeyUnknown   Code = "config_key_unknown"
	ConfigNotSet       Code = "config_not_set"
	ConfigValueInvalid Code = "config_value_invalid"
	ConfigConflict     Code = "config_conflict"

	ProductNotFound        Code = "product_not_found"
	CreditAccountNotFound  Code = "credit_account_not_found"
	CreditAccountExists    Code = "credit_account_exists"
	ApplicationNotFound    Code = "application_not_found"
	PurchaseNotFound       Code = "purchase_not_found"
	RepaymentNotFound      Code = "repayment_not_found"
	EODRunNotFound         Code = "eod_run_not_found"
	IDNumberInvalid        Code = "id_number_invalid"
	ExceedsAvailableCredit Code = "exceeds_available_credit"
	LineFrozen             Code = "line_frozen"
	TooManyOpenLoans       Code = "too_many_open_purchases"
	NothingOwed            Code = "nothing_owed"
	PurchaseDeclined       Code = "purchase_declined"
	RefundExceedsPrincipal Code = "refund_exceeds_principal"
	PurchaseNotRefundable  Code = "purchase_not_refundable"

	ReconStatementInvalid     Code = "recon_statement_invalid"
	ReconReportNotFound       Code = "recon_report_not_found"
	ReconDiscrepancyNotFound  Code = "recon_discrepancy_not_found"
	ReconAlreadyResolved      Code = "recon_already_resolved"
	ReconNotAdjustable        Code = "recon_not_adjustable"
	ReconLimitExceeded        Code = "recon_limit_exceeded"
	ReconStatementUnavailable Code = "recon_statement_unavailable"
)

// registry: code, HTTP status, default message. Order is the order of docs/errors.md.
var registry = []Def{
	{InvalidRequest, 400, "The request is malformed or a parameter is invalid."},
	{RequestTooLarge, 413, "The request body is larger than the limit (1 MiB)."},
	{UnsupportedMedia, 415, "The request body must be JSON (Content-Type: application/json)."},
	{MethodNotAllowed, 405, "The method is not allowed on this resource."},
	{RouteNotFound, 404, "No such route."},
	{AccountNotFound, 404, "The account does not exist."},
	{TransferNotFound, 404, "The transfer does not exist."},
	{PendingNotFound, 404, "The pending transfer does not exist, or the transfer is not pending."},
	{IDConflict, 409, "An object with this id already exists with a different body."},
	{IdempotencyConflict, 409, "This Idempotency-Key was used with a different request (method, path or body)."},
	{IdempotencyInFlight, 409, "A request with this Idempotency-Key is still being processed; retry after the Retry-After header's seconds."},
	{RecordConflict, 409, "The object was changed by another request at the same time; read it again and retry."},
	{CurrencyMismatch, 422, "The currencies of the transfer and its accounts differ."},
	{SameAccount, 422, "The debit and credit accounts are the same."},
	{ExceedsCredits, 422, "The transfer would make the debit account's debits exceed its credits."},
	{ExceedsDebits, 422, "The transfer would make the credit account's credits exceed its debits."},
	{PendingAlreadyClosed, 422, "The pending transfer was already posted, voided or expired."},
	{AmountExceedsPending, 422, "The amount to post exceeds the pending amount."},
	{BalanceOverflow, 422, "The transfer would overflow an account balance."},
	{BatchTooLarge, 400, "The batch holds more transfers than the limit (8190)."},
	{RuleSetNotFound, 404, "The risk rule set, or the version of it, does not exist."},
	{RuleSetInvalid, 422, "The rule set is invalid; the message names each problem with its line."},
	{RuleSetInactive, 409, "The rule set has no active version; activate one first."},
	{RiskOverloaded, 503, "The risk engine's decision log queue is full; retry with backoff."},
	{MerchantNotFound, 404, "No merchant has this id."},
	{CardNotFound, 404, "No card has this token."},
	{CardInvalid, 400, "The card number, expiry or holder is not valid."},
	{PaymentNotFound, 404, "No payment has this id."},
	{RefundNotFound, 404, "No refund has this id."},
	{RefundExceedsPayment, 409, "The refunds of a payment would exceed the amount captured."},
	{PaymentNotRefundable, 409, "Only a succeeded payment can be refunded."},
	{PaymentNotClosable, 409, "Only a payment that has not been sent to a bank can be closed."},
	{ChannelNotFound, 404, "No bank channel has this code."},
	{WebhookNotFound, 404, "No webhook delivery has this id."},
	{SignatureInvalid, 401, "The notification's signature is missing, malformed, expired or wrong."},
	{ReconStatementInvalid, 400, "The statement file is malformed; the message names the first bad line. Nothing was imported."},
	{ReconReportNotFound, 404, "No statement of this channel and business day has been imported."},
	{ReconDiscrepancyNotFound, 404, "The reconciliation report has no discrepancy with this id."},
	{ReconAlreadyResolved, 409, "The discrepancy is resolved already (a discrepancy resolves once)."},
	{ReconNotAdjustable, 422, "No adjustment can resolve this discrepancy now (our side is still processing, the currencies differ, or the books already agree); accept it with a note."},
	{ReconLimitExceeded, 422, "The report would exceed a reconciliation limit (2,000 discrepancies in 48 pages, 20 statement revisions, 100 cross-day items, 64 records written by an import); nothing was stored."},
	{ReconStatementUnavailable, 502, "The channel could not give its statement of the day (the call failed, or it keeps none and its file is to be imported); nothing was stored."},
	{Unauthenticated, 401, "The request has no API key, or its key is invalid or revoked (Authorization: Bearer <key>)."},
	{Forbidden, 403, "The API key lacks the scope this route needs."},
	{KeyNotFound, 404, "The API key does not exist."},
	{KeyLimitReached, 422, "The number of active API keys is at the limit (10,000); revoke unused keys."},
	{RateLimited, 429, "The API key's rate limit is exhausted; retry after the Retry-After header's seconds."},
	{Degraded, 503, "The feature is switched off or degraded by an operator; retry later."},
	{Overloaded, 503, "The ledger queue is full; retry with backoff."},
	{NotLeader, 503, "This instance is not the ledger writer: a standby, or a writer superseded by a newer one. Send writes to the leader, or retry."},
	{Unavailable, 503, "The service is shutting down or its storage is unreachable; retry."},
	{PeriodsNotOffered, 422, "The credit product does not offer this number of installments."},
	{ProductNotFound, 404, "The credit product is not configured."},
	{CreditAccountNotFound, 404, "The credit account (credit line) does not exist."},
	{CreditAccountExists, 409, "The customer already has a credit account."},
	{ApplicationNotFound, 404, "The credit application does not exist."},
	{PurchaseNotFound, 404, "The purchase does not exist, or is not on this credit account."},
	{RepaymentNotFound, 404, "The repayment does not exist."},
	{EODRunNotFound, 404, "The end-of-day batch has not run for this business date."},
	{IDNumberInvalid, 422, "The ID number is malformed: wrong length, check character or birth date."},
	{ExceedsAvailableCredit, 422, "The amount exceeds the credit account's available credit."},
	{LineFrozen, 422, "The credit account is frozen; it takes no purchases."},
	{TooManyOpenLoans, 422, "The credit account has the most open purchases it may have (50); repay one first."},
	{NothingOwed, 422, "The credit account (or purchase) owes nothing; the repayment was not taken."},
	{RefundExceedsPrincipal, 422, "The merchant refund is more than the principal the purchase still owes; nothing was changed."},
	{PurchaseNotRefundable, 409, "The purchase is paid off or written off, so a merchant refund cannot reduce it (a refund of a written-off purchase is taken as a repayment, which counts as a recovery); nothing was changed."},
	{PurchaseDeclined, 422, "The purchase was declined by the risk decision."},
	{Internal, 500, "An internal error occurred; it has been logged."},

	{ConfigKeyUnknown, 404, "No registered configuration key matches this name (docs/config.md lists them)."},
	{ConfigNotSet, 404, "The configuration key is valid but has no value."},
	{ConfigValueInvalid, 422, "The value does not have the configuration key's type; nothing was stored."},
	{ConfigConflict, 409, "The configuration key is not at the expected version; read it again."},
}
