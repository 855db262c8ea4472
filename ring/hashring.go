package ring

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Points is the number of virtual points each unit of weight puts on the
// hash ring. Owner balance and movement do not depend on it: the bounds (see
// Slack) and the table in force (see Compute) enforce them. More points cut
// each node's share into more, smaller arcs with different neighbours, and
// that spreads a failover: when a node leaves, its slots go to the replicas
// that follow its arcs. In a 30-node cluster grown by joins the survivor that
// gains most takes 7% of the leaver's slots with 256 points, and 14% with 64
// (3.4% would be even). The price is ranges: every arc cuts the slots into
// one more range of slots with the same owner and replicas, and CLUSTER
// SLOTS, SHARDS and NODES list every range, as the encoding stores them. A
// 10-node cluster grown by joins has 3,400 ranges with 256 points and 1,000
// with 64. Each point also costs Compute 16 bytes, a hash and a sort step:
// 1,000 nodes take about 30 ms of one core with 256 points and 8 ms with 64.
const Points = 256

// point is a virtual point: a position on the ring and the node (an index
// into the sorted members) it belongs to.
type point struct {
	hash uint64
	node int32
}

// hashRing is the ring of one member list, with what placement needs to
// walk it quickly.
type hashRing struct {
	points []point // sorted by hash, then node
	// byNode holds the indexes into points of node n's points, in ring
	// order, at byNode[start[n]:start[n+1]].
	byNode []int32
	start  []int32
	// cover is, for each slot, the first point at or after the slot's
	// position: the slot's first node clockwise.
	cover [Slots]int32
}

// slotPos places slot s at s/Slots of the way round the ring. Even spacing,
// rather than a hash of the slot, keeps neighbouring slots on one node, so a
// table is a few thousand ranges rather than 16384 singletons (CLUSTER SLOTS
// lists ranges, and the encoding stores runs).
func slotPos(s int) uint64 { return uint64(s) << (64 - 14) }

func newHashRing(members []Member) *hashRing {
	total := 0
	for _, m := range members {
		total += m.Weight * Points
	}
	r := &hashRing{points: make([]point, 0, total)}
	var buf []byte
	for n, m := range members {
		for i := range m.Weight * Points {
			// The fixed-width index comes first so that (index, ID) is
			// unambiguous whatever bytes the IDs hold.
			buf = binary.LittleEndian.AppendUint32(buf[:0], uint32(i))
			buf = append(buf, m.ID...)
			r.points = append(r.points, point{xxhash.Sum64(buf), int32(n)})
		}
	}
	r.points = sortPoints(r.points)

	r.start = make([]int32, len(members)+1)
	for _, p := range r.points {
		r.start[p.node+1]++
	}
	for n := range members {
		r.start[n+1] += r.start[n]
	}
	r.byNode = make([]int32, len(r.points))
	next := slices.Clone(r.start[:len(members)])
	for i, p := range r.points {
		r.byNode[next[p.node]] = int32(i)
		next[p.node]++
	}

	p := 0
	for s := range Slots {
		for p < len(r.points) && r.points[p].hash < slotPos(s) {
			p++
		}
		r.cover[s] = int32(p % len(r.points))
	}
	return r
}

// first returns slot s's first node clockwise.
func (r *hashRing) first(s int) int32 { return r.points[r.cover[s]].node }

// after returns the point clockwise after p.
func (r *hashRing) after(p int32) int32 {
	if p++; int(p) == len(r.points) {
		return 0
	}
	return p
}

// distinct appends to dst the first k nodes clockwise from slot s that are
// not in excl. There must be k such nodes.
func (r *hashRing) distinct(dst []int32, s, k int, excl []int32) []int32 {
	n0 := len(dst)
	for p := r.cover[s]; len(dst)-n0 < k; p = r.after(p) {
		if n := r.points[p].node; !slices.Contains(excl, n) && !slices.Contains(dst[n0:], n) {
			dst = append(dst, n)
		}
	}
	return dst
}

// sortPoints sorts points by hash, then node. A counting sort on the top 14
// bits (which slot's arc each point falls in) leaves runs of about
// len(points)/Slots points to sort, five times faster than sorting all at
// once for 1,000 nodes.
func sortPoints(points []point) []point {
	var start [Slots + 1]int32
	for _, p := range points {
		start[p.hash>>50+1]++
	}
	for i := range Slots {
		start[i+1] += start[i]
	}
	out := make([]point, len(points))
	next := start
	for _, p := range points {
		out[next[p.hash>>50]] = p
		next[p.hash>>50]++
	}
	for i := range Slots {
		if run := out[start[i]:start[i+1]]; len(run) > 1 {
			slices.SortFunc(run, func(a, b point) int {
				if c := cmp.Compare(a.hash, b.hash); c != 0 {
					return c
				}
				return cmp.Compare(a.node, b.node)
			})
		}
	}
	return out
}

// nearest returns every slot ordered by how many slot widths it lies before
// node x's next point clockwise, then by slot number: the slots whose first
// node is x come first, nearest first. dist is scratch space, kept by the
// caller between calls.
func (r *hashRing) nearest(dst []uint16, dist []uint16, x int32) ([]uint16, []uint16) {
	pts := r.byNode[r.start[x]:r.start[x+1]]
	dist = slices.Grow(dist[:0], Slots)[:Slots]
	var start [Slots + 1]int32
	j := 0
	for s := range Slots {
		for j < len(pts) && r.points[pts[j]].hash < slotPos(s) {
			j++
		}
		d := uint16((r.points[pts[j%len(pts)]].hash - slotPos(s)) >> 50)
		dist[s] = d
		start[d+1]++
	}
	for i := range Slots {
		start[i+1] += start[i]
	}
	dst = slices.Grow(dst[:0], Slots)[:Slots]
	for s, d := range dist {
		dst[start[d]] = uint16(s)
		start[d]++
	}
	return dst, dist
}
