package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/platform/obs"
)

// envAPIKey names the environment variable whose value, when set as serve starts, is an admin
// key (stored hashed, idempotently): how automation gets a key it knows in advance.
const envAPIKey = "FINCORE_API_KEY"

// Actors of changes that no API key makes (the audit log's actor column).
const (
	actorBootstrap = "system:bootstrap"
	actorEnv       = "system:env"
	actorDemo      = "system:demo"
	actorBench     = "system:bench"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// authFlags are serve's flags for rate limits and switches: the static settings in force
// until the config center changes them.
type authFlags struct {
	rateLimit string
	keyLimits listFlag
	switches  listFlag
}

func (f *authFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.rateLimit, "rate-limit", "0", "default per-key rate limit, RATE_PER_S[:BURST] (0: no limit)")
	fs.Var(&f.keyLimits, "key-rate-limit", "one key's rate limit, KEY_ID=RATE_PER_S[:BURST] (repeatable)")
	fs.Var(&f.switches, "switch", "a degradation switch, NAME=on|degraded|off, e.g. ledger=degraded (repeatable)")
}

// controls builds the limiter and the switches from the flags.
func (f *authFlags) controls() (*auth.Limiter, *auth.Switches, error) {
	def := auth.Limit{} // no limit unless --rate-limit says otherwise
	var err error
	if f.rateLimit != "" {
		def, err = auth.ParseLimit(f.rateLimit)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--rate-limit: %w", err)
	}
	limits, err := auth.NewLimiter(def, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, kv := range f.keyLimits {
		id, v, ok := strings.Cut(kv, "=")
		l, err := auth.ParseLimit(v)
		if err == nil && !ok {
			err = fmt.Errorf("want KEY_ID=RATE_PER_S[:BURST]")
		}
		if err == nil {
			err = limits.SetKey(id, l)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--key-rate-limit %s: %w", kv, err)
		}
	}
	switches := auth.NewSwitches()
	for _, kv := range f.switches {
		name, v, ok := strings.Cut(kv, "=")
		st, err := auth.ParseState(v)
		if err == nil && !ok {
			err = fmt.Errorf("want NAME=on|degraded|off")
		}
		if err == nil {
			err = switches.Set(name, st)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--switch %s: %w", kv, err)
		}
	}
	return limits, switches, nil
}

// authStore returns the auth store of the database st lives in.
func authStore(st ledger.Store) (auth.Store, error) {
	p, ok := st.(auth.Provider)
	if !ok {
		return nil, fmt.Errorf("storage %T has no key store", st)
	}
	return p.Auth(), nil
}

// access is what enableAuth set up: the key service (also the audit log), and the limiter
// and switches that the config center drives through Settings and handlers consult.
type access struct {
	Keys     *auth.Service
	Limits   *auth.Limiter
	Switches *auth.Switches
	// Default is the default rate limit from the flags, restored when ratelimit.default is
	// deleted from the config center.
	Default auth.Limit
}

// Settings is the adapter the config center's watcher applies ratelimit.* and switch.* keys
// to.
func (a *access) Settings() auth.Settings {
	return auth.Settings{Limits: a.Limits, Switches: a.Switches, Default: a.Default}
}

// enableAuth turns authentication on in api: keys from st's database, limits and switches
// from the flags, rejections counted in m. It makes sure an admin key exists: FINCORE_API_KEY
// if it is set, otherwise (on the very first start) a generated one, printed once to out.
func (f *authFlags) enableAuth(ctx context.Context, api *httpapi.Server, st ledger.Store, m *obs.Metrics, log *slog.Logger, out io.Writer) (*access, error) {
	as, err := authStore(st)
	if err != nil {
		return nil, err
	}
	limits, switches, err := f.controls()
	if err != nil {
		return nil, err
	}
	keys := auth.NewService(as, auth.Config{})
	if token := os.Getenv(envAPIKey); token != "" {
		created, err := keys.EnsureOperatorKey(ctx, auth.Origin{Actor: actorEnv}, token, envAPIKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", envAPIKey, err)
		}
		if created {
			log.Info("stored the admin key from " + envAPIKey)
		}
	} else {
		token, created, err := keys.Bootstrap(ctx, auth.Origin{Actor: actorBootstrap}, "bootstrap admin")
		if err != nil {
			return nil, fmt.Errorf("create the first admin key: %w", err)
		}
		if created {
			fmt.Fprintf(out, "fincore: first start: generated an admin API key. It is shown this once and stored only as a hash:\n\n    %s\n\n"+
				"Send it as 'Authorization: Bearer <key>'; create narrower keys with 'fincore keys create' or POST /v1/keys.\n", token)
		}
	}
	api.UseAuth(httpapi.Guard{Keys: keys, Limits: limits, Switches: switches, Rejected: m.RejectCounter(httpapi.RejectReasons)})
	if s := switches.All(); len(s) > 0 {
		log.Warn("degradation switches set at start", "switches", s)
	}
	def, _ := limits.Limits()
	return &access{Keys: keys, Limits: limits, Switches: switches, Default: def}, nil
}

// revokeAndCreate revokes the active keys that actor created and creates a fresh one: how
// the demo and the benchmarks get a key each run without piling keys up.
func revokeAndCreate(ctx context.Context, keys *auth.Service, actor string, spec auth.KeySpec) (string, error) {
	o := auth.Origin{Actor: actor}
	after := ""
	for range auth.ActiveKeysMax/auth.ListMax + 1 {
		ks, more, err := keys.ListKeys(ctx, after, auth.ListMax)
		if err != nil {
			return "", err
		}
		for _, k := range ks {
			if k.CreatedBy == actor && k.Active() {
				if _, err := keys.RevokeKey(ctx, o, k.ID); err != nil {
					return "", err
				}
			}
		}
		if !more || len(ks) == 0 {
			break
		}
		after = ks[len(ks)-1].ID
	}
	_, token, err := keys.CreateKey(ctx, o, spec)
	return token, err
}

// printDemo creates the demo key and tells how to call the demo server with it.
func printDemo(ctx context.Context, keys *auth.Service, addr string) error {
	token, err := revokeAndCreate(ctx, keys, actorDemo, auth.KeySpec{Name: "demo", Scopes: []string{auth.ScopeAdmin}})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "demo: accounts seeded, traffic running. This run's demo API key (admin; the previous demo key is revoked):\n\n"+
		"    export FINCORE_KEY=%s\n    curl -H \"Authorization: Bearer $FINCORE_KEY\" http://%s/v1/accounts/demo:merchant:1\n\n", token, addr)
	return nil
}

// benchKey turns authentication on for a benchmark's server, as serve does, and returns a
// fresh key holding scope for the load generator (revoked by the next benchmark run, so that
// benchmark keys do not pile up in a reused database).
func benchKey(ctx context.Context, api *httpapi.Server, st ledger.Store, m *obs.Metrics, scope string) (string, error) {
	as, err := authStore(st)
	if err != nil {
		return "", err
	}
	keys := auth.NewService(as, auth.Config{})
	limits, err := auth.NewLimiter(auth.Limit{}, nil)
	if err != nil {
		return "", err
	}
	api.UseAuth(httpapi.Guard{Keys: keys, Limits: limits, Switches: auth.NewSwitches(), Rejected: m.RejectCounter(httpapi.RejectReasons)})
	return revokeAndCreate(ctx, keys, actorBench, auth.KeySpec{Name: "bench", Scopes: []string{scope}})
}
