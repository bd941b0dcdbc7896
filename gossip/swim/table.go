package swim

import (
	"hash/fnv"
	"slices"
	"sort"
)

// ID names a member: a libp2p peer ID's bytes in the node, any string in
// tests and the simulator.
type ID string

// ringKey is a member's place on the ring: a hash of its ID, so places are
// uniform whatever the IDs look like.
func ringKey(id ID) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// Table is an immutable members table in ring order. Cores may share one
// as the starting point of their own tables (a core records only how its
// view differs), which is how a simulator holds 10,000 views of 10,000
// members in little memory.
type Table struct {
	entries []Entry
	keys    []uint64
	index   map[ID]int
	live    int // entries alive or suspect
}

// NewTable returns a table of entries (a later duplicate ID wins).
func NewTable(entries []Entry) *Table {
	byID := map[ID]Entry{}
	for _, e := range entries {
		byID[e.ID] = e
	}
	t := &Table{index: make(map[ID]int, len(byID))}
	for _, e := range byID {
		t.entries = append(t.entries, e)
	}
	sortRing(t.entries)
	for i, e := range t.entries {
		t.keys = append(t.keys, ringKey(e.ID))
		t.index[e.ID] = i
		if live(e.State) {
			t.live++
		}
	}
	return t
}

// Len is the number of entries.
func (t *Table) Len() int { return len(t.entries) }

func sortRing(es []Entry) {
	sort.Slice(es, func(i, j int) bool { return ringLess(es[i].ID, es[j].ID) })
}

func ringLess(a, b ID) bool {
	ka, kb := ringKey(a), ringKey(b)
	if ka != kb {
		return ka < kb
	}
	return a < b
}

// extraRing is the sorted list of members a core knows that its base
// table does not.
type extraRing struct {
	ids  []ID
	keys []uint64
}

func (r *extraRing) insert(id ID) {
	i := sort.Search(len(r.ids), func(i int) bool { return !ringLess(r.ids[i], id) })
	if i < len(r.ids) && r.ids[i] == id {
		return
	}
	r.ids = slices.Insert(r.ids, i, id)
	r.keys = slices.Insert(r.keys, i, ringKey(id))
}

func (r *extraRing) remove(id ID) {
	i := sort.Search(len(r.ids), func(i int) bool { return !ringLess(r.ids[i], id) })
	if i < len(r.ids) && r.ids[i] == id {
		r.ids = slices.Delete(r.ids, i, i+1)
		r.keys = slices.Delete(r.keys, i, i+1)
	}
}
