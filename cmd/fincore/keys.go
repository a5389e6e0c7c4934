package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fincore/fincore/platform/auth"
)

const keysUsage = `usage:
  fincore keys create --name NAME --scopes SCOPE[,SCOPE...] [--tenant ID] [TARGET]
  fincore keys list [TARGET]
  fincore keys revoke KEY_ID [TARGET]

TARGET is where the keys live:
  --data DIR | --postgres URL   the database itself (SQLite: only while no server runs on it)
  --url http://HOST:PORT        a running server, with the admin key in $FINCORE_API_KEY
`

// keysClient is what the keys subcommands do, on a database or over HTTP.
type keysClient interface {
	create(ctx context.Context, spec auth.KeySpec) (auth.KeyView, string, error)
	list(ctx context.Context, after string) ([]auth.KeyView, bool, error)
	revoke(ctx context.Context, id string) (auth.KeyView, error)
	close()
}

// cmdKeys runs `fincore keys create|list|revoke`.
func cmdKeys(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("keys "+verb, flag.ContinueOnError)
	var sf storeFlags
	sf.register(fs, false)
	base := fs.String("url", "", "a running server's base URL; the admin key is read from $"+envAPIKey)
	var name, scopes, tenant *string
	var id string
	switch verb {
	case "create":
		name = fs.String("name", "", "what the key is for (required)")
		scopes = fs.String("scopes", "", "comma-separated scopes: admin, ledger:read, ledger:write, payments:write, ... (required)")
		tenant = fs.String("tenant", "", "the tenant the key acts for")
	case "list":
	case "revoke":
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			id, args = args[0], args[1:]
		}
	default:
		return fmt.Errorf("unknown keys command %q\n%s", verb, keysUsage)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if verb == "revoke" && id == "" {
		return errors.New("keys revoke needs a KEY_ID\n" + keysUsage)
	}
	ctx := context.Background()
	c, err := openKeysClient(ctx, sf, *base)
	if err != nil {
		return err
	}
	defer c.close()
	switch verb {
	case "create":
		var list []string
		for s := range strings.SplitSeq(*scopes, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		k, token, err := c.create(ctx, auth.KeySpec{Name: *name, Scopes: list, TenantID: *tenant})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "created key %s (%s); its secret is printed below once and stored only as a hash\n", k.ID, strings.Join(k.Scopes, " "))
		fmt.Fprintln(stdout, token)
	case "list":
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tTENANT\tCREATED\tREVOKED")
		after := ""
		for range auth.ActiveKeysMax/auth.ListMax + 2 {
			ks, more, err := c.list(ctx, after)
			if err != nil {
				return err
			}
			for _, k := range ks {
				tenant, revoked := "-", "-"
				if k.TenantID != nil {
					tenant = *k.TenantID
				}
				if k.RevokedAt != nil {
					revoked = k.RevokedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), tenant, k.CreatedAt.Format(time.RFC3339), revoked)
			}
			if !more || len(ks) == 0 {
				break
			}
			after = ks[len(ks)-1].ID
		}
		return tw.Flush()
	case "revoke":
		k, err := c.revoke(ctx, id)
		if err != nil {
			return err
		}
		if k.RevokedAt == nil {
			return fmt.Errorf("key %s is not revoked", k.ID)
		}
		fmt.Fprintf(stdout, "revoked %s at %s\n", k.ID, k.RevokedAt.Format(time.RFC3339))
	}
	return nil
}

func openKeysClient(ctx context.Context, sf storeFlags, base string) (keysClient, error) {
	if base != "" {
		return newAPIClient(base, 30*time.Second, "--url needs an admin key in $"+envAPIKey)
	}
	st, err := sf.openLedgerStore(ctx, false)
	if err != nil {
		if sf.postgres == "" {
			err = fmt.Errorf("%w (a running server holds it: use --url with $%s)", err, envAPIKey)
		}
		return nil, err
	}
	as, err := authStore(st)
	if err != nil {
		st.Close()
		return nil, err
	}
	actor := "cli"
	if u, err := user.Current(); err == nil && u.Username != "" {
		actor = "cli:" + u.Username
	}
	return &storeKeys{svc: auth.NewService(as, auth.Config{}), o: auth.Origin{Actor: actor}, closer: st.Close}, nil
}

// storeKeys works on the database directly.
type storeKeys struct {
	svc    *auth.Service
	o      auth.Origin
	closer func() error
}

func (s *storeKeys) create(ctx context.Context, spec auth.KeySpec) (auth.KeyView, string, error) {
	k, token, err := s.svc.CreateKey(ctx, s.o, spec)
	return k.View(), token, err
}

func (s *storeKeys) list(ctx context.Context, after string) ([]auth.KeyView, bool, error) {
	ks, more, err := s.svc.ListKeys(ctx, after, auth.ListMax)
	out := make([]auth.KeyView, len(ks))
	for i, k := range ks {
		out[i] = k.View()
	}
	return out, more, err
}

func (s *storeKeys) revoke(ctx context.Context, id string) (auth.KeyView, error) {
	k, err := s.svc.RevokeKey(ctx, s.o, id)
	return k.View(), err
}

func (s *storeKeys) close() { s.closer() }

// httpKeys works through a server's /v1/keys.
type httpKeys struct {
	base, token string
	c           *http.Client
}

// do calls the server: body (JSON-encoded, or a rawBody as it is) if any, and the answer
// decoded into out.
func (h *httpKeys) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case rawBody: // sent as it is
		rd, ct = bytes.NewReader(b.data), b.contentType
	default:
		j, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	if body != nil {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return json.Unmarshal(b, out)
}

func (h *httpKeys) create(ctx context.Context, spec auth.KeySpec) (auth.KeyView, string, error) {
	body := map[string]any{"name": spec.Name, "scopes": spec.Scopes}
	if spec.TenantID != "" {
		body["tenant_id"] = spec.TenantID
	}
	var out struct {
		auth.KeyView
		Secret string `json:"secret"`
	}
	err := h.do(ctx, "POST", "/v1/keys", body, &out)
	return out.KeyView, out.Secret, err
}

func (h *httpKeys) list(ctx context.Context, after string) ([]auth.KeyView, bool, error) {
	q := url.Values{"limit": {fmt.Sprint(auth.ListMax)}}
	if after != "" {
		q.Set("starting_after", after)
	}
	var out struct {
		Data    []auth.KeyView `json:"data"`
		HasMore bool           `json:"has_more"`
	}
	err := h.do(ctx, "GET", "/v1/keys?"+q.Encode(), nil, &out)
	return out.Data, out.HasMore, err
}

func (h *httpKeys) revoke(ctx context.Context, id string) (auth.KeyView, error) {
	var out auth.KeyView
	err := h.do(ctx, "POST", "/v1/keys/"+url.PathEscape(id)+"/revoke", nil, &out)
	return out, err
}

func (h *httpKeys) close() {}
