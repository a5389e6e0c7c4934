package bank

import (
	"fmt"
	"regexp"
	"sort"
	"sync"
)

var channelCodePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Registry holds the channels of a process, keyed by channel code. It is safe for concurrent
// use; channels are added at start (one line per adapter in the binary's wiring).
type Registry struct {
	mu       sync.RWMutex
	channels map[string]Channel
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{channels: make(map[string]Channel)} }

// Add registers ch under ch.Code(). Codes are lower-case letters, digits, '-' and '_', up to 32
// characters, and unique.
func (r *Registry) Add(ch Channel) error {
	code := ch.Code()
	if !channelCodePattern.MatchString(code) {
		return fmt.Errorf("bank: channel code %q: want %s", code, channelCodePattern)
	}
	caps := ch.Capabilities()
	if len(caps.Currencies) == 0 {
		return fmt.Errorf("bank: channel %s supports no currency", code)
	}
	if caps.MinAmount < 0 || caps.MaxAmount < 0 || (caps.MaxAmount > 0 && caps.MaxAmount < caps.MinAmount) {
		return fmt.Errorf("bank: channel %s: amount limits [%d, %d] are not a range", code, caps.MinAmount, caps.MaxAmount)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.channels[code]; dup {
		return fmt.Errorf("bank: channel %s registered twice", code)
	}
	r.channels[code] = ch
	return nil
}

// Get returns the channel with code.
func (r *Registry) Get(code string) (Channel, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ch, ok := r.channels[code]
	return ch, ok
}

// Codes returns the registered channel codes in order.
func (r *Registry) Codes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.channels))
	for c := range r.channels {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Candidates returns the channels whose capabilities cover a payment of amount in currency by
// a card of bankCode, ordered by code. Whether a channel is enabled, and how candidates are
// ranked, is the router's business.
func (r *Registry) Candidates(bankCode, currency string, amount int64) []Channel {
	var out []Channel
	for _, code := range r.Codes() {
		ch, _ := r.Get(code)
		if ch.Capabilities().Supports(bankCode, currency, amount) {
			out = append(out, ch)
		}
	}
	return out
}
