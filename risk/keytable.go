package risk

// keyTable holds the key values of a shard and their window states. It is keyed by the
// 64-bit hash of the key field and value that also picks the shard (keyHash), so a look-up
// hashes nothing more and its map holds no strings; the key value is kept in its keyStates and
// compared there, and values whose hashes collide are chained.
type keyTable struct {
	m map[uint64]*keyStates
}

func newKeyTable() keyTable { return keyTable{m: make(map[uint64]*keyStates)} }

// get returns the states of key value key of field fid, whose hash is h; nil if it has none.
func (t keyTable) get(h uint64, fid int32, key string) *keyStates {
	for ks := t.m[h]; ks != nil; ks = ks.next {
		if ks.fid == fid && ks.key == key {
			return ks
		}
	}
	return nil
}

// add adds ks, a key value with hash h that get does not find.
func (t keyTable) add(h uint64, ks *keyStates) {
	ks.next = t.m[h]
	t.m[h] = ks
}

// filter calls keep for every key value and removes those it answers false for.
func (t keyTable) filter(keep func(*keyStates) bool) {
	for h, head := range t.m {
		var first, last *keyStates
		for ks := head; ks != nil; {
			next := ks.next
			ks.next = nil
			if keep(ks) {
				if last == nil {
					first = ks
				} else {
					last.next = ks
				}
				last = ks
			}
			ks = next
		}
		switch {
		case first == nil:
			delete(t.m, h)
		case first != head:
			t.m[h] = first
		}
	}
}

// each calls f for every key value.
func (t keyTable) each(f func(*keyStates)) {
	for _, head := range t.m {
		for ks := head; ks != nil; ks = ks.next {
			f(ks)
		}
	}
}
