package ring

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func members(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("node-%d", i)}
	}
	return ms
}

func without(ms []Member, i int) []Member {
	return append(slices.Clone(ms[:i]), ms[i+1:]...)
}

func compute(t testing.TB, ms []Member, replicas int, prev *Table) *Table {
	t.Helper()
	tab, err := Compute(ms, replicas, prev)
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, tab, replicas)
	return tab
}

// checkTable checks what every computed table guarantees.
func checkTable(t testing.TB, tab *Table, replicas int) {
	t.Helper()
	checkShape(t, tab)
	if n := len(tab.members); n > 0 && tab.ReplicaCount() != min(replicas, n-1) {
		t.Fatalf("%d replicas per slot, want min(%d, %d)", tab.ReplicaCount(), replicas, n-1)
	}
	// No node owns more than its keeping bound, which is at most 1.1× its
	// share or, when that is less than one slot over, its share rounded up.
	bound := bounds(tab.members, Slots, Slack, false)
	fair := bounds(tab.members, Slots, 0, true)
	owned := ownedBy(tab)
	for n, m := range tab.members {
		if got := owned[m.ID]; got > int(max(bound[n], fair[n])) {
			t.Fatalf("%s owns %d slots, over its bound %d", m.ID, got, max(bound[n], fair[n]))
		}
	}
}

// checkShape checks what every table, computed or decoded, guarantees.
func checkShape(t testing.TB, tab *Table) {
	t.Helper()
	ids := map[string]bool{}
	for i, m := range tab.members {
		if m.ID == "" || m.Weight < 1 || ids[m.ID] || i > 0 && tab.members[i-1].ID >= m.ID {
			t.Fatalf("bad member list %v", tab.members)
		}
		ids[m.ID] = true
	}
	k := tab.ReplicaCount()
	if len(ids) == 0 && k != 0 || len(ids) > 0 && k > len(ids)-1 {
		t.Fatalf("%d replicas for %d members", k, len(ids))
	}
	for s := range uint16(Slots) {
		o, reps := tab.Owner(s), tab.Replicas(s)
		if len(ids) == 0 {
			if o != "" || len(reps) != 0 {
				t.Fatalf("slot %d of an empty table: %q %v", s, o, reps)
			}
			continue
		}
		if !ids[o] || len(reps) != k {
			t.Fatalf("slot %d: owner %q, replicas %v", s, o, reps)
		}
		for i, r := range reps {
			if !ids[r] || r == o || slices.Contains(reps[:i], r) {
				t.Fatalf("slot %d: owner %q, replicas %v", s, o, reps)
			}
		}
	}
}

func ownedBy(tab *Table) map[string]int {
	owned := map[string]int{}
	for s := range uint16(Slots) {
		owned[tab.Owner(s)]++
	}
	return owned
}

func TestComputeEdgeCases(t *testing.T) {
	t.Run("no members", func(t *testing.T) {
		tab := compute(t, nil, 1, nil)
		if tab.Owner(0) != "" || tab.Owner(Slots-1) != "" || tab.Replicas(7) != nil ||
			tab.SlotsOf("a") != nil || len(tab.Members()) != 0 || tab.Epoch != 1 {
			t.Fatalf("empty table: owner %q, replicas %v, epoch %d", tab.Owner(0), tab.Replicas(7), tab.Epoch)
		}
	})
	t.Run("one member", func(t *testing.T) {
		tab := compute(t, []Member{{ID: "solo"}}, 3, nil)
		if got := tab.SlotsOf("solo"); len(got) != Slots || got[0] != 0 || got[Slots-1] != Slots-1 {
			t.Fatalf("solo owns %d slots", len(got))
		}
		if r := tab.Replicas(100); len(r) != 0 {
			t.Fatalf("replicas %v with one member", r)
		}
	})
	t.Run("replicas at least members-1", func(t *testing.T) {
		for _, r := range []int{2, 3, MaxReplicas} {
			tab := compute(t, members(3), r, nil)
			for s := range uint16(Slots) {
				got := append(slices.Clone(tab.Replicas(s)), tab.Owner(s))
				slices.Sort(got)
				if !slices.Equal(got, []string{"node-0", "node-1", "node-2"}) {
					t.Fatalf("replicas=%d slot %d: owner and replicas %v", r, s, got)
				}
			}
		}
	})
	t.Run("two members, one replica", func(t *testing.T) {
		tab := compute(t, members(2), 1, nil)
		for s := range uint16(Slots) {
			if r := tab.Replicas(s); len(r) != 1 || r[0] == tab.Owner(s) {
				t.Fatalf("slot %d: owner %s replicas %v", s, tab.Owner(s), r)
			}
		}
	})

	errs := []struct {
		name     string
		members  []Member
		replicas int
		want     error
	}{
		{"duplicate", []Member{{ID: "a"}, {ID: "b"}, {ID: "a"}}, 1, ErrDuplicateID},
		{"duplicate with weights", []Member{{ID: "a", Weight: 1}, {ID: "a", Weight: 2}}, 0, ErrDuplicateID},
		{"empty ID", []Member{{ID: "a"}, {ID: ""}}, 1, ErrEmptyID},
		{"negative weight", []Member{{ID: "a", Weight: -1}}, 1, ErrWeight},
		{"weight too large", []Member{{ID: "a", Weight: MaxWeight + 1}}, 1, ErrWeight},
		{"negative replicas", members(3), -1, ErrReplicas},
		{"too many replicas", members(3), MaxReplicas + 1, ErrReplicas},
		{"too many members", members(MaxTotalWeight + 1), 1, ErrTooMany},
	}
	for _, c := range errs {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Compute(c.members, c.replicas, nil); !errors.Is(err, c.want) {
				t.Fatalf("Compute: %v, want %v", err, c.want)
			}
		})
	}
}

func TestComputeIsDeterministic(t *testing.T) {
	ms := members(50)
	ms[3].Weight, ms[7].Weight = 2, 3
	want := compute(t, ms, 2, nil)
	wantBytes, _ := want.MarshalBinary()
	prev := compute(t, ms[:40], 2, nil)
	wantNext := compute(t, ms, 2, prev)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := slices.Clone(ms)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := compute(t, shuffled, 2, nil)
		if b, _ := got.MarshalBinary(); string(b) != string(wantBytes) {
			t.Fatal("member order changed the table")
		}
		if next := compute(t, shuffled, 2, prev); !next.sameAssignment(wantNext) || next.Epoch != wantNext.Epoch {
			t.Fatal("member order changed the table computed from prev")
		}
	}
}

// The table of a fixed member list is pinned: a change to the hashing or to
// placement moves slots of every cluster that computes a fresh table, so it
// must be deliberate. Update the expected owners only on purpose.
func TestComputeGolden(t *testing.T) {
	tab := compute(t, []Member{{ID: "a"}, {ID: "b", Weight: 2}, {ID: "c"}}, 1, nil)
	got := map[uint16][2]string{}
	for _, s := range []uint16{0, 1, 5000, 8192, 12182, Slots - 1} {
		got[s] = [2]string{tab.Owner(s), tab.Replicas(s)[0]}
	}
	want := map[uint16][2]string{
		0: {"a", "c"}, 1: {"c", "a"}, 5000: {"b", "c"}, 8192: {"c", "b"}, 12182: {"b", "a"}, Slots - 1: {"c", "b"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("owners and replicas %v, want %v", got, want)
	}
	// All of it, and the encoding, through a digest.
	const wantDigest = 0x3e3de4ba761f89b
	if d := xxhash.Sum64(encode(t, tab)); d != wantDigest {
		t.Errorf("table digest %#x, want %#x", d, uint64(wantDigest))
	}
}

func TestEpoch(t *testing.T) {
	t1 := compute(t, members(5), 1, nil)
	if t1.Epoch != 1 {
		t.Fatalf("first epoch %d", t1.Epoch)
	}
	same := compute(t, members(5), 1, t1)
	if same.Epoch != 1 || !same.sameAssignment(t1) {
		t.Fatalf("recomputing the same members: epoch %d", same.Epoch)
	}
	t2 := compute(t, members(6), 1, same)
	if t2.Epoch != 2 {
		t.Fatalf("after a join: epoch %d", t2.Epoch)
	}
	t3 := compute(t, members(6), 2, t2)
	if t3.Epoch != 3 {
		t.Fatalf("after a replica change: epoch %d", t3.Epoch)
	}
}

func TestSlotsOf(t *testing.T) {
	tab := compute(t, members(4), 1, nil)
	total := 0
	for _, m := range tab.Members() {
		slots := tab.SlotsOf(m.ID)
		if !slices.IsSorted(slots) {
			t.Fatalf("%s: slots out of order", m.ID)
		}
		for _, s := range slots {
			if tab.Owner(s) != m.ID {
				t.Fatalf("SlotsOf(%s) has slot %d owned by %s", m.ID, s, tab.Owner(s))
			}
		}
		total += len(slots)
	}
	if total != Slots {
		t.Fatalf("members own %d slots in all", total)
	}
	if tab.SlotsOf("stranger") != nil {
		t.Fatal("a non-member owns slots")
	}
}

func TestLookupsDoNotAllocate(t *testing.T) {
	tab := compute(t, members(10), 2, nil)
	var sink int
	if n := testing.AllocsPerRun(100, func() {
		for s := range uint16(Slots) {
			sink += len(tab.Owner(s)) + len(tab.Replicas(s))
		}
	}); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
	_ = sink
}

func BenchmarkOwner(b *testing.B) {
	b.ReportAllocs()
	tab := compute(b, members(100), 1, nil)
	slot := KeySlot([]byte("user:1000:profile"))
	var sink string
	for b.Loop() {
		sink = tab.Owner(slot)
	}
	_ = sink
}

func BenchmarkReplicas(b *testing.B) {
	b.ReportAllocs()
	tab := compute(b, members(100), 2, nil)
	slot := KeySlot([]byte("user:1000:profile"))
	var sink []string
	for b.Loop() {
		sink = tab.Replicas(slot)
	}
	_ = sink
}
