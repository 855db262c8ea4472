package ring

import (
	"fmt"
	"slices"
	"strings"
)

// Compute returns the slot table for members, with replicas extra copies of
// every slot, or an error if a member's ID is empty or repeated or a limit is
// exceeded. The order of members does not matter. With replicas ≥ N−1 every
// slot is replicated on every other node.
//
// Without prev, or with a prev that has no members, it is consistent hashing
// with bounded loads: slot s sits at s/Slots of the way round a ring of
// Points virtual points per unit of weight, hashed with xxhash, and goes to
// the first node clockwise under its placing bound (see Slack); its replicas
// are the next distinct nodes clockwise under theirs. The same members and
// replicas give the same table, on any platform.
//
// Given prev, the table in force, Compute moves only what it must. Bounded
// loads alone cascade: a node that fills up sooner pushes slots on to the
// next node, which pushes others on in turn, and with tens of slots per node
// a join or leave then moves two to three times the 1/N of the slots it
// should. So with prev a slot stays with its owner unless
//   - the owner left: the slot goes to its first surviving replica, which has
//     the data, if that one is within its keeping bound, and otherwise to the
//     first node clockwise with room;
//   - the owner is over its keeping bound (the shares shrank when the cluster
//     grew): it sheds first the slots whose first node clockwise is another;
//   - a node joined or gained weight: it claims slots up to its share, each
//     from the node then most above its share, and of that node's slots the
//     one nearest clockwise to the new node's points.
//
// Replicas stay likewise: a place is given up only by a node that left, by
// the slot's new owner, to a joining node's claim, or over the keeping bound;
// a free place goes first to the slot's former owner, which has the data.
//
// The result is still a pure function, of (members, replicas, prev), but it
// depends on the history of tables and not only on the current members: a
// follower must serve the table raft committed, not recompute one. What this
// buys is measured by the package tests: a join or leave of one of N nodes
// moves at most 1.1×Slots/N owners, and a cluster grown one join at a time
// stays even: at 100 nodes every node owns between 0.99 and 1.01 times the
// mean.
//
// The table's Epoch is prev.Epoch+1 when the assignment differs from prev's,
// prev.Epoch when it does not, and 1 without prev.
func Compute(members []Member, replicas int, prev *Table) (*Table, error) {
	if replicas < 0 || replicas > MaxReplicas {
		return nil, fmt.Errorf("%w: %d", ErrReplicas, replicas)
	}
	ms := slices.Clone(members)
	total := 0
	for i := range ms {
		if ms[i].ID == "" {
			return nil, ErrEmptyID
		}
		if ms[i].Weight < 0 || ms[i].Weight > MaxWeight {
			return nil, fmt.Errorf("%w: %q has %d", ErrWeight, ms[i].ID, ms[i].Weight)
		}
		ms[i].Weight = ms[i].weight()
		total += ms[i].Weight
	}
	if total > MaxTotalWeight {
		return nil, fmt.Errorf("%w: %d", ErrTooMany, total)
	}
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	for i := 1; i < len(ms); i++ {
		if ms[i].ID == ms[i-1].ID {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateID, ms[i].ID)
		}
	}

	t := &Table{members: ms}
	if len(ms) > 0 {
		t.k = min(replicas, len(ms)-1)
		r := newHashRing(ms)
		var h *history
		if prev != nil && len(prev.members) > 0 {
			h = newHistory(t, prev)
		}
		t.placeOwners(r, h)
		t.placeReplicas(r, h)
		t.fillIDs()
	}
	t.Epoch = 1
	if prev != nil {
		t.Epoch = prev.Epoch
		if !t.sameAssignment(prev) {
			t.Epoch++
		}
	}
	return t, nil
}

const none = -1

// history is the previous table as seen from the new member list.
type history struct {
	prev *Table
	// old maps prev's member indexes to the new ones, or to none for
	// members that left.
	old []int32
	// growing marks the members that joined or gained weight.
	growing []bool
}

func newHistory(t *Table, prev *Table) *history {
	h := &history{prev: prev, old: make([]int32, len(prev.members)), growing: make([]bool, len(t.members))}
	for n := range h.growing {
		h.growing[n] = true
	}
	for i, m := range prev.members {
		n, ok := t.index(m.ID)
		if !ok {
			h.old[i] = none
			continue
		}
		h.old[i] = int32(n)
		h.growing[n] = t.members[n].Weight > m.Weight
	}
	return h
}

// owner returns slot s's previous owner, or none if it left.
func (h *history) owner(s int) int32 { return h.old[h.prev.owner[s]] }

// replica returns slot s's i-th previous replica, or none if it left.
func (h *history) replica(s, i int) int32 { return h.old[h.prev.repIdx[s*h.prev.k+i]] }

// placeOwners fills t.owner: by bounded loads alone without history, and
// keeping what it can of it otherwise (see Compute).
func (t *Table) placeOwners(r *hashRing, h *history) {
	f := newFiller(r, t.members, Slots)
	if h == nil {
		for s := range Slots {
			n := f.walk(s)
			t.owner[s] = uint16(n)
			f.take(n)
		}
		return
	}

	var owner [Slots]int32
	for s := range owner {
		owner[s] = none
	}
	assign := func(s int, n int32) {
		owner[s] = n
		f.take(n)
	}
	held := make([]int32, len(t.members))
	for s := range Slots {
		if p := h.owner(s); p != none {
			held[p]++
		}
	}
	// Joining nodes claim their share from the most loaded surviving owners.
	c := newClaimer(r, t.members, Slots, held)
	for x, g := range h.growing {
		if !g {
			continue
		}
		c.claim(int32(x), f.cap[x]-held[x]-f.load[x], func(s uint16, dst []int32) []int32 {
			if p := h.owner(int(s)); owner[s] == none && p != none && p != int32(x) {
				dst = append(dst, p)
			}
			return dst
		}, func(s uint16, _ int32) bool {
			assign(int(s), int32(x))
			return true
		})
	}
	// Surviving owners keep the rest up to their keeping bound, the slots
	// whose first node they are first, so that what they shed is what sits
	// furthest from their points.
	for _, atFirst := range []bool{true, false} {
		for s := range Slots {
			if p := h.owner(s); owner[s] == none && p != none && (r.first(s) == p) == atFirst && f.keeps(p) {
				assign(s, p)
			}
		}
	}
	// The slots of owners that left go to their first surviving replica up
	// to its keeping bound, not its placing bound: taking over a slot whose
	// data it has costs no copy.
	for s := range Slots {
		if owner[s] != none || h.owner(s) != none {
			continue
		}
		for i := range h.prev.k {
			if n := h.replica(s, i); n != none && f.keeps(n) {
				assign(s, n)
				break
			}
		}
	}
	// What is left walks the ring under the placing bound.
	for s := range Slots {
		if owner[s] == none {
			assign(s, f.walk(s))
		}
	}
	for s, n := range owner {
		t.owner[s] = uint16(n)
	}
}

// placeReplicas fills t.repIdx once t.owner is set: the next distinct nodes
// clockwise under their bound without history, keeping what it can of it
// otherwise (see Compute).
func (t *Table) placeReplicas(r *hashRing, h *history) {
	k := t.k
	t.repIdx = make([]uint16, Slots*k)
	if k == 0 {
		return
	}
	if k == len(t.members)-1 {
		// Every other node: only the order, clockwise, is left to choose.
		var others []int32
		for s := range Slots {
			others = r.distinct(others[:0], s, k, []int32{int32(t.owner[s])})
			for i, n := range others {
				t.repIdx[s*k+i] = uint16(n)
			}
		}
		return
	}

	f := newFiller(r, t.members, Slots*k)
	// sets holds, for each slot, its owner and then its replicas so far.
	sets := make([]int32, Slots*(k+1))
	size := make([]int, Slots)
	for s := range Slots {
		sets[s*(k+1)] = int32(t.owner[s])
		size[s] = 1
	}
	set := func(s int) []int32 { return sets[s*(k+1) : s*(k+1)+size[s]] }
	add := func(s int, n int32) {
		sets[s*(k+1)+size[s]] = n
		size[s]++
		f.take(n)
	}

	if h != nil {
		pk := h.prev.k
		// live returns the i-th previous replica of s if it may stay one:
		// it is still a member and not the slot's new owner.
		live := func(s, i int) int32 {
			if n := h.replica(s, i); n != int32(t.owner[s]) {
				return n
			}
			return none
		}
		held := make([]int32, len(t.members))
		for s := range Slots {
			for i := range pk {
				if n := live(s, i); n != none {
					held[n]++
				}
			}
		}
		dropped := make([]bool, Slots*pk) // places given up to a claim
		// claimed holds the claimants of slot s at claimed[s*k:s*k+nclaims[s]].
		claimed := make([]int32, Slots*k)
		nclaims := make([]int, Slots)
		claims := func(s int) []int32 { return claimed[s*k : s*k+nclaims[s]] }
		c := newClaimer(r, t.members, Slots*k, held)
		for x, g := range h.growing {
			if !g {
				continue
			}
			x := int32(x)
			c.claim(x, f.cap[x]-held[x]-f.load[x], func(s uint16, dst []int32) []int32 {
				if x == int32(t.owner[s]) {
					return dst
				}
				n0 := len(dst)
				for i := range pk {
					switch n := live(int(s), i); {
					case n == x:
						return dst[:n0]
					case n != none && !dropped[int(s)*pk+i]:
						dst = append(dst, n)
					}
				}
				return dst
			}, func(s uint16, from int32) bool {
				if nclaims[s] == k || slices.Contains(claims(int(s)), x) {
					return false
				}
				for i := range pk {
					if j := int(s)*pk + i; !dropped[j] && live(int(s), i) == from {
						dropped[j] = true
						break
					}
				}
				claimed[int(s)*k+nclaims[s]] = x
				nclaims[s]++
				f.take(x)
				return true
			})
		}
		keep := func(s int, n int32) {
			if n != none && size[s]-1 < k-nclaims[s] && !slices.Contains(set(s), n) &&
				!slices.Contains(claims(s), n) && f.keeps(n) {
				add(s, n)
			}
		}
		for s := range Slots {
			for i := range pk {
				if !dropped[s*pk+i] {
					keep(s, live(s, i))
				}
			}
		}
		for s := range Slots {
			keep(s, h.owner(s))
		}
		for s := range Slots {
			for _, n := range claims(s) {
				sets[s*(k+1)+size[s]] = n
				size[s]++
			}
		}
	}
	for s := range Slots {
		for size[s] <= k {
			add(s, f.pick(s, set(s)))
		}
		for i, n := range set(s)[1:] {
			t.repIdx[s*k+i] = uint16(n)
		}
	}
}
