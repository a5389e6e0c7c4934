package risk

// Hooks for the external tests.

// SetShareLanes turns the sharing of window states within lanes on or off (for rule sets
// installed afterwards).
func SetShareLanes(on bool) { shareLanes = on }

// SharedSlots counts the features' states that live in a state shared with other features.
func SharedSlots(e *Engine) int {
	n := 0
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		sh.keys.each(func(ks int32) {
			for i := range sh.keys.slotsOf(ks) {
				if sh.keys.cell(ks, i).Members() > 1 {
					n++
				}
			}
		})
		sh.mu.Unlock()
	}
	return n
}
