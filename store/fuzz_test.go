package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// model is the store's behaviour written as simply as possible: a map.
type model struct {
	m        map[string]*modelEntry
	versions map[string]map[uint64]bool // every version each key has had
	expired  map[string]bool            // keys lookup found expired (this step)
	now      int64
}

type modelEntry struct {
	val         []byte
	kind        Kind
	exp         int64
	cache       Cache
	hasCache    bool
	placeholder bool
	version     uint64
}

// lookup returns the record for key as the store must see it: nil once expired.
func (m *model) lookup(key string) *modelEntry {
	e := m.m[key]
	if e != nil && e.exp != 0 && m.now > e.exp {
		delete(m.m, key)
		if !e.placeholder {
			m.expired[key] = true
		}
		return nil
	}
	return e
}

func (m *model) live(key string) *modelEntry {
	if e := m.lookup(key); e != nil && !e.placeholder {
		return e
	}
	return nil
}

// FuzzStore runs a random sequence of operations against the store and the
// model and compares every answer.
func FuzzStore(f *testing.F) {
	f.Add([]byte{0, 1, 20, 1, 1, 0, 3, 1, 5, 4, 1, 3, 9, 6, 50, 1, 1, 10, 0})
	f.Add([]byte{7, 2, 30, 5, 1, 2, 0, 2, 255, 0, 3, 2, 200, 8, 3, 10, 4, 9, 1, 3, 10})
	f.Add(bytes.Repeat([]byte{0, 3, 100, 3, 4, 3, 7, 9, 2, 6, 5, 1, 4, 10}, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		clk := newFakeClock(start)
		md := &model{m: map[string]*modelEntry{}, versions: map[string]map[uint64]bool{}, expired: map[string]bool{}, now: start}
		var removed []string
		cfg := Config{Shards: 2, Clock: clk, OnRemove: func(k []byte) { removed = append(removed, string(k)) }}
		// One input in four runs under a memory limit that forces eviction:
		// then keys may vanish, but only with an OnRemove call (placeholders,
		// which are not keys, silently), and only a write that cannot fit at
		// all may fail.
		const limit = 6000
		evicting := len(data) > 0 && data[0]%4 == 1
		if evicting {
			cfg.MaxMemory, cfg.Policy = limit, AllKeysLRU
		}
		s := New(cfg)
		failed := func(err error) bool {
			if evicting && errors.Is(err, ErrOOM) {
				return true
			}
			if err != nil {
				t.Fatal(err)
			}
			return false
		}
		keys := []string{"a", "b", "key-with-a-longer-name-0123456789", "c", "", string(make([]byte, 300))}
		pos := 0
		next := func() int {
			if pos >= len(data) {
				return 0
			}
			pos++
			return int(data[pos-1])
		}
		payload := func() []byte {
			n := next()
			switch {
			case n > 250:
				n = 70000 + n
			case n > 200:
				n = 3000 + n
			}
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(n + i)
			}
			return b
		}
		expiry := func() int64 {
			if d := next(); d%3 != 0 {
				return md.now + int64(d%40)
			}
			return 0
		}
		var h Handle
		for step := 0; pos < len(data); step++ {
			op, k := next()%12, keys[next()%len(keys)]
			key := []byte(k)
			s.Open(&h, key, nil)
			e := md.lookup(k)
			if got, want := h.Exists(), e != nil && !e.placeholder; got != want {
				t.Fatalf("step %d: %q Exists %v, model %v", step, k, got, want)
			}
			if _, ok := h.Cache(); evicting && e != nil && e.placeholder && !ok {
				delete(md.m, k) // evicted
				e = nil
			}
			if e != nil && h.Version() != e.version {
				t.Fatalf("step %d: %q version %d, model %d", step, k, h.Version(), e.version)
			}
			wrote := false
			switch op {
			case 0:
				v, kind, exp := payload(), Kind(1+next()%2), expiry()
				if failed(h.Set(v, kind, exp)) {
					break
				}
				md.m[k] = &modelEntry{val: v, kind: kind, exp: exp}
				wrote = true
			case 1:
				if e != nil && !e.placeholder {
					if !bytes.Equal(h.Value(), e.val) || h.Kind() != e.kind || h.ExpireAt() != e.exp {
						t.Fatalf("step %d: %q = %q kind %v exp %d, model %q %v %d", step, k, h.Value(), h.Kind(), h.ExpireAt(), e.val, e.kind, e.exp)
					}
				} else if h.Value() != nil || h.Kind() != KindNone || h.ExpireAt() != 0 {
					t.Fatalf("step %d: absent %q has value %q kind %v", step, k, h.Value(), h.Kind())
				}
				c, ok := h.Cache()
				if want := e != nil && e.hasCache; ok != want || (ok && c != e.cache) {
					t.Fatalf("step %d: %q cache %+v %v, model %+v %v", step, k, c, ok, e.cache, want)
				}
			case 2:
				h.Delete()
				delete(md.m, k)
			case 3:
				b := payload()
				n, err := h.Append(b)
				if failed(err) {
					break
				}
				if e == nil || e.placeholder {
					md.m[k] = &modelEntry{val: b, kind: KindString}
				} else {
					e.val = append(e.val, b...)
				}
				if n != len(md.m[k].val) {
					t.Fatalf("step %d: Append returned %d, model %d", step, n, len(md.m[k].val))
				}
				wrote = true
			case 4:
				off, b := next()*next()%5000, payload()
				b = b[:min(len(b), next()%8)]
				n, err := h.SetRange(off, b)
				if failed(err) {
					break
				}
				if len(b) > 0 {
					if e == nil || e.placeholder {
						e = &modelEntry{kind: KindString}
						md.m[k] = e
					}
					if len(e.val) < off+len(b) {
						e.val = append(e.val, make([]byte, off+len(b)-len(e.val))...)
					}
					copy(e.val[off:], b)
					wrote = true
				}
				want := 0
				if e := md.live(k); e != nil {
					want = len(e.val)
				}
				if n != want {
					t.Fatalf("step %d: SetRange returned %d, model %d", step, n, want)
				}
			case 5:
				exp := expiry()
				h.SetExpireAt(exp)
				if e != nil && !e.placeholder {
					e.exp = exp
					wrote = true
				}
			case 6:
				d := int64(next() % 25)
				clk.advance(d)
				md.now += d
			case 7:
				c := Cache{FreshUntil: int64(next()), LeaseToken: uint64(next())}
				if next()%4 != 0 {
					c.LeaseUntil = md.now + int64(next()%30)
				}
				if failed(h.UpdateCache(c)) {
					break
				}
				switch {
				case e == nil && c.LeaseUntil != 0:
					md.m[k] = &modelEntry{placeholder: true, exp: c.LeaseUntil, cache: c, hasCache: true}
				case e == nil:
				case e.placeholder && c.LeaseUntil == 0:
					delete(md.m, k)
				case e.placeholder:
					e.cache, e.exp = c, c.LeaseUntil
				default:
					e.cache, e.hasCache = c, true
				}
			case 8:
				v, exp := payload(), expiry()
				c := Cache{FreshUntil: int64(next()), LeaseToken: uint64(next())}
				if failed(h.SetCache(v, exp, c)) {
					break
				}
				md.m[k] = &modelEntry{val: v, kind: KindString, exp: exp, cache: c, hasCache: true}
				wrote = true
			case 9:
				h.Close()
				s.ExpireCycle()
				s.Open(&h, key, nil)
			case 10:
				h.Close()
				seen := scanAll(s, 1+next()%5, nil)
				want := 0
				for mk := range md.m {
					if md.live(mk) != nil {
						want++
						if seen[mk] != 1 {
							t.Fatalf("step %d: Scan saw %q %d times", step, mk, seen[mk])
						}
					}
				}
				if len(seen) != want || s.Len() != want {
					t.Fatalf("step %d: Scan saw %d keys, Len %d, model %d", step, len(seen), s.Len(), want)
				}
				s.Open(&h, key, nil)
			case 11:
				if next()%8 == 0 {
					h.Close()
					s.Flush(nil)
					clear(md.m)
					s.Open(&h, key, nil)
				}
			}
			if wrote {
				e := md.m[k]
				v := h.Version()
				if v == 0 || md.versions[k][v] {
					t.Fatalf("step %d: %q got version %d, zero or had before", step, k, v)
				}
				if md.versions[k] == nil {
					md.versions[k] = map[uint64]bool{}
				}
				md.versions[k][v] = true
				e.version = v
			}
			h.Close()
			for _, r := range removed {
				if md.expired[r] {
					continue // the expiry of the record the model dropped on lookup
				}
				e := md.m[r]
				if evicting && e != nil && !e.placeholder {
					delete(md.m, r)
					continue
				}
				if e == nil || e.placeholder || e.exp == 0 || md.now <= e.exp {
					t.Fatalf("step %d: OnRemove(%q) for a key that has not expired", step, r)
				}
			}
			if m := s.Memory(); evicting && m > limit {
				t.Fatalf("step %d: memory %d over the limit", step, m)
			}
			removed = removed[:0]
			clear(md.expired)
		}
		checkConsistent(t, s)
		if t.Failed() {
			t.Log(fmt.Sprint(data))
		}
	})
}
