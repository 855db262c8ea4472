package store

import (
	"errors"
	"testing"
)

// perKey is the accounted cost of a key16/value64 entry.
var perKey = entryCost + int64(classSizes[classOf(recordSize(16, 64, false))])

func TestEvictionLimitHolds(t *testing.T) {
	for _, pol := range []Policy{AllKeysLFU, AllKeysLRU, AllKeysRandom} {
		t.Run(pol.String(), func(t *testing.T) {
			var removed int64
			limit := 1000 * perKey
			s, _ := newTest(t, Config{Shards: 8, MaxMemory: limit, Policy: pol, OnRemove: func([]byte) { removed++ }})
			for i := range 20000 {
				if err := set(s, string(key16(i)), string(value64(i)), 0); err != nil {
					t.Fatalf("set %d: %v", i, err)
				}
				if m := s.Stats().Memory; m > limit {
					t.Fatalf("memory %d over the limit %d", m, limit)
				}
			}
			st := s.Stats()
			if st.Keys < 900 || st.Keys > 1000 {
				t.Fatalf("%d keys kept, want about 1000", st.Keys)
			}
			if st.Evicted != 20000-st.Keys || removed != st.Evicted {
				t.Fatalf("evicted %d, OnRemove %d, keys %d", st.Evicted, removed, st.Keys)
			}
			checkConsistent(t, s)
		})
	}
}

func TestMemoryAccounting(t *testing.T) {
	s, clk := newTest(t, Config{Shards: 4})
	if s.Stats().Memory != 0 {
		t.Fatal("empty store uses memory")
	}
	mustSet(t, s, string(key16(1)), string(value64(1)), 0)
	if m := s.Stats().Memory; m != perKey {
		t.Fatalf("one key costs %d, want %d", m, perKey)
	}
	mustSet(t, s, string(key16(1)), string(make([]byte, 1000)), 0)
	big := s.Stats().Memory
	mustSet(t, s, string(key16(1)), string(value64(1)), 0)
	if m := s.Stats().Memory; m != perKey || big <= m {
		t.Fatalf("overwrite with a smaller value: memory %d (was %d), want %d", m, big, perKey)
	}
	mustSet(t, s, string(key16(2)), string(value64(2)), clk.nowMS()+1)
	clk.advance(2)
	for s.ExpireCycle() > 0 {
	}
	if m := s.Stats().Memory; m != perKey {
		t.Fatalf("after expiry: memory %d, want %d", m, perKey)
	}
	del(s, string(key16(1)))
	if m := s.Stats().Memory; m != 0 {
		t.Fatalf("after delete: memory %d", m)
	}
	for i := range 1000 {
		mustSet(t, s, string(key16(i)), string(value64(i)), 0)
	}
	s.Flush(nil)
	if st := s.Stats(); st.Memory != 0 || st.Keys != 0 {
		t.Fatalf("after Flush: %+v", st)
	}
	checkConsistent(t, s)
}

func TestNoEviction(t *testing.T) {
	limit := 100 * perKey
	s, _ := newTest(t, Config{Shards: 4, MaxMemory: limit, Policy: NoEviction})
	i := 0
	for ; ; i++ {
		err := set(s, string(key16(i)), string(value64(i)), 0)
		if errors.Is(err, ErrOOM) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if i != 100 {
		t.Fatalf("stored %d keys, room for 100", i)
	}
	before := s.Stats()
	if _, ok := get(s, string(key16(i))); ok {
		t.Fatal("the refused key was stored")
	}
	// Writes that do not grow memory still work; growing ones change nothing.
	mustSet(t, s, string(key16(0)), string(value64(7)), 0)
	if err := set(s, string(key16(1)), string(make([]byte, 500)), 0); !errors.Is(err, ErrOOM) {
		t.Fatalf("growing overwrite: %v", err)
	}
	if v, _ := get(s, string(key16(1))); string(v) != string(value64(1)) {
		t.Fatal("refused overwrite changed the value")
	}
	var h Handle
	s.Open(&h, key16(2), nil)
	if _, err := h.Append(make([]byte, 500)); !errors.Is(err, ErrOOM) {
		t.Fatalf("Append: %v", err)
	}
	if _, err := h.SetRange(1000, []byte("x")); !errors.Is(err, ErrOOM) {
		t.Fatalf("SetRange: %v", err)
	}
	if string(h.Value()) != string(value64(2)) {
		t.Fatal("refused Append or SetRange changed the value")
	}
	h.Close()
	s.Open(&h, []byte("lease"), nil)
	if err := h.UpdateCache(Cache{LeaseToken: 1, LeaseUntil: start + 1000}); !errors.Is(err, ErrOOM) {
		t.Fatalf("placeholder: %v", err)
	}
	h.Close()
	if after := s.Stats(); after != before {
		t.Fatalf("stats changed by refused writes: %+v → %+v", before, after)
	}
	del(s, string(key16(0)))
	mustSet(t, s, string(key16(i)), string(value64(i)), 0)
	// Raising the limit makes room.
	s.SetMaxMemory(2 * limit)
	mustSet(t, s, "more", "x", 0)
	checkConsistent(t, s)
}

func TestVolatilePolicies(t *testing.T) {
	limit := 200 * perKey
	for _, pol := range []Policy{VolatileLFU, VolatileLRU, VolatileRandom, VolatileTTL} {
		t.Run(pol.String(), func(t *testing.T) {
			s, clk := newTest(t, Config{Shards: 4, MaxMemory: limit, Policy: pol})
			for i := range 100 {
				mustSet(t, s, string(key16(i)), string(value64(i)), 0)
			}
			for i := 100; i < 200; i++ {
				mustSet(t, s, string(key16(i)), string(value64(i)), clk.nowMS()+int64(1000+i))
			}
			// 100 more: the volatile keys make way.
			for i := 200; i < 300; i++ {
				mustSet(t, s, string(key16(i)), string(value64(i)), 0)
			}
			for i := range 100 {
				if _, ok := get(s, string(key16(i))); !ok {
					t.Fatalf("persistent key %d evicted under %v", i, pol)
				}
			}
			// Nothing volatile is left: writes fail.
			if err := set(s, "one more", "x", 0); !errors.Is(err, ErrOOM) {
				t.Fatalf("write with no volatile key left: %v", err)
			}
			checkConsistent(t, s)
		})
	}
}

func TestVolatileTTLOrder(t *testing.T) {
	s, clk := newTest(t, Config{Shards: 1, MaxMemory: 50 * perKey, Policy: VolatileTTL})
	for i := range 50 {
		mustSet(t, s, string(key16(i)), string(value64(i)), clk.nowMS()+int64(10000-100*i))
	}
	for i := 50; i < 60; i++ {
		mustSet(t, s, string(key16(i)), string(value64(i)), clk.nowMS()+100000)
	}
	// The evicted were the soonest to expire (the highest i below 50), as far
	// as sampling finds them.
	kept := 0
	for i := range 25 {
		if _, ok := get(s, string(key16(i))); ok {
			kept++
		}
	}
	if kept < 22 {
		t.Fatalf("only %d of the 25 latest-expiring keys kept", kept)
	}
}

func TestEvictExpiredFirst(t *testing.T) {
	s, clk := newTest(t, Config{Shards: 1, MaxMemory: 100 * perKey, Policy: AllKeysLRU})
	for i := range 100 {
		exp := int64(0)
		if i%2 == 0 {
			exp = clk.nowMS() + 10
		}
		mustSet(t, s, string(key16(i)), string(value64(i)), exp)
	}
	clk.advance(20)
	for i := 100; i < 120; i++ {
		mustSet(t, s, string(key16(i)), string(value64(i)), 0)
	}
	st := s.Stats()
	if st.Expired == 0 || st.Evicted > st.Expired {
		t.Fatalf("expired keys were not preferred: %+v", st)
	}
}

func TestSetMaxMemory(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 8})
	for i := range 2000 {
		mustSet(t, s, string(key16(i)), string(value64(i)), 0)
	}
	s.SetMaxMemory(500 * perKey)
	if st := s.Stats(); st.Memory > 500*perKey || st.Keys < 450 {
		t.Fatalf("after SetMaxMemory: %+v", st)
	}
	s.SetPolicy(NoEviction)
	s.SetMaxMemory(100 * perKey)
	if st := s.Stats(); st.Keys < 450 {
		t.Fatalf("noeviction evicted: %+v", st)
	}
	if err := set(s, "new", "x", 0); !errors.Is(err, ErrOOM) {
		t.Fatalf("write over the limit under noeviction: %v", err)
	}
	s.SetPolicy(AllKeysRandom)
	mustSet(t, s, "new", "x", 0)
	s.SetMaxMemory(100 * perKey)
	if st := s.Stats(); st.Memory > 100*perKey {
		t.Fatalf("after SetMaxMemory: %+v", st)
	}
	checkConsistent(t, s)
}

func TestValueLargerThanLimit(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 1, MaxMemory: 10000})
	mustSet(t, s, "a", "1", 0)
	if err := set(s, "big", string(make([]byte, 20000)), 0); !errors.Is(err, ErrOOM) {
		t.Fatalf("value over the whole limit: %v", err)
	}
	if _, ok := get(s, "a"); !ok {
		t.Fatal("a hopeless write evicted keys")
	}
}

// TestPinnedNotEvicted holds two keys of one shard, as a RENAME does, and
// writes one from the other's value under memory pressure: the source must
// survive the eviction the write causes.
func TestPinnedNotEvicted(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 1, MaxMemory: 20 * perKey, Policy: AllKeysLRU})
	for i := range 20 {
		mustSet(t, s, string(key16(i)), string(value64(i)), 0)
	}
	for round := range 50 {
		src, dst := key16(round%20), key16(1000+round)
		var l Locks
		s.LockKeys(&l, [][]byte{src, dst})
		var a, b Handle
		s.Open(&a, src, &l)
		s.Open(&b, dst, &l)
		if !a.Exists() {
			// evicted in an earlier round: fine, it was not pinned then
			a.Close()
			b.Close()
			l.Unlock()
			continue
		}
		want := string(a.Value())
		if err := b.Set(a.Value(), KindString, 0); err != nil {
			t.Fatal(err)
		}
		if !a.Exists() || string(a.Value()) != want || string(b.Value()) != want {
			t.Fatalf("round %d: pinned source lost: %q %q", round, a.Value(), b.Value())
		}
		a.Close()
		b.Close()
		l.Unlock()
	}
	checkConsistent(t, s)
}

func TestEvictAcrossShards(t *testing.T) {
	// One shard holds every volatile key; writes to the others must reach it.
	s, clk := newTest(t, Config{Shards: 4, MaxMemory: 400 * perKey, Policy: VolatileLRU})
	vol := 0
	for i := 0; vol < 300; i++ {
		k := key16(i)
		if s.shardOf(hashOf(k)) == 0 {
			mustSet(t, s, string(k), string(value64(i)), clk.nowMS()+100000)
			vol++
		}
	}
	n := 0
	for i := 0; n < 300; i++ {
		k := key16(1_000_000 + i)
		if s.shardOf(hashOf(k)) != 0 {
			if err := set(s, string(k), string(value64(i)), 0); err != nil {
				t.Fatalf("write %d: %v (stats %+v)", n, err, s.Stats())
			}
			n++
		}
	}
	checkConsistent(t, s)
}
