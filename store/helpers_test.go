package store

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// fakeClock is a Clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(ms int64) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(ms * 1e6)
	return c
}

func (c *fakeClock) Now() int64       { return c.ns.Load() }
func (c *fakeClock) advance(ms int64) { c.ns.Add(ms * 1e6) }
func (c *fakeClock) nowMS() int64     { return c.ns.Load() / 1e6 }

// start is the fake clock's first reading, in Unix ms.
const start = 1_700_000_000_000

func newTest(t testing.TB, cfg Config) (*Store, *fakeClock) {
	t.Helper()
	clk := newFakeClock(start)
	if cfg.Clock == nil {
		cfg.Clock = clk
	}
	return New(cfg), clk
}

func get(s *Store, key string) ([]byte, bool) {
	var h Handle
	s.Open(&h, []byte(key), nil)
	defer h.Close()
	if !h.Exists() {
		return nil, false
	}
	return append([]byte{}, h.Value()...), true
}

func mustSet(t testing.TB, s *Store, key, val string, exp int64) {
	t.Helper()
	if err := set(s, key, val, exp); err != nil {
		t.Fatalf("set %q: %v", key, err)
	}
}

func set(s *Store, key, val string, exp int64) error {
	var h Handle
	s.Open(&h, []byte(key), nil)
	defer h.Close()
	return h.Set([]byte(val), KindString, exp)
}

func del(s *Store, key string) bool {
	var h Handle
	s.Open(&h, []byte(key), nil)
	defer h.Close()
	ok := h.Exists()
	h.Delete()
	return ok
}

func version(s *Store, key string) uint64 {
	var h Handle
	s.Open(&h, []byte(key), nil)
	defer h.Close()
	return h.Version()
}

// key16 is a 16-byte key, value64 a 64-byte value: the data set of the memory target.
func key16(i int) []byte { return appendKey16(make([]byte, 0, 16), i) }

// appendKey16 appends key16(i) to dst without allocating (for i < 10^12).
func appendKey16(dst []byte, i int) []byte {
	dst = append(dst, "key:000000000000"...)
	for j := len(dst) - 1; i > 0; j-- {
		dst[j] = '0' + byte(i%10)
		i /= 10
	}
	return dst
}

func value64(i int) []byte { return fmt.Appendf(nil, "%064d", i) }

// checkConsistent verifies the invariants between table, entries and counters.
func checkConsistent(t testing.TB, s *Store) {
	t.Helper()
	var mem int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		live, keys, expires := 0, int64(0), int64(0)
		var shMem int64
		for idx := range sh.nEntries {
			e := sh.entry(idx)
			if e.flags&flagFree != 0 {
				continue
			}
			live++
			if Kind(e.flags&kindMask) != KindNone {
				keys++
				if e.expireAt != 0 {
					expires++
				}
			}
			if e.expireAt != 0 && e.flags&flagVolList == 0 {
				t.Errorf("shard %d entry %d expires but is not in the volatile list", i, idx)
			}
			shMem += entryCost + int64(sh.arena.capOf(e.class, e.loc))
			if got := sh.lookup(sh.key(e), uint32(xxhash.Sum64(sh.key(e)))); got != idx {
				t.Errorf("shard %d: lookup of entry %d's key found %d", i, idx, got)
			}
		}
		if live != sh.used {
			t.Errorf("shard %d: %d live entries, table holds %d", i, live, sh.used)
		}
		if keys != sh.keys.Load() || expires != sh.expires.Load() {
			t.Errorf("shard %d: counted %d keys %d expires, counters say %d %d", i, keys, expires, sh.keys.Load(), sh.expires.Load())
		}
		if shMem != sh.mem {
			t.Errorf("shard %d: entries cost %d, shard says %d", i, shMem, sh.mem)
		}
		mem += shMem
		sh.mu.Unlock()
	}
	if got := s.mem.Load(); got != mem {
		t.Errorf("store memory %d, entries cost %d", got, mem)
	}
}

func hashOf(k []byte) uint64 { return xxhash.Sum64(k) }
