package node

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sluicedb/sluice/ring"
	"github.com/sluicedb/sluice/store"
)

// copyKeys sends the state of keys from one node to another as the
// replication stream does: a record per key, applied by the receiver.
func copyKeys(t testing.TB, from, to *Node, keys ...string) {
	t.Helper()
	var msg []byte
	for _, k := range keys {
		var h store.Handle
		from.store.Open(&h, []byte(k), nil)
		msg = appendKeyState(msg, &h, ring.KeySlot([]byte(k)), []byte(k))
		h.Close()
	}
	if err := to.repl.apply(msg, func(uint16) bool { return true }); err != nil {
		t.Fatal(err)
	}
}

// TestKeyStateCopies: what a replica applies is what the primary holds,
// for every kind of entry: a string with a TTL, a cache entry with its
// freshness and lease, a lease on a missing key, a rate-limit bucket, and
// a deleted key.
func TestKeyStateCopies(t *testing.T) {
	ctx := context.Background()
	primary, clock := newTestNode(t, Config{})
	replica, _ := newTestNode(t, Config{Clock: clock})
	do := func(n *Node, args ...any) any {
		t.Helper()
		r, err := n.Do(ctx, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return r
	}
	do(primary, "SET", "plain", "v1", "PX", 60000)
	do(primary, "CACHE.SET", "cached", "page", "FRESH", 10, "STALE", 60000)
	do(primary, "CACHE.GET", "leased")                  // a miss: a lease on a missing key
	do(primary, "CL.THROTTLE", "rl:user", 9, 10, 60, 4) // 10 tokens, 4 taken
	do(replica, "SET", "gone", "stale")
	keys := []string{"plain", "cached", "leased", "rl:user", "gone"}
	copyKeys(t, primary, replica, keys...)

	for _, probe := range [][]any{
		{"GET", "plain"}, {"PTTL", "plain"}, {"CACHE.GET", "cached"}, {"PTTL", "cached"},
		{"CACHE.GET", "leased"}, {"CL.THROTTLE", "rl:user", 9, 10, 60, 0}, {"EXISTS", "gone"},
	} {
		want, got := do(primary, probe...), do(replica, probe...)
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%v: primary %v, replica %v", probe, want, got)
		}
	}
	// After the fresh period the stale entry's revalidation lease moves
	// too: the replica, taking over, hands out no second lease.
	clock.Advance(20 * time.Millisecond)
	if r := do(primary, "CACHE.GET", "cached").([]any); string(r[0].([]byte)) != "revalidate" {
		t.Fatalf("primary after FRESH: %v", r)
	}
	copyKeys(t, primary, replica, "cached")
	if r := do(replica, "CACHE.GET", "cached").([]any); string(r[0].([]byte)) != "stale" {
		t.Errorf("replica of a key under revalidation: %v, want stale (the lease is held)", r)
	}
}

// TestApplyRejects: records of slots the receiver does not accept change
// nothing, and a reset removes a slot's keys before a copy follows.
func TestApplyRejects(t *testing.T) {
	ctx := context.Background()
	a, clock := newTestNode(t, Config{})
	b, _ := newTestNode(t, Config{Clock: clock})
	for i := range 20 {
		if _, err := a.Do(ctx, "SET", fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Do(ctx, "SET", fmt.Sprint("k", i), "old"); err != nil {
			t.Fatal(err)
		}
	}
	keep := ring.KeySlot([]byte("k0"))
	var msg []byte
	for i := range 20 {
		k := []byte(fmt.Sprint("k", i))
		var h store.Handle
		a.store.Open(&h, k, nil)
		msg = appendKeyState(msg, &h, ring.KeySlot(k), k)
		h.Close()
	}
	if err := b.repl.apply(msg, func(s uint16) bool { return s == keep }); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		k := fmt.Sprint("k", i)
		v, _ := b.Do(ctx, "GET", k)
		want := "old"
		if ring.KeySlot([]byte(k)) == keep {
			want = fmt.Sprint(i)
		}
		if string(v.([]byte)) != want {
			t.Errorf("%s = %s, want %s", k, v, want)
		}
	}
	reset := appendReset(nil, keep)
	if err := b.repl.apply(reset, func(uint16) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Do(ctx, "EXISTS", "k0"); v != int64(0) {
		t.Errorf("k0 after a reset of its slot: EXISTS %v", v)
	}
	if v, _ := b.Do(ctx, "DBSIZE"); v != int64(19) {
		t.Errorf("DBSIZE after a reset of one key's slot: %v, want 19", v)
	}
}

// FuzzApply: a replication message from a peer is bytes from the network
// (authenticated, but maybe from a newer or broken node): any input is
// applied or refused with an error, never a panic.
func FuzzApply(f *testing.F) {
	n, _ := newTestNode(f, Config{})
	src, _ := newTestNode(f, Config{})
	ctx := context.Background()
	_, _ = src.Do(ctx, "SET", "a", "1", "EX", 100)
	_, _ = src.Do(ctx, "CACHE.SET", "c", "v", "FRESH", 1, "STALE", 2)
	_, _ = src.Do(ctx, "CL.THROTTLE", "rl", 1, 2, 3)
	for _, k := range []string{"a", "c", "rl", "missing"} {
		var h store.Handle
		src.store.Open(&h, []byte(k), nil)
		f.Add(appendKeyState(nil, &h, ring.KeySlot([]byte(k)), []byte(k)))
		h.Close()
	}
	f.Add(appendReset(nil, 7))
	f.Add([]byte{recPut, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, msg []byte) {
		_ = n.repl.apply(msg, func(uint16) bool { return true })
	})
}

// BenchmarkReplicateKey is what a write costs its owner when the slot has a
// replica: reading the key's state under its lock and appending it to the
// peer's stream.
func BenchmarkReplicateKey(b *testing.B) {
	n, _ := newTestNode(b, Config{})
	ctx := context.Background()
	if _, err := n.Do(ctx, "SET", "key:000000000001", string(make([]byte, 64))); err != nil {
		b.Fatal(err)
	}
	c := n.newClient(nil, "bench", "bench")
	s := &stream{id: "peer", ackCh: make(chan struct{}), wake: make(chan struct{}, 1), fed: make([]bool, ring.Slots)}
	ds := []*stream{s}
	key := []byte("key:000000000001")
	slot := ring.KeySlot(key)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.replicateKey(ds, 1, slot, key)
		if len(s.buf) > 1<<20 {
			s.buf = s.buf[:0]
		}
	}
}
