package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

func encode(t testing.TB, tab *Table) []byte {
	t.Helper()
	b, err := tab.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodingRoundTrip(t *testing.T) {
	weighted := members(5)
	weighted[2].Weight = 4
	cases := []struct {
		name     string
		members  []Member
		replicas int
	}{
		{"empty", nil, 0},
		{"one", members(1), 1},
		{"three", members(3), 1},
		{"three, two replicas", members(3), 2},
		{"weighted", weighted, 2},
		{"ten, no replicas", members(10), 0},
		{"hundred", members(100), 1},
		{"thousand", members(1000), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := compute(t, c.members, c.replicas, nil)
			tab.Epoch = 1 << 40
			b := encode(t, tab)
			var got Table
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !got.sameAssignment(tab) || got.Epoch != tab.Epoch {
				t.Fatal("decoded table differs")
			}
			for s := range uint16(Slots) {
				if got.Owner(s) != tab.Owner(s) {
					t.Fatalf("slot %d: owner %q, want %q", s, got.Owner(s), tab.Owner(s))
				}
			}
			if again := encode(t, &got); !bytes.Equal(again, b) {
				t.Fatal("re-encoding differs")
			}
			t.Logf("%d members, %d replicas: %d bytes", len(c.members), tab.ReplicaCount(), len(b))
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good := encode(t, compute(t, members(3), 1, nil))
	header := func(epoch, k, n uint64) []byte {
		b := []byte{encodingVersion}
		b = binary.AppendUvarint(b, epoch)
		b = binary.AppendUvarint(b, k)
		return binary.AppendUvarint(b, n)
	}
	member := func(b []byte, id string, w uint64) []byte {
		b = binary.AppendUvarint(b, uint64(len(id)))
		return binary.AppendUvarint(append(b, id...), w)
	}
	run := func(b []byte, vals ...uint64) []byte {
		b = slices.Clone(b) // cases share prefixes
		for _, v := range vals {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	two := member(member(header(1, 1, 2), "a", 1), "b", 1)
	cases := []struct {
		name string
		b    []byte
	}{
		{"nothing", nil},
		{"bad version", append([]byte{9}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(good[:len(good):len(good)], 0)},
		{"non-minimal varint", append([]byte{encodingVersion, 0x81, 0x00}, good[2:]...)},
		{"replicas without members", header(1, 1, 0)},
		{"replicas ≥ members", member(header(1, 1, 1), "a", 1)},
		{"too many members", header(1, 0, MaxTotalWeight+1)},
		{"empty ID", run(member(header(1, 0, 1), "", 1), Slots, 0)},
		{"zero weight", run(member(header(1, 0, 1), "a", 0), Slots, 0)},
		{"heavy", run(member(header(1, 0, 1), "a", MaxWeight+1), Slots, 0)},
		{"unsorted", run(member(member(header(1, 0, 2), "b", 1), "a", 1), Slots, 0)},
		{"duplicate", run(member(member(header(1, 0, 2), "a", 1), "a", 1), Slots, 0)},
		{"ID past the end", binary.AppendUvarint(header(1, 0, 1), 100)},
		{"no runs", two},
		{"short runs", run(two, Slots-1, 0, 1)},
		{"long run", run(two, Slots+1, 0, 1)},
		{"empty run", run(two, 0, 0, 1, Slots, 0, 1)},
		{"runs past the end", run(two, Slots-1, 0, 1, 2, 1, 0)},
		{"owner out of range", run(two, Slots, 2, 1)},
		{"replica out of range", run(two, Slots, 0, 2)},
		{"replica is owner", run(two, Slots, 0, 0)},
		{"replica past uint16", run(two, Slots, 0, 1<<16|1)},
		{"split run", run(two, 1, 0, 1, Slots-1, 0, 1)},
		{"duplicate replicas", run(member(member(member(header(1, 2, 3), "a", 1), "b", 1), "c", 1), Slots, 0, 1, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := compute(t, members(2), 1, nil)
			before := encode(t, tab)
			if err := tab.UnmarshalBinary(c.b); !errors.Is(err, ErrBadEncoding) {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if !bytes.Equal(encode(t, tab), before) {
				t.Fatal("a failed decode changed the table")
			}
		})
	}
	// The valid neighbours of the cases above decode.
	for _, b := range [][]byte{run(two, Slots, 0, 1), run(two, 1, 0, 1, Slots-1, 1, 0)} {
		var tab Table
		if err := tab.UnmarshalBinary(b); err != nil {
			t.Fatalf("valid table: %v", err)
		}
	}
}

// FuzzUnmarshalBinary feeds the decoder arbitrary bytes: it must not panic,
// and whatever it accepts must be a well-formed table that encodes back to
// the same bytes.
func FuzzUnmarshalBinary(f *testing.F) {
	for _, n := range []int{0, 1, 2, 3, 7} {
		for _, r := range []int{0, 1, 2} {
			tab, err := Compute(members(n), r, nil)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(encode(f, tab))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var tab Table
		if err := tab.UnmarshalBinary(b); err != nil {
			return
		}
		checkShape(t, &tab)
		if again := encode(t, &tab); !bytes.Equal(again, b) {
			t.Fatalf("decoded and re-encoded to %x, not %x", again, b)
		}
	})
}

func BenchmarkUnmarshalBinary(b *testing.B) {
	b.ReportAllocs()
	data := encode(b, compute(b, members(100), 1, nil))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var tab Table
		if err := tab.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}
