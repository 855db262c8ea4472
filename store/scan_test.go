package store

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func scanAll(s *Store, count int, locks *Locks) map[string]int {
	seen := map[string]int{}
	cursor := uint64(0)
	for {
		cursor = s.Scan(cursor, count, locks, func(k []byte, _ Kind, _ int64) { seen[string(k)]++ })
		if cursor == 0 {
			return seen
		}
	}
}

func TestScan(t *testing.T) {
	s, clk := newTest(t, Config{Shards: 8})
	if c := s.Scan(0, 10, nil, func([]byte, Kind, int64) { t.Fatal("empty store scanned a key") }); c != 0 {
		t.Fatalf("empty scan cursor %d", c)
	}
	for i := range 5000 {
		mustSet(t, s, fmt.Sprint(i), "v", 0)
	}
	mustSet(t, s, "gone", "v", clk.nowMS()+1)
	clk.advance(2)
	for _, count := range []int{1, 7, 100, 100000} {
		seen := scanAll(s, count, nil)
		if len(seen) != 5000 {
			t.Fatalf("count %d: scanned %d keys", count, len(seen))
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("count %d: %q seen %d times without writes", count, k, n)
			}
		}
	}
	// Each call does bounded work.
	calls := 0
	for c := s.Scan(0, 10, nil, func([]byte, Kind, int64) {}); c != 0; c = s.Scan(c, 10, nil, func([]byte, Kind, int64) {}) {
		calls++
	}
	if calls < 5000/10-1 {
		t.Fatalf("%d calls of count 10 for 5000 keys", calls)
	}
	// With every shard held.
	var l Locks
	s.LockAll(&l)
	if seen := scanAll(s, 50, &l); len(seen) != 5000 {
		t.Fatalf("scan under LockAll: %d keys", len(seen))
	}
	l.Unlock()
}

func TestScanUnderWrites(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 16})
	const stable = 3000
	for i := range stable {
		mustSet(t, s, fmt.Sprint("stable", i), "v", 0)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprint("churn", w, i%500)
				if i%3 == 0 {
					del(s, k)
				} else {
					set(s, k, string(make([]byte, i%300)), 0)
				}
				// Stable keys are rewritten, moving their records, never their entries.
				set(s, fmt.Sprint("stable", i%stable), string(make([]byte, i%200)), 0)
			}
		})
	}
	for range 5 {
		seen := scanAll(s, 20, nil)
		for i := range stable {
			if seen[fmt.Sprint("stable", i)] == 0 {
				t.Errorf("stable key %d missed", i)
			}
		}
	}
	close(stop)
	wg.Wait()
	checkConsistent(t, s)
}

func TestLocks(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 16})
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("a"), []byte("zz")}
	var l Locks
	s.LockKeys(&l, keys)
	for _, k := range keys {
		i := s.shardOf(hashOf(k))
		if !l.has(i) || s.shards[i].mu.TryLock() {
			t.Fatalf("shard %d of %q not held", i, k)
		}
	}
	// Open inside the locks takes no lock and leaves them held.
	for _, k := range keys[:3] {
		var h Handle
		s.Open(&h, k, &l)
		if h.locked {
			t.Fatal("Open locked a shard held in locks")
		}
		if err := h.Set(k, KindString, 0); err != nil {
			t.Fatal(err)
		}
		h.Close()
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("LockKeys on held Locks did not panic")
			}
		}()
		s.LockKeys(&l, keys)
	}()
	l.Unlock()
	for i := range s.shards {
		if !s.shards[i].mu.TryLock() {
			t.Fatalf("shard %d still locked", i)
		}
		s.shards[i].mu.Unlock()
	}
	// The zero Locks and reuse.
	var z Locks
	var h Handle
	s.Open(&h, []byte("a"), &z)
	if !h.locked || string(h.Value()) != "a" {
		t.Fatal("zero Locks")
	}
	h.Close()
	s.LockAll(&l)
	if seen := scanAll(s, 2, &l); len(seen) != 3 {
		t.Fatalf("scan under LockAll: %v", seen)
	}
	if k, ok := s.RandomKey(nil, &l); !ok || len(k) == 0 {
		t.Fatal("RandomKey under LockAll")
	}
	s.Flush(&l)
	l.Unlock()
	if s.Len() != 0 {
		t.Fatal("Flush under LockAll")
	}
}

func TestForEachInSlots(t *testing.T) {
	slot := func(k []byte) uint16 { return uint16(k[0] - '0') }
	s, clk := newTest(t, Config{Shards: 4, Slot: slot})
	want := map[string]string{}
	for i := range 1000 {
		k := fmt.Sprint(i%7, "-", i)
		v := fmt.Sprint("v", i)
		mustSet(t, s, k, v, 0)
		if i%7 == 3 {
			want[k] = v
		}
	}
	var h Handle
	s.Open(&h, []byte("3-cache"), nil)
	if err := h.SetCache([]byte("cv"), clk.nowMS()+100, Cache{FreshUntil: 5}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	s.Open(&h, []byte("3-placeholder"), nil)
	if err := h.UpdateCache(Cache{LeaseToken: 1, LeaseUntil: clk.nowMS() + 100}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	mustSet(t, s, "3-expired", "x", clk.nowMS()+1)
	clk.advance(2)

	// Copy slot 3 into another store through Restore, as hand-off does.
	other, _ := newTest(t, Config{Shards: 2, Slot: slot})
	got := map[string]string{}
	passes := 0
	s.ForEachInSlots(func(sl uint16) bool { return sl == 3 }, func(e *Entry) {
		if e.Slot != 3 {
			t.Errorf("%q in slot %d", e.Key, e.Slot)
		}
		var oh Handle
		other.Open(&oh, e.Key, nil)
		if err := oh.Restore(e); err != nil {
			t.Error(err)
		}
		oh.Close()
		switch string(e.Key) {
		case "3-cache":
			if !e.HasCache || e.Cache.FreshUntil != 5 || string(e.Value) != "cv" || e.ExpireAt != start+100 || e.Kind != KindString {
				t.Errorf("cache entry: %+v", e)
			}
		case "3-placeholder":
			if e.Kind != KindNone || e.Cache.LeaseToken != 1 {
				t.Errorf("placeholder: %+v", e)
			}
		default:
			if e.HasCache || e.ExpireAt != 0 || e.Kind != KindString {
				t.Errorf("%+v", e)
			}
			got[string(e.Key)] = string(e.Value)
		}
	}, func() { passes++ })
	if passes != 4 {
		t.Errorf("between called %d times, want once per shard (4)", passes)
	}
	if len(got) != len(want) {
		t.Fatalf("slot 3: %d entries, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("slot 3: %q = %q, want %q", k, got[k], v)
		}
	}
	other.Open(&h, []byte("3-cache"), nil)
	if c, ok := h.Cache(); !ok || c.FreshUntil != 5 || string(h.Value()) != "cv" || h.ExpireAt() != start+100 {
		t.Errorf("restored cache entry: %q %+v %v", h.Value(), c, ok)
	}
	h.Close()
	other.Open(&h, []byte("3-placeholder"), nil)
	if c, ok := h.Cache(); !ok || h.Exists() || c.LeaseToken != 1 {
		t.Errorf("restored placeholder: exists %v, %+v", h.Exists(), c)
	}
	h.Close()
	if other.Len() != len(want)+1 {
		t.Errorf("copy has %d keys, want %d", other.Len(), len(want)+1)
	}

	if got := s.SlotLen(3); got != len(want)+2 {
		t.Errorf("SlotLen(3) = %d, want %d (3-expired is not removed yet)", got, len(want)+2)
	}
	var removed []string
	s.onRemove = func(k []byte) { removed = append(removed, string(k)) }
	before := s.Len()
	// The keys, 3-cache, and 3-expired, which expired but was not removed
	// yet; the placeholder is not a key.
	const extra = 2
	if n := s.DeleteSlots(func(sl uint16) bool { return sl == 3 }, nil); n != len(want)+extra {
		t.Errorf("DeleteSlots removed %d keys, want %d", n, len(want)+extra)
	}
	if s.Len() != before-len(want)-extra || len(removed) != len(want)+extra {
		t.Errorf("after DeleteSlots: %d keys (was %d), %d reported removed", s.Len(), before, len(removed))
	}
	s.ForEachInSlots(func(sl uint16) bool { return sl == 3 }, func(e *Entry) { t.Errorf("%q left in slot 3", e.Key) }, nil)
	if s.SlotLen(3) != 0 || s.SlotLen(4) != 143 {
		t.Errorf("after DeleteSlots: SlotLen(3) = %d, SlotLen(4) = %d, want 0 and 143", s.SlotLen(3), s.SlotLen(4))
	}
	s.Flush(nil)
	if s.SlotLen(4) != 0 {
		t.Errorf("after Flush: SlotLen(4) = %d", s.SlotLen(4))
	}
}

func TestRandomKey(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 8})
	if _, ok := s.RandomKey(nil, nil); ok {
		t.Fatal("RandomKey on an empty store")
	}
	mustSet(t, s, "only", "v", 0)
	for range 20 {
		if k, ok := s.RandomKey([]byte("prefix:"), nil); !ok || string(k) != "prefix:only" {
			t.Fatalf("RandomKey = %q %v", k, ok)
		}
	}
	for i := range 100 {
		mustSet(t, s, fmt.Sprint(i), "v", 0)
	}
	seen := map[string]bool{}
	for range 2000 {
		k, _ := s.RandomKey(nil, nil)
		seen[string(k)] = true
	}
	if len(seen) < 90 {
		t.Fatalf("2000 draws found %d of 101 keys", len(seen))
	}
	// Sparse: a shard with many free entries.
	for i := range 100 {
		del(s, fmt.Sprint(i))
	}
	if k, ok := s.RandomKey(nil, nil); !ok || !bytes.Equal(k, []byte("only")) {
		t.Fatalf("sparse RandomKey = %q %v", k, ok)
	}
}
