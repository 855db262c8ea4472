package ring

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The sizes of the targets: the most loaded node owns at most 1.1× the mean,
// and a join or leave of one of N nodes moves at most 1.1×Slots/N owners.
var sizes = []int{3, 10, 100, 1000}

const (
	maxLoad  = 1.1
	maxMoved = 1.1
)

func mean(n int) float64 { return float64(Slots) / float64(n) }

// moves counts what changed between two tables: slots with a new owner,
// slots whose set of replicas changed, and replica places that went to a
// node that was not a replica of the slot before.
func moves(a, b *Table) (owners, sets, places int) {
	for s := range uint16(Slots) {
		if a.Owner(s) != b.Owner(s) {
			owners++
		}
		ra, rb := a.Replicas(s), b.Replicas(s)
		changed := len(ra) != len(rb)
		for _, r := range rb {
			if !slices.Contains(ra, r) {
				places++
				changed = true
			}
		}
		if changed {
			sets++
		}
	}
	return owners, sets, places
}

func loadRange(tab *Table) (lo, hi int) {
	owned := ownedBy(tab)
	lo = Slots
	for _, m := range tab.members {
		lo, hi = min(lo, owned[m.ID]), max(hi, owned[m.ID])
	}
	return lo, hi
}

func replicaMax(tab *Table) float64 {
	held := map[string]int{}
	for s := range uint16(Slots) {
		for _, r := range tab.Replicas(s) {
			held[r]++
		}
	}
	hi := 0
	for _, n := range held {
		hi = max(hi, n)
	}
	return float64(hi) / (float64(Slots*tab.ReplicaCount()) / float64(len(tab.members)))
}

func TestBalance(t *testing.T) {
	for _, n := range sizes {
		tab := compute(t, members(n), 1, nil)
		lo, hi := loadRange(tab)
		t.Logf("N=%4d: most loaded owns %5d slots = %.3f× the mean %.2f (least %5d = %.3f×); most replica places %.3f× the mean",
			n, hi, float64(hi)/mean(n), mean(n), lo, float64(lo)/mean(n), replicaMax(tab))
		if float64(hi) > maxLoad*mean(n) {
			t.Errorf("N=%d: most loaded owns %d slots, over %.1f× the mean %.2f", n, hi, maxLoad, mean(n))
		}
	}
}

// mostLoaded returns the index in ms of the member that owns most slots.
func mostLoaded(tab *Table, ms []Member) int {
	owned := ownedBy(tab)
	best := 0
	for i, m := range ms {
		if owned[m.ID] > owned[ms[best].ID] {
			best = i
		}
	}
	return best
}

func TestMovement(t *testing.T) {
	for _, n := range sizes {
		ms := members(n)
		base := compute(t, ms, 1, nil)
		limit := int(maxMoved * mean(n))

		joined := append(slices.Clone(ms), Member{ID: fmt.Sprintf("node-%d", n)})
		add := compute(t, joined, 1, base)
		addOwners, addSets, addPlaces := moves(base, add)
		freshAdd, _, _ := moves(base, compute(t, joined, 1, nil))

		// Leaves of the most loaded node, which moves most, and of a few others.
		var rmOwners, rmSets, rmPlaces, freshRm int
		for _, i := range []int{mostLoaded(base, ms), 0, n / 2, n - 1} {
			left := without(ms, i)
			rm := compute(t, left, 1, base)
			o, s, p := moves(base, rm)
			fo, _, _ := moves(base, compute(t, left, 1, nil))
			rmOwners, rmSets, rmPlaces, freshRm = max(rmOwners, o), max(rmSets, s), max(rmPlaces, p), max(freshRm, fo)
		}

		t.Logf("N=%4d: join moves %5d owners = %.3f×Slots/N, %5d replica sets (%5d places); "+
			"leave moves at most %5d owners = %.3f×Slots/N, %5d replica sets (%5d places); "+
			"from scratch, without prev: join %5d = %.2f×, leave %5d = %.2f×",
			n, addOwners, float64(addOwners)/mean(n), addSets, addPlaces,
			rmOwners, float64(rmOwners)/mean(n), rmSets, rmPlaces,
			freshAdd, float64(freshAdd)/mean(n), freshRm, float64(freshRm)/mean(n))
		if addOwners > limit || rmOwners > limit {
			t.Errorf("N=%d: join moved %d owners, leave %d, over %d", n, addOwners, rmOwners, limit)
		}
	}
}

// A node's death hands each of its slots to the slot's first replica, which
// has the data, unless that replica is at its keeping bound.
func TestLeavePromotesReplicas(t *testing.T) {
	for _, n := range []int{3, 10, 100} {
		ms := members(n)
		base := compute(t, ms, 1, nil)
		after := compute(t, without(ms, 1), 1, base)
		owned := ownedBy(after)
		bound, fair := bounds(after.members, Slots, Slack, false), bounds(after.members, Slots, 0, true)
		promoted, orphans := 0, 0
		for s := range uint16(Slots) {
			if base.Owner(s) != ms[1].ID {
				continue
			}
			orphans++
			r := base.Replicas(s)[0]
			if after.Owner(s) == r {
				promoted++
				continue
			}
			if i, _ := after.index(r); owned[r] < int(max(bound[i], fair[i])) {
				t.Fatalf("N=%d slot %d: owner left, its replica %s owns %d < %d but %s took it",
					n, s, r, owned[r], max(bound[i], fair[i]), after.Owner(s))
			}
		}
		t.Logf("N=%d: %d of the leaver's %d slots went to their replica", n, promoted, orphans)
	}
}

// Random joins and leaves keep every table within its bounds, and each step
// moves at most 1.1×Slots/N owners.
func TestChurn(t *testing.T) {
	for _, start := range []int{3, 10, 100} {
		rng := rand.New(rand.NewPCG(uint64(start), 7))
		ms := members(start)
		tab := compute(t, ms, 1, nil)
		next, worst := start, 0.0
		for range 40 {
			var nm []Member
			if len(ms) <= 2 || rng.IntN(2) == 0 {
				nm = append(slices.Clone(ms), Member{ID: fmt.Sprintf("node-%d", next)})
				next++
			} else {
				nm = without(ms, rng.IntN(len(ms)))
			}
			nt := compute(t, nm, 1, tab)
			owners, _, _ := moves(tab, nt)
			ratio := float64(owners) / mean(len(ms))
			worst = max(worst, ratio)
			if ratio > maxMoved {
				t.Errorf("%d → %d members moved %d owners, %.3f×Slots/N", len(ms), len(nm), owners, ratio)
			}
			ms, tab = nm, nt
		}
		t.Logf("churn from %d nodes: at most %.3f×Slots/N owners moved in a step", start, worst)
	}
}

// Growing one node at a time lowers every node's keeping bound; at 1,000
// nodes, with 16 slots each, it falls from 17 to 16 at 1,061 nodes, and a
// node still holding 17 then has to shed one. Joins take slots from the most
// loaded nodes first so that few are left to shed.
func TestGrowth(t *testing.T) {
	ms := members(1000)
	tab := compute(t, ms, 1, nil)
	worst := 0.0
	for n := 1000; n < 1070; n++ {
		nm := append(slices.Clone(ms), Member{ID: fmt.Sprintf("node-%d", n)})
		nt := compute(t, nm, 1, tab)
		owners, _, _ := moves(tab, nt)
		worst = max(worst, float64(owners)/mean(n))
		if float64(owners) > maxMoved*mean(n) {
			t.Errorf("join to %d members moved %d owners, %.3f×Slots/N", n+1, owners, float64(owners)/mean(n))
		}
		ms, tab = nm, nt
	}
	t.Logf("1,000 → 1,070 nodes one at a time: at most %.3f×Slots/N owners moved in a step", worst)
}

// A cluster started with one node and grown one join at a time, as a raft
// cluster is, stays even: each join claims its share from the most loaded.
func TestGrownClusterIsEven(t *testing.T) {
	ms := members(1)
	tab := compute(t, ms, 1, nil)
	for n := 1; n < 100; n++ {
		ms = append(ms, Member{ID: fmt.Sprintf("node-%d", n)})
		tab = compute(t, ms, 1, tab)
	}
	lo, hi := loadRange(tab)
	t.Logf("grown to 100 nodes: owners hold %.3f× to %.3f× the mean; most replica places %.3f× the mean",
		float64(lo)/mean(100), float64(hi)/mean(100), replicaMax(tab))
	if float64(lo) < 0.95*mean(100) || float64(hi) > 1.05*mean(100) {
		t.Errorf("grown to 100 nodes, owners hold %d to %d slots, mean %.2f", lo, hi, mean(100))
	}
}

// Joins (several at once), leaves and weight changes at the same time as the
// replica count changes still give well-formed tables.
func TestReplicaCountChanges(t *testing.T) {
	ms := members(8)
	tab := compute(t, ms, 3, nil)
	for i, r := range []int{1, 2, 0, 3, 1, 7, 2, 1} {
		switch i % 3 {
		case 0:
			ms = slices.Clone(ms)
			for j := range 3 {
				ms = append(ms, Member{ID: fmt.Sprintf("extra-%d-%d", i, j), Weight: 1 + j})
			}
		case 1:
			ms = without(ms, i%len(ms))
		case 2:
			ms = slices.Clone(ms)
			ms[0].Weight = 1 + i
		}
		tab = compute(t, ms, r, tab)
	}
}

func TestWeights(t *testing.T) {
	ms := members(6)
	ms[0].Weight = 3
	tab := compute(t, ms, 1, nil)
	owned := ownedBy(tab)
	share := float64(Slots) * 3 / 8
	if got := float64(owned["node-0"]); got < 0.9*share || got > maxLoad*share {
		t.Fatalf("weight 3 of 8 owns %v slots, share %.0f", got, share)
	}
	// Tripling a node's weight moves about what it gains.
	before := compute(t, members(6), 1, nil)
	after := compute(t, ms, 1, before)
	owners, _, _ := moves(before, after)
	gain := share - mean(6)
	t.Logf("weight 1 → 3 of 6 nodes: %d owners moved for a gain of %.0f", owners, gain)
	if float64(owners) > maxMoved*gain {
		t.Fatalf("weight 1 → 3 moved %d owners for a gain of %.0f", owners, gain)
	}
}

func BenchmarkCompute(b *testing.B) {
	for _, n := range []int{3, 100, 1000} {
		ms := members(n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compute(ms, 1, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		// What a raft leader runs when a node joins.
		prev := compute(b, ms[:n-1], 1, nil)
		b.Run(fmt.Sprintf("nodes=%d/join", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compute(ms, 1, prev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzCompute computes a table for one member list and then, from it, for
// another, both drawn from the input, and checks both tables' guarantees and
// that computing again gives the same table.
func FuzzCompute(f *testing.F) {
	f.Add([]byte{3, 1, 0, 0, 0, 4, 0, 0, 0, 0}, uint8(1), uint8(1))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint8(2), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, r1, r2 uint8) {
		// Each byte is a member: the low 5 bits its name, the high 3 its
		// weight less one. The first half of the input is the first list.
		list := func(b []byte) []Member {
			var ms []Member
			seen := map[byte]bool{}
			for _, c := range b {
				if id := c & 31; !seen[id] {
					seen[id] = true
					ms = append(ms, Member{ID: fmt.Sprintf("n%d", id), Weight: int(c>>5) + 1})
				}
			}
			return ms
		}
		first, second := list(b[:len(b)/2]), list(b[len(b)/2:])
		r1, r2 = r1%(MaxReplicas+1), r2%(MaxReplicas+1)
		prev := compute(t, first, int(r1), nil)
		next := compute(t, second, int(r2), prev)
		if again := compute(t, second, int(r2), prev); !again.sameAssignment(next) || again.Epoch != next.Epoch {
			t.Fatal("the same inputs gave two tables")
		}
	})
}
