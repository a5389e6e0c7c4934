package auth

import "context"

type keyCtx struct{}

// WithKey returns ctx carrying the key that authenticated the request, for domain code that
// needs the caller's tenant or scopes (it cannot import the HTTP layer).
func WithKey(ctx context.Context, k Key) context.Context {
	return context.WithValue(ctx, keyCtx{}, k)
}

// KeyFrom returns the key recorded by WithKey.
func KeyFrom(ctx context.Context) (Key, bool) {
	k, ok := ctx.Value(keyCtx{}).(Key)
	return k, ok
}

// TenantFrom returns the tenant of the key that authenticated the request, or "" when the
// key has none or the request was not authenticated.
func TenantFrom(ctx context.Context) string {
	k, _ := KeyFrom(ctx)
	return k.TenantID
}
