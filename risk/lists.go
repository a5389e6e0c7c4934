package risk

import "sync"

// listSet is the in-memory copy of the lists, read by in_list on every decision.
type listSet struct {
	mu    sync.RWMutex
	items map[string]map[string]struct{}
}

func newListSet() *listSet { return &listSet{items: map[string]map[string]struct{}{}} }

func (l *listSet) load(m map[string][]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, items := range m {
		set := make(map[string]struct{}, len(items))
		for _, it := range items {
			set[it] = struct{}{}
		}
		l.items[name] = set
	}
}

// Contains reports whether list holds value.
func (l *listSet) Contains(list, value string) bool {
	l.mu.RLock()
	_, ok := l.items[list][value]
	l.mu.RUnlock()
	return ok
}

func (l *listSet) add(list string, items []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.items[list]
	if set == nil {
		set = map[string]struct{}{}
		l.items[list] = set
	}
	for _, it := range items {
		set[it] = struct{}{}
	}
}

func (l *listSet) remove(list string, items []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, it := range items {
		delete(l.items[list], it)
	}
}

func (l *listSet) size(list string) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.items[list])
}
