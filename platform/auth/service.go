package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fincore/fincore/apierror"
)

// Defaults of Config.
const (
	// DefaultCacheTTL is how long an instance trusts what it read about a key: a key revoked
	// on another instance stops working here within this time (at once on the instance that
	// revoked it).
	DefaultCacheTTL = 5 * time.Second
	// DefaultCacheMax bounds the keys (and unknown ids) an instance remembers.
	DefaultCacheMax = 10_000
	// ActiveKeysMax bounds the active keys of a deployment.
	ActiveKeysMax = 10_000
)

// Audit actions written by this package.
const (
	ActionKeyCreate    = "key.create"
	ActionKeyRevoke    = "key.revoke"
	ActionConfigSet    = "config.set"
	ActionConfigDelete = "config.delete"
)

// Config configures a Service. Zero values take the defaults.
type Config struct {
	Now      func() time.Time
	CacheTTL time.Duration
	CacheMax int
}

// Service manages keys and the audit log over a Store, and authenticates tokens with a
// small cache in front of the store.
type Service struct {
	st       Store
	now      func() time.Time
	cacheTTL time.Duration
	cacheMax int

	mu    sync.Mutex
	cache map[string]cached // by key id
}

type cached struct {
	key     Key
	found   bool
	expires time.Time
}

// NewService returns a service over st.
func NewService(st Store, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.CacheMax <= 0 {
		cfg.CacheMax = DefaultCacheMax
	}
	return &Service{st: st, now: cfg.Now, cacheTTL: cfg.CacheTTL, cacheMax: cfg.CacheMax, cache: make(map[string]cached)}
}

// Origin says who asks for a change and in which request, for the audit log.
type Origin struct {
	Actor     string
	RequestID string
}

// KeySpec describes a key to create.
type KeySpec struct {
	Name     string
	Scopes   []string
	TenantID string
}

func (sp *KeySpec) validate() *apierror.Error {
	if sp.Name == "" {
		return apierror.Newf(apierror.InvalidRequest, "name", "name is required.")
	}
	if len(sp.Name) > NameMax {
		return apierror.Newf(apierror.InvalidRequest, "name", "name must be at most %d bytes.", NameMax)
	}
	for _, c := range sp.Name {
		if c < ' ' || c == 0x7f {
			return apierror.Newf(apierror.InvalidRequest, "name", "name must not hold control characters.")
		}
	}
	scopes, err := ValidateScopes(sp.Scopes)
	if err != nil {
		return apierror.Newf(apierror.InvalidRequest, "scopes", "%s.", err.Error())
	}
	sp.Scopes = scopes
	if sp.TenantID != "" && !tenantPattern.MatchString(sp.TenantID) {
		return apierror.Newf(apierror.InvalidRequest, "tenant_id", "tenant_id must be 1 to %d characters of A-Z a-z 0-9 _ . : -.", TenantMax)
	}
	return nil
}

// CreateKey creates a key and returns it with its token, which is shown once and never
// stored. The creation is audited.
func (s *Service) CreateKey(ctx context.Context, o Origin, spec KeySpec) (Key, string, error) {
	if e := spec.validate(); e != nil {
		return Key{}, "", e
	}
	n, err := s.st.CountActiveKeys(ctx)
	if err != nil {
		return Key{}, "", fmt.Errorf("count keys: %w", err)
	}
	if n >= ActiveKeysMax {
		return Key{}, "", apierror.New(apierror.KeyLimitReached, "")
	}
	for range 3 { // an id collision (64 random bits) is all but impossible; retry anyway
		token, id := newToken()
		k := s.newKey(id, token, o, spec)
		err := s.st.CreateKey(ctx, k, s.entry(o, ActionKeyCreate, k.ID, nil, k))
		if errors.Is(err, ErrKeyExists) {
			continue
		}
		if err != nil {
			return Key{}, "", fmt.Errorf("create key: %w", err)
		}
		s.forget(k.ID)
		return k, token, nil
	}
	return Key{}, "", errors.New("create key: three id collisions")
}

func (s *Service) newKey(id, token string, o Origin, spec KeySpec) Key {
	return Key{ID: id, Name: spec.Name, Scopes: spec.Scopes, TenantID: spec.TenantID,
		CreatedAt: s.now().UTC(), CreatedBy: o.Actor, Hash: hashToken(token)}
}

// Bootstrap creates an admin key named name if no key exists at all, and returns its token;
// created is false (and token "") when keys exist. Of several instances starting at once on
// one database, one creates the key.
func (s *Service) Bootstrap(ctx context.Context, o Origin, name string) (token string, created bool, err error) {
	spec := KeySpec{Name: name, Scopes: []string{ScopeAdmin}}
	if e := spec.validate(); e != nil {
		return "", false, e
	}
	token, id := newToken()
	k := s.newKey(id, token, o, spec)
	created, err = s.st.CreateFirstKey(ctx, k, s.entry(o, ActionKeyCreate, k.ID, nil, k))
	if err != nil || !created {
		return "", false, err
	}
	return token, true, nil
}

// EnsureOperatorKey makes token (chosen by an operator, FINCORE_API_KEY) an admin key named
// name, idempotently: it creates the key if it is not stored, and does nothing if it is.
// It fails if the token is too weak, or if the key it names was revoked (an operator
// revoked it on purpose; starting with it would be a surprise).
func (s *Service) EnsureOperatorKey(ctx context.Context, o Origin, token, name string) (created bool, err error) {
	if err := checkOperatorToken(token); err != nil {
		return false, err
	}
	id := tokenID(token)
	for range 2 { // a concurrent start may create it between our read and insert
		k, ok, err := s.st.GetKey(ctx, id)
		if err != nil {
			return false, err
		}
		if ok {
			switch {
			case !matches(token, k.Hash):
				return false, fmt.Errorf("key id %s is taken by another key", id)
			case !k.Active():
				return false, fmt.Errorf("the key %s was revoked at %s; set another key", id, k.RevokedAt.Format(time.RFC3339))
			case !k.Allows(ScopeAdmin):
				return false, fmt.Errorf("the key %s is stored without the admin scope", id)
			}
			return false, nil
		}
		spec := KeySpec{Name: name, Scopes: []string{ScopeAdmin}}
		if e := spec.validate(); e != nil {
			return false, e
		}
		k = s.newKey(id, token, o, spec)
		err = s.st.CreateKey(ctx, k, s.entry(o, ActionKeyCreate, k.ID, nil, k))
		if errors.Is(err, ErrKeyExists) {
			continue
		}
		return err == nil, err
	}
	return false, fmt.Errorf("key %s: created and removed concurrently", id)
}

// Key returns the key with this id (key_not_found if there is none).
func (s *Service) Key(ctx context.Context, id string) (Key, error) {
	if !ValidKeyID(id) {
		return Key{}, apierror.Newf(apierror.KeyNotFound, "id", "No key has the id %q.", clip(id))
	}
	k, ok, err := s.st.GetKey(ctx, id)
	if err != nil {
		return Key{}, fmt.Errorf("get key: %w", err)
	}
	if !ok {
		return Key{}, apierror.Newf(apierror.KeyNotFound, "id", "No key has the id %q.", id)
	}
	return k, nil
}

// ListKeys returns a page of keys, newest first.
func (s *Service) ListKeys(ctx context.Context, startingAfter string, limit int) ([]Key, bool, error) {
	if limit < 1 || limit > ListMax {
		return nil, false, apierror.Newf(apierror.InvalidRequest, "limit", "limit must be an integer between 1 and %d.", ListMax)
	}
	ks, more, err := s.st.ListKeys(ctx, startingAfter, limit)
	if errors.Is(err, ErrCursorNotFound) {
		return nil, false, apierror.Newf(apierror.InvalidRequest, "starting_after", "starting_after names no key.")
	}
	if err != nil {
		return nil, false, fmt.Errorf("list keys: %w", err)
	}
	return ks, more, nil
}

// RevokeKey revokes a key and returns it. Revoking a revoked key changes nothing and is not
// audited again. The key stops working on this instance at once, and on others within the
// cache TTL.
func (s *Service) RevokeKey(ctx context.Context, o Origin, id string) (Key, error) {
	k, err := s.Key(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if !k.Active() {
		return k, nil
	}
	after := k
	after.RevokedAt = s.now().UTC()
	revoked, err := s.st.RevokeKey(ctx, id, after.RevokedAt, s.entry(o, ActionKeyRevoke, id, k, after))
	if err != nil {
		return Key{}, fmt.Errorf("revoke key: %w", err)
	}
	s.forget(id)
	if !revoked { // revoked concurrently: report the stored state
		return s.Key(ctx, id)
	}
	return after, nil
}

// Authenticate returns the active key that token belongs to, or an unauthenticated error.
func (s *Service) Authenticate(ctx context.Context, token string) (Key, error) {
	if token == "" {
		return Key{}, apierror.Newf(apierror.Unauthenticated, "", "Send an API key: Authorization: Bearer <key>.")
	}
	if len(token) > tokenMax {
		return Key{}, apierror.Newf(apierror.Unauthenticated, "", "The API key is invalid.")
	}
	id := tokenID(token)
	k, found, err := s.lookup(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if !found || !matches(token, k.Hash) {
		return Key{}, apierror.Newf(apierror.Unauthenticated, "", "The API key is invalid.")
	}
	if !k.Active() {
		return Key{}, apierror.Newf(apierror.Unauthenticated, "", "The API key %s was revoked.", k.ID)
	}
	return k, nil
}

// lookup reads a key through the cache. Unknown ids are cached too, so that a flood of
// made-up keys does not become a flood of queries.
func (s *Service) lookup(ctx context.Context, id string) (Key, bool, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[id]
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.key, c.found, nil
	}
	k, found, err := s.st.GetKey(ctx, id)
	if err != nil {
		return Key{}, false, apierror.Newf(apierror.Unavailable, "", "The key store is unreachable; retry.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cache) >= s.cacheMax {
		for cid, c := range s.cache {
			if !now.Before(c.expires) {
				delete(s.cache, cid)
			}
		}
		for cid := range s.cache { // still full: drop arbitrary entries (map order is random)
			if len(s.cache) < s.cacheMax {
				break
			}
			delete(s.cache, cid)
		}
	}
	s.cache[id] = cached{key: k, found: found, expires: now.Add(s.cacheTTL)}
	return k, found, nil
}

func (s *Service) forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
}

// Record appends an entry to the audit log: actor o did action to target, which was before
// and became after (each marshalled to JSON; nil for none).
func (s *Service) Record(ctx context.Context, o Origin, action, target string, before, after any) error {
	e := s.entry(o, action, target, before, after)
	if e.Action == "" || len(e.Action) > 64 || e.Target == "" || len(e.Target) > 256 {
		return fmt.Errorf("audit: action must be 1 to 64 bytes and target 1 to 256 bytes")
	}
	for _, v := range []json.RawMessage{e.Before, e.After} {
		if len(v) > AuditValueMax {
			return fmt.Errorf("audit: a before or after value is larger than %d bytes", AuditValueMax)
		}
	}
	if _, err := s.st.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("audit %s %s: %w", action, target, err)
	}
	return nil
}

// RecordConfigChange audits a change of configuration key: set to value (JSON) from old
// (nil if the key was not set), or deleted (value nil). The target is "config:<key>". It is
// the adapter point for the config center's Auditor: its AuditConfigChange maps a change onto
// this call.
func (s *Service) RecordConfigChange(ctx context.Context, o Origin, key string, old, value json.RawMessage) error {
	action := ActionConfigSet
	if value == nil {
		action = ActionConfigDelete
	}
	return s.Record(ctx, o, action, "config:"+key, old, value)
}

// AuditValueMax bounds the JSON of an audit entry's before or after value.
const AuditValueMax = 1 << 20

func (s *Service) entry(o Origin, action, target string, before, after any) AuditEntry {
	return AuditEntry{Time: s.now().UTC(), Actor: o.Actor, Action: action, Target: target,
		Before: toJSON(before), After: toJSON(after), RequestID: o.RequestID}
}

// toJSON marshals v; nil, a nil RawMessage and an unmarshalable value give nil.
func toJSON(v any) json.RawMessage {
	switch v := v.(type) {
	case nil:
		return nil
	case json.RawMessage:
		if len(v) == 0 {
			return nil
		}
		return v
	case Key:
		b, _ := json.Marshal(keyView(v))
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// KeyView is a key as the API and the audit log show it: everything but the hash.
type KeyView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	TenantID  *string    `json:"tenant_id"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func keyView(k Key) KeyView {
	v := KeyView{ID: k.ID, Name: k.Name, Scopes: k.Scopes, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if k.TenantID != "" {
		t := k.TenantID
		v.TenantID = &t
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt
		v.RevokedAt = &t
	}
	return v
}

// View returns the key as the API shows it.
func (k Key) View() KeyView { return keyView(k) }

// AuditView is an audit entry as the API shows it, with its id "aud_<seq>".
type AuditView struct {
	ID string `json:"id"`
	AuditEntry
}

// View returns the entry as the API shows it.
func (e AuditEntry) View() AuditView {
	if e.Before == nil {
		e.Before = json.RawMessage("null")
	}
	if e.After == nil {
		e.After = json.RawMessage("null")
	}
	return AuditView{ID: AuditID(e.Seq), AuditEntry: e}
}

// AuditID is the public id of the entry with sequence number seq.
func AuditID(seq int64) string { return "aud_" + strconv.FormatInt(seq, 10) }

// ListAudit returns a page of the audit log, newest first, selected by actor and action
// (exact matches) and after the entry startingAfter ("aud_<n>") if set.
func (s *Service) ListAudit(ctx context.Context, startingAfter, actor, action string, limit int) ([]AuditEntry, bool, error) {
	if limit < 1 || limit > ListMax {
		return nil, false, apierror.Newf(apierror.InvalidRequest, "limit", "limit must be an integer between 1 and %d.", ListMax)
	}
	q := AuditQuery{Actor: actor, Action: action, Limit: limit}
	if startingAfter != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(startingAfter, "aud_"), 10, 64)
		if !strings.HasPrefix(startingAfter, "aud_") || err != nil || n < 1 {
			return nil, false, apierror.Newf(apierror.InvalidRequest, "starting_after", "starting_after must be an audit entry id (aud_<n>).")
		}
		q.BeforeSeq = n
	}
	es, more, err := s.st.ListAudit(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("list audit: %w", err)
	}
	return es, more, nil
}
