// The rest of the package is the slot table: the node that owns each slot
// and the nodes that hold its replicas. The raft leader computes a table
// whenever the members change, from the members and the table in force, and
// proposes its encoding:
//
//	next, err := ring.Compute(members, replicas, current)
//	entry, _ := next.MarshalBinary()
//
// and every node serves the table raft committed:
//
//	var t ring.Table
//	err := t.UnmarshalBinary(entry)
//	owner := t.Owner(ring.KeySlot(key))
//
// As in groupcache's consistenthash, each node puts virtual points on a ring
// (Points per unit of weight, hashed with xxhash) and a slot goes to the first
// node clockwise. Two things are added. Loads are bounded, after Mirrokni,
// Thorup and Zadimoghaddam's "Consistent Hashing with Bounded Loads": a node
// that holds its share passes a slot on to the next node clockwise (see Slack).
// And the table in force is honoured: a slot moves only when its owner left,
// is over its bound, or a joining node claims it (see Compute). Bounded loads
// alone would move two to three times 1/N of the slots per join or leave from
// 100 nodes up (the last column); honouring the table brings that to 1/N:
//
//	nodes  most loaded   a join moves   a leave moves   without the table in force
//	       / mean        × Slots/N      × Slots/N       join, leave × Slots/N
//	    3  1.000         0.750          1.000           0.77, 1.10
//	   10  1.000         0.909          1.000           1.02, 1.17
//	  100  1.001         0.995          1.001           2.36, 2.50
//	 1000  1.038         1.038          1.038           2.32, 2.81
//
// (go test -v -run 'Balance|Movement' ./ring prints these.) A leave moves only
// the leaver's slots, each to its first replica when that one is within its
// bound, so taking over a dead node's slots copies no data (only the new
// replicas need a copy); a join moves only what the newcomer takes.
//
// Costs: Compute takes about 1 ms for 3 nodes, 5 ms for 100 and 30 ms for
// 1,000 on one core, and holds 16 bytes per virtual point while it runs. A
// Table holds about 290 KiB plus 290 KiB per replica, so that Owner and
// Replicas are one index with no allocation, and encodes in 1.5 KiB for 3
// nodes, 38 KiB for 100 and 86 KiB for 1,000.
package ring

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Member is a node as the ring sees it: a name and a relative size.
type Member struct {
	// ID names the node. It must be unique and non-empty. It is what gets
	// hashed onto the ring, so renaming a node moves its slots as a leave
	// and a join would.
	ID string
	// Weight is the node's share of slots relative to the other members:
	// a node of weight 2 owns and replicates about twice as many slots as
	// one of weight 1. Zero counts as 1, so the zero Member{ID: id} is an
	// ordinary node. Each unit of weight costs Points virtual points.
	Weight int
}

func (m Member) weight() int {
	if m.Weight == 0 {
		return 1
	}
	return m.Weight
}

// Limits on what Compute accepts. They bound the work and memory of one
// Compute (Points virtual points per unit of weight) and of decoding a table
// from untrusted bytes.
const (
	// MaxTotalWeight bounds the sum of the members' weights, and so the
	// number of members: 4096 nodes of weight 1 are Points×4096 = 1M virtual
	// points, about 16 MiB and a few hundred milliseconds of one core per
	// Compute. Past it each node would own a handful of slots, and balance in
	// slots would no longer mean balance in keys.
	MaxTotalWeight = 4096
	// MaxWeight is the largest Weight: a node 64 times the smallest.
	MaxWeight = 64
	// MaxReplicas is the largest number of extra copies per slot. Every copy
	// costs a write to one more node on every write.
	MaxReplicas = 8
)

// Errors of Compute, which wraps them with the offending value, and of
// UnmarshalBinary. Test for them with errors.Is.
var (
	// ErrDuplicateID: two members have the same ID.
	ErrDuplicateID = errors.New("ring: duplicate member ID")
	// ErrEmptyID: a member's ID is "".
	ErrEmptyID = errors.New("ring: empty member ID")
	// ErrWeight: a member's Weight is negative or above MaxWeight.
	ErrWeight = fmt.Errorf("ring: weight outside [0, %d]", MaxWeight)
	// ErrTooMany: the weights add up to more than MaxTotalWeight.
	ErrTooMany = fmt.Errorf("ring: total weight above %d", MaxTotalWeight)
	// ErrReplicas: replicas is negative or above MaxReplicas.
	ErrReplicas = fmt.Errorf("ring: replicas outside [0, %d]", MaxReplicas)
	// ErrBadEncoding: UnmarshalBinary was given bytes that are not a table.
	ErrBadEncoding = errors.New("ring: malformed table encoding")
)

// Table is an agreed assignment of every slot to one owner (the primary)
// and the same number of replicas each, with the epoch that orders tables.
// Tables come from Compute or UnmarshalBinary and are not changed afterwards,
// so any number of goroutines may read one. The zero Table has no members.
type Table struct {
	// Epoch orders tables: Compute sets it to prev.Epoch+1 when the table
	// differs from prev, prev.Epoch when it does not, and 1 without prev;
	// the encoding keeps it. A node applying tables from raft should ignore
	// one whose epoch is not above the one it serves.
	Epoch uint64

	members []Member // sorted by ID, Weight normalised to ≥ 1
	k       int      // replicas per slot: min(requested, len(members)-1)

	owner  [Slots]uint16 // index into members
	repIdx []uint16      // Slots×k indexes into members, slot-major
	// repID holds the same as repIdx as strings, so that Replicas is a
	// slice expression with no allocation. Owner, on every command's path,
	// reads owner (32 KiB, which stays in cache) and members instead of a
	// string per slot (256 KiB, which did not: 9% of a pipelined GET).
	repID []string
}

// Owner returns the ID of the node that owns slot, or "" when the table has
// no members. It panics if slot ≥ Slots, as indexing an array would.
func (t *Table) Owner(slot uint16) string {
	if len(t.members) == 0 {
		return ""
	}
	return t.members[t.owner[slot]].ID
}

// Replicas returns the IDs of the nodes that hold copies of slot, in the
// order they should be promoted when the owner is lost. They are distinct and
// never include the owner. There are min(replicas, members−1) of them, so none
// with one member. The slice is shared by every caller and must not be
// modified; it is returned without allocating because every write consults it.
func (t *Table) Replicas(slot uint16) []string {
	i := int(slot) * t.k
	return t.repID[i : i+t.k : i+t.k]
}

// SlotsOf returns the slots owned by the node id in ascending order, or nil
// when it owns none or is not a member.
func (t *Table) SlotsOf(id string) []uint16 {
	n, ok := t.index(id)
	if !ok {
		return nil
	}
	var slots []uint16
	for s, o := range t.owner {
		if int(o) == n {
			slots = append(slots, uint16(s))
		}
	}
	return slots
}

// Members returns the members the table was computed for, sorted by ID, each
// with its effective weight (at least 1).
func (t *Table) Members() []Member {
	return slices.Clone(t.members)
}

// ReplicaCount returns the number of replicas every slot has:
// min(requested replicas, members − 1), and 0 for an empty table.
func (t *Table) ReplicaCount() int {
	return t.k
}

// Size is the number of members.
func (t *Table) Size() int { return len(t.members) }

// Has reports whether id is a member of the table.
func (t *Table) Has(id string) bool {
	_, ok := t.index(id)
	return ok
}

// Holds reports whether id holds slot: owns it or is one of its replicas.
// A nil table holds nothing.
func (t *Table) Holds(id string, slot uint16) bool {
	if t == nil {
		return false
	}
	return t.Owner(slot) == id || slices.Contains(t.Replicas(slot), id)
}

func (t *Table) index(id string) (int, bool) {
	return slices.BinarySearchFunc(t.members, id, func(m Member, id string) int {
		return strings.Compare(m.ID, id)
	})
}

// sameAssignment reports whether t and u assign every slot to the same
// members in the same order.
func (t *Table) sameAssignment(u *Table) bool {
	return t.k == u.k && slices.Equal(t.members, u.members) &&
		t.owner == u.owner && slices.Equal(t.repIdx, u.repIdx)
}

// fillIDs derives repID from the index form.
func (t *Table) fillIDs() {
	if len(t.members) == 0 {
		return
	}
	t.repID = make([]string, len(t.repIdx))
	for i, r := range t.repIdx {
		t.repID[i] = t.members[r].ID
	}
}
