package corrplan

// fifoValues maps values to where they were issued and lets go of the
// oldest first: a session's values and the recent ones across sessions.
// It is what a map and a queue of its keys did, in one open-addressing
// table keyed by the value's hash (a vkey is one already) with a ring of
// the keys in insertion order. A value issued again keeps its place.
//
// With the map, the survey's steady churn (each new value in, the oldest
// out) cost two hashings and a probe through the map's deleted slots per
// value and table; here removal shifts the following entries back, so a
// look-up stops at the first empty slot.
type fifoValues struct {
	slots []fifoSlot // len a power of two, at most 3/4 full; key 0 is empty
	order []vkey     // insertion order from head
	head  int
	n     int
	ver   uint64 // changed by every change of what the table holds
	// evictions counts the values let go of (see issueBody)
	evictions uint64
}

type fifoSlot struct {
	key vkey
	o   *origin
}

// slotKey is the table's key for v: 0 marks an empty slot, so a value
// hashing to 0 is kept as 1 (one more chance of sharing a hash, of
// 2^-64).
func slotKey(v vkey) vkey { return max(v, 1) }

func (f *fifoValues) len() int { return f.n }

// get returns where v was issued.
func (f *fifoValues) get(v vkey) (*origin, bool) {
	if f.n == 0 {
		return nil, false
	}
	k := slotKey(v)
	mask := len(f.slots) - 1
	for i := int(k) & mask; ; i = (i + 1) & mask {
		switch f.slots[i].key {
		case k:
			return f.slots[i].o, true
		case 0:
			return nil, false
		}
	}
}

// put sets where v was issued; it reports whether v is new.
func (f *fifoValues) put(v vkey, o *origin) bool {
	if 4*(f.n+1) > 3*len(f.slots) {
		f.grow()
	}
	k := slotKey(v)
	mask := len(f.slots) - 1
	for i := int(k) & mask; ; i = (i + 1) & mask {
		switch f.slots[i].key {
		case k:
			if f.slots[i].o != o {
				f.slots[i].o = o
				f.ver++
			}
			return false
		case 0:
			f.slots[i] = fifoSlot{k, o}
			f.n++
			f.ver++
			f.order = append(f.order, k)
			return true
		}
	}
}

// evict lets go of the oldest value.
func (f *fifoValues) evict() {
	if f.n == 0 {
		return
	}
	k := f.order[f.head]
	f.head++
	if f.head > 64 && 2*f.head > len(f.order) {
		f.order = f.order[:copy(f.order, f.order[f.head:])]
		f.head = 0
	}
	mask := len(f.slots) - 1
	i := int(k) & mask
	for f.slots[i].key != k {
		i = (i + 1) & mask
	}
	// Shift back each following entry that may sit at i, so that no
	// probe meets a hole before its key.
	for j := (i + 1) & mask; f.slots[j].key != 0; j = (j + 1) & mask {
		home := int(f.slots[j].key) & mask
		if (j-home)&mask >= (j-i)&mask {
			f.slots[i] = f.slots[j]
			i = j
		}
	}
	f.slots[i] = fifoSlot{}
	f.n--
	f.ver++
	f.evictions++
}

func (f *fifoValues) grow() {
	old := f.slots
	f.slots = make([]fifoSlot, max(8, 2*len(old)))
	mask := len(f.slots) - 1
	for _, s := range old {
		if s.key == 0 {
			continue
		}
		i := int(s.key) & mask
		for f.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		f.slots[i] = s
	}
}
