//go:build !race

// The race detector allocates, so allocation counts are checked without it:
// make test runs the allocation tests in a second pass without -race.

package store

import "testing"

// TestNoAllocs holds the hot paths to zero allocations: Get of an existing
// key, overwrite with a value of the same size class, and a miss.
func TestNoAllocs(t *testing.T) {
	s, _ := newTest(t, Config{})
	key, val := key16(1), value64(1)
	mustSet(t, s, string(key), string(val), 0)
	var h Handle
	var l Locks // held by the caller, as node keeps one per client
	keys := [][]byte{key, []byte("other")}
	absent := []byte("absent")
	for name, f := range map[string]func(){
		"get": func() {
			s.Open(&h, key, nil)
			_ = h.Value()
			h.Close()
		},
		"overwrite": func() {
			s.Open(&h, key, nil)
			_ = h.Set(val, KindString, 0)
			h.Close()
		},
		"miss": func() {
			s.Open(&h, absent, nil)
			_ = h.Exists()
			h.Close()
		},
		"multi-key": func() {
			s.LockKeys(&l, keys)
			s.Open(&h, key, &l)
			_ = h.Set(val, KindLimiter, 0)
			h.Close()
			l.Unlock()
		},
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}
