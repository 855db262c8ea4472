package ring

import (
	"container/heap"
	"slices"
)

// Slack is ε of consistent hashing with bounded loads, in percent. A node
// whose weight is the fraction f of the total has a share of f×Slots slots
// (f×k×Slots replica places with k replicas) and two bounds on it:
//
//   - placing: a slot that must find a new node goes to the first node
//     clockwise holding fewer than ⌈share⌉: Mirrokni et al.'s rule with
//     c = 1, so no node of a fresh table owns more than its share rounded up;
//   - keeping: a node keeps what it holds as long as it holds at most
//     ⌊share×(1+ε)⌋ (and never has to shed below ⌈share⌉).
//
// The gap between the two is what lets a join or leave move only what it
// must: a node that gains slots because a replica was promoted, or whose
// share shrank because the cluster grew, keeps them instead of passing them
// on, until it is ε over its share. A larger ε would move fewer slots over a
// run of joins and leaves, but let the most loaded node own (1+ε)× its share;
// 10% is the most the balance target (1.1× the mean) allows. Placing with
// c = 1+ε as well, as the paper does, would fill nodes up to the keeping
// bound and leave no gap: with tens of slots per node ⌈(1+ε)×share⌉ and
// ⌊(1+ε)×share⌋ are the same whole number, and a join that lowers it by one
// would make every node at it shed a slot: placing up to ⌈1.09×share⌉, a
// join to 992 nodes moved 23 times Slots/N.
const Slack = 10

// bounds returns every member's total×w/W×(100+pct)/100, rounded up or
// down, in integers so that every platform computes the same table.
func bounds(members []Member, total, pct int, up bool) []int32 {
	w := 0
	for _, m := range members {
		w += m.Weight
	}
	b := make([]int32, len(members))
	for n, m := range members {
		num := total * m.Weight * (100 + pct)
		den := w * 100
		if up {
			num += den - 1
		}
		b[n] = int32(num / den)
	}
	return b
}

// filler hands out one kind of place (owned slots, or replica places) and
// keeps count of who holds how many. Walks go clockwise to the first node
// with room; the points of nodes without room are unlinked in a union-find,
// so a walk skips any run of them in amortised constant time.
type filler struct {
	r     *hashRing
	next  []int32 // next[p] == p while p's node has room
	load  []int32
	cap   []int32 // the placing bound: room while load < cap
	bound []int32 // the keeping bound: keeps while load < bound
	full  []bool  // load ≥ cap, and its points are unlinked
	nfull int
}

func newFiller(r *hashRing, members []Member, total int) *filler {
	f := &filler{
		r:     r,
		next:  make([]int32, len(r.points)),
		load:  make([]int32, len(members)),
		cap:   bounds(members, total, 0, true),
		bound: bounds(members, total, Slack, false),
		full:  make([]bool, len(members)),
	}
	for n := range f.bound {
		f.bound[n] = max(f.bound[n], f.cap[n])
	}
	for i := range f.next {
		f.next[i] = int32(i)
	}
	return f
}

// room reports whether n may be given a place.
func (f *filler) room(n int32) bool { return f.load[n] < f.cap[n] }

// keeps reports whether n may keep one more of the places it held.
func (f *filler) keeps(n int32) bool { return f.load[n] < f.bound[n] }

// take counts one more place for n.
func (f *filler) take(n int32) {
	f.load[n]++
	if !f.full[n] && f.load[n] >= f.cap[n] {
		f.full[n] = true
		f.nfull++
		for _, p := range f.r.byNode[f.r.start[n]:f.r.start[n+1]] {
			f.next[p] = f.r.after(p)
		}
	}
}

// find returns the first point at or after p whose node has room. Some node
// must have room.
func (f *filler) find(p int32) int32 {
	for f.next[p] != p {
		f.next[p] = f.next[f.next[p]]
		p = f.next[p]
	}
	return p
}

// walk returns the first node clockwise from slot s that has room.
func (f *filler) walk(s int) int32 { return f.r.points[f.find(f.r.cover[s])].node }

// pick returns the first node clockwise from slot s that has room and is not
// in excl. When every node with room is in excl it returns the first node not
// in excl, over its bound: the replica rules (distinct, never the owner) can
// leave no other choice, at most a few places at the end of a walk.
func (f *filler) pick(s int, excl []int32) int32 {
	roomy := len(f.load) - f.nfull
	for _, n := range excl {
		if f.room(n) {
			roomy--
		}
	}
	if roomy > 0 {
		for p := f.r.cover[s]; ; p = f.r.after(p) {
			p = f.find(p)
			if n := f.r.points[p].node; !slices.Contains(excl, n) {
				return n
			}
		}
	}
	var one [1]int32
	return f.r.distinct(one[:0], s, 1, excl)[0]
}

// claimer hands a joining node places from the nodes most above their share.
// Taking from the most loaded, rather than from whoever holds the slots at the
// new node's points, keeps every node close to its share as the cluster
// grows, so that the keep bound, which falls with every join, seldom forces a
// node to shed.
type claimer struct {
	r       *hashRing
	members []Member
	weights int64
	total   int64   // the places to share out: Slots, or Slots×k
	held    []int32 // places each node holds and may give up
	near    []uint16
	dist    []uint16
	list    []uint16 // candidate slots, grouped by holder, nearest first
	start   []int32  // holder n's candidates are list[start[n]:start[n+1]]
	next    []int32
	heap    holderHeap
}

func newClaimer(r *hashRing, members []Member, total int, held []int32) *claimer {
	c := &claimer{
		r:       r,
		members: members,
		total:   int64(total),
		held:    held,
		start:   make([]int32, len(members)+1),
		next:    make([]int32, len(members)),
	}
	for _, m := range members {
		c.weights += int64(m.Weight)
	}
	c.heap.c = c
	return c
}

// excess is how far node n holds more than its share, scaled by the sum of
// weights to stay in integers.
func (c *claimer) excess(n int32) int64 {
	return int64(c.held[n])*c.weights - c.total*int64(c.members[n].Weight)
}

// claim gives x up to want places. holders appends to dst the nodes that
// hold a place at slot s that x may take; give hands x the place of from at
// s, or reports false when x may no longer take one at s. Each place comes
// from the node most above its share (ties to the lower index), and is that
// node's place nearest clockwise to one of x's points, so that x's slots are
// mostly the ones at its own points.
func (c *claimer) claim(x, want int32, holders func(s uint16, dst []int32) []int32, give func(s uint16, from int32) bool) {
	if want <= 0 {
		return
	}
	c.near, c.dist = c.r.nearest(c.near, c.dist, x)
	var hs []int32
	clear(c.start)
	for _, s := range c.near {
		hs = holders(s, hs[:0])
		for _, h := range hs {
			c.start[h+1]++
		}
	}
	for n := range c.members {
		c.start[n+1] += c.start[n]
	}
	c.list = slices.Grow(c.list[:0], int(c.start[len(c.members)]))[:c.start[len(c.members)]]
	copy(c.next, c.start)
	for _, s := range c.near {
		hs = holders(s, hs[:0])
		for _, h := range hs {
			c.list[c.next[h]] = s
			c.next[h]++
		}
	}
	copy(c.next, c.start)

	c.heap.nodes = c.heap.nodes[:0]
	for n := range c.members {
		if c.start[n+1] > c.start[n] && c.excess(int32(n)) > 0 {
			c.heap.nodes = append(c.heap.nodes, int32(n))
		}
	}
	heap.Init(&c.heap)
	for want > 0 && c.heap.Len() > 0 {
		o := c.heap.nodes[0]
		s := c.list[c.next[o]]
		c.next[o]++
		if give(s, o) {
			c.held[o]--
			want--
		}
		if c.next[o] == c.start[o+1] || c.excess(o) <= 0 {
			heap.Pop(&c.heap)
		} else {
			heap.Fix(&c.heap, 0)
		}
	}
}

// holderHeap orders nodes by excess, largest first, then by index.
type holderHeap struct {
	c     *claimer
	nodes []int32
}

func (h *holderHeap) Len() int { return len(h.nodes) }

func (h *holderHeap) Less(i, j int) bool {
	a, b := h.nodes[i], h.nodes[j]
	if ea, eb := h.c.excess(a), h.c.excess(b); ea != eb {
		return ea > eb
	}
	return a < b
}

func (h *holderHeap) Swap(i, j int) { h.nodes[i], h.nodes[j] = h.nodes[j], h.nodes[i] }

func (h *holderHeap) Push(x any) { h.nodes = append(h.nodes, x.(int32)) }

func (h *holderHeap) Pop() any {
	n := h.nodes[len(h.nodes)-1]
	h.nodes = h.nodes[:len(h.nodes)-1]
	return n
}
