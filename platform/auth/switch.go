package auth

import (
	"fmt"
	"maps"
	"regexp"
	"strings"
	"sync"
)

// State is a degradation switch's position.
type State string

// Switch states. A switch nobody set is On.
const (
	// On: the feature works normally.
	On State = "on"
	// Degraded: the feature refuses what can wait (for a module: its writes) and keeps
	// serving the rest (its reads).
	Degraded State = "degraded"
	// Off: the feature refuses everything.
	Off State = "off"
)

// ParseState parses "on", "degraded" or "off".
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case On, Degraded, Off:
		return st, nil
	}
	return "", fmt.Errorf("switch state %q is not on, degraded or off", clip(s))
}

// switchNamePattern: a module name ("ledger", as in its scopes) or any other feature name
// ("channel_icbc"): the characters of a configuration key's part, optionally several parts.
var switchNamePattern = regexp.MustCompile(`^[A-Za-z0-9_\-]{1,64}(\.[A-Za-z0-9_\-]{1,64}){0,4}$`)

// SwitchSetter is what drives Switches: flags at start, the config center as its keys
// (switch.<name>) change.
type SwitchSetter interface {
	// Set moves switch name to state.
	Set(name string, state State) error
	// Delete forgets switch name, which is then On.
	Delete(name string)
}

// Switches holds named degradation switches in memory. The HTTP layer checks the switch
// named after a route's module (the part of its scope before ":"): Degraded refuses the
// module's writes, Off all its routes, with 503 degraded. Handlers check finer switches
// ("channel_icbc") themselves with State. Safe for concurrent use.
type Switches struct {
	mu sync.RWMutex
	m  map[string]State
}

var _ SwitchSetter = (*Switches)(nil)

// NewSwitches returns switches that are all On.
func NewSwitches() *Switches { return &Switches{m: map[string]State{}} }

// ValidSwitchName reports whether name can name a switch: 1 to 5 dot-separated parts of
// 1 to 64 letters, digits, '_' or '-'.
func ValidSwitchName(name string) bool { return switchNamePattern.MatchString(name) }

// Set implements SwitchSetter.
func (s *Switches) Set(name string, state State) error {
	if !ValidSwitchName(name) {
		return fmt.Errorf("switch name %q must be 1 to 5 dot-separated parts of letters, digits, _ and -", clip(name))
	}
	if _, err := ParseState(string(state)); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if state == On {
		delete(s.m, name)
	} else {
		s.m[name] = state
	}
	return nil
}

// Delete implements SwitchSetter.
func (s *Switches) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
}

// State returns the state of switch name (On if nobody set it).
func (s *Switches) State(name string) State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if st, ok := s.m[name]; ok {
		return st
	}
	return On
}

// All returns the switches that are not On.
func (s *Switches) All() map[string]State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.m)
}

// ForScope returns the state that applies to a route needing scope, and whether that state
// refuses the route: scope "<module>:write" is refused when the module is Degraded or Off,
// "<module>:read" only when it is Off. Admin and public routes are never refused, so that
// operators can always turn a switch back.
func (s *Switches) ForScope(scope string) (module string, state State, refused bool) {
	module, access, ok := strings.Cut(scope, ":")
	if !ok {
		return "", On, false
	}
	state = s.State(module)
	switch state {
	case Off:
		return module, state, true
	case Degraded:
		return module, state, access != "read"
	}
	return module, state, false
}
