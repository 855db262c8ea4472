package cluster

import (
	"slices"
	"testing"

	"github.com/sluicedb/sluice/ring"
)

func testState(t testing.TB) *agreed {
	table, err := ring.Compute([]ring.Member{{ID: "a"}, {ID: "b"}, {ID: "c"}}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &agreed{
		members: []record{
			{ID: "a", GossipAddr: "10.0.0.1:7946", ClusterAddr: "10.0.0.1:7947", Meta: Meta{RESPAddr: "10.0.0.1:6379", FBAddr: "10.0.0.1:6380"}},
			{ID: "b", GossipAddr: "10.0.0.2:7946", ClusterAddr: "10.0.0.2:7947", State: Left},
			{ID: "c", GossipAddr: "10.0.0.3:7946", ClusterAddr: "10.0.0.3:7947", State: Dead},
		},
		table: table,
	}
}

func TestStateCodec(t *testing.T) {
	want := testState(t)
	b, err := encodeState(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a state of 3 members with a table of 3 nodes and 1 replica: %d bytes", len(b))
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.members, want.members) || got.table.Epoch != want.table.Epoch || !sameOwners(got.table, want.table) {
		t.Fatalf("decoded %+v", got)
	}
	for n := range len(b) {
		if _, err := decodeState(b[:n]); err == nil {
			t.Fatalf("a prefix of %d of %d bytes decoded", n, len(b))
		}
	}
	empty, err := encodeState(nil, &agreed{})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := decodeState(empty); err != nil || a.table != nil || len(a.members) != 0 {
		t.Fatalf("empty state: %+v, %v", a, err)
	}
}

func TestMetaCodec(t *testing.T) {
	m := nodeMeta{ClusterAddr: "10.0.0.1:7947", Meta: Meta{RESPAddr: "[::1]:6379"}, Leaving: true}
	got, ok := decodeMeta(m.encode())
	if !ok || got != m {
		t.Fatalf("decoded %+v, %v", got, ok)
	}
	if _, ok := decodeMeta(m.encode()[:5]); ok {
		t.Fatal("truncated meta decoded")
	}
}

func FuzzDecodeState(f *testing.F) {
	b, err := encodeState(nil, testState(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeState(b)
		if err != nil {
			return
		}
		again, err := encodeState(nil, a)
		if err != nil {
			t.Fatal(err)
		}
		if a2, err := decodeState(again); err != nil || !slices.Equal(a2.members, a.members) {
			t.Fatalf("re-encoded state does not decode the same: %v", err)
		}
	})
}

func TestVoterTarget(t *testing.T) {
	for n, want := range map[int]int{0: 1, 1: 1, 2: 1, 3: 3, 4: 3, 6: 3, 7: 5, 8: 5, 50: 5} {
		if got := voterTarget(n); got != want {
			t.Errorf("voterTarget(%d) = %d, want %d", n, got, want)
		}
	}
}
