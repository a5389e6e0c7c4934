package httpapi

import "context"

// The scopes the core routes need. Other modules name theirs the same way: "<module>:read",
// "<module>:write"; ScopeAdmin is needed for configuration, keys and the audit log, and a key
// holding it may use every route.
const (
	ScopeLedgerRead  = "ledger:read"
	ScopeLedgerWrite = "ledger:write"
	ScopeAdmin       = "admin"
)

type actorKey struct{}

// WithActor returns ctx carrying the identity of the caller (an API key id, or "cli:<user>"
// for the command line), as the authentication layer established it.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// Actor returns the caller recorded by WithActor, or "" when the request was not
// authenticated (authentication switched off, or a public route).
func Actor(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}
