package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
	"unsafe"
)

func TestPolicyNames(t *testing.T) {
	for p := AllKeysLFU; p <= NoEviction; p++ {
		got, err := ParsePolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if p, err := ParsePolicy("AllKeys-LRU"); err != nil || p != AllKeysLRU {
		t.Errorf("ParsePolicy is case-sensitive: %v %v", p, err)
	}
	if _, err := ParsePolicy("lru"); !errors.Is(err, ErrPolicy) {
		t.Errorf("ParsePolicy(lru) err = %v", err)
	}
}

func TestSizeClasses(t *testing.T) {
	if sz := unsafe.Sizeof(entry{}); sz != 32 {
		t.Fatalf("entry is %d bytes, want 32", sz)
	}
	prev := 0
	for c, sz := range classSizes {
		if sz <= prev || sz%8 != 0 {
			t.Fatalf("class %d size %d after %d", c, sz, prev)
		}
		prev = sz
	}
	if classSizes[numClasses-1] != maxSmall {
		t.Fatalf("last class %d, want %d", classSizes[numClasses-1], maxSmall)
	}
	for size := 1; size <= maxSmall+1; size++ {
		c := classOf(size)
		if size > maxSmall {
			if c != largeClass {
				t.Fatalf("classOf(%d) = %d, want large", size, c)
			}
			continue
		}
		if classSizes[c] < size || (c > 0 && classSizes[c-1] >= size) {
			t.Fatalf("classOf(%d) = %d (size %d): not the smallest that fits", size, c, classSizes[c])
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, 256}, {1, 1}, {3, 4}, {256, 256}, {5000, MaxShards}} {
		s := New(Config{Shards: tc.in})
		if len(s.shards) != tc.want {
			t.Errorf("Shards %d: got %d shards, want %d", tc.in, len(s.shards), tc.want)
		}
	}
	s := New(Config{})
	now := s.Now()
	if d := now - time.Now().UnixMilli(); d > 1000 || d < -1000 {
		t.Errorf("system clock off by %d ms", d)
	}
}

func TestSetGetDelete(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 4})
	if _, ok := get(s, "a"); ok {
		t.Fatal("empty store has a")
	}
	mustSet(t, s, "a", "1", 0)
	mustSet(t, s, "b", "22", 0)
	if v, ok := get(s, "a"); !ok || string(v) != "1" {
		t.Fatalf("get a = %q %v", v, ok)
	}
	var h Handle
	s.Open(&h, []byte("b"), nil)
	if !h.Exists() || h.Kind() != KindString || string(h.Value()) != "22" || h.ExpireAt() != 0 {
		t.Fatalf("b: exists %v kind %v value %q", h.Exists(), h.Kind(), h.Value())
	}
	if err := h.Set([]byte("limiter"), KindLimiter, 0); err != nil {
		t.Fatal(err)
	}
	if h.Kind() != KindLimiter {
		t.Fatalf("kind after Set = %v", h.Kind())
	}
	h.Close()
	h.Close() // twice is harmless
	if s.Len() != 2 || s.Stats().Keys != 2 {
		t.Fatalf("Len %d Keys %d, want 2", s.Len(), s.Stats().Keys)
	}
	if !del(s, "a") || del(s, "a") {
		t.Fatal("delete a twice")
	}
	if _, ok := get(s, "a"); ok {
		t.Fatal("a after delete")
	}
	if s.Len() != 1 {
		t.Fatalf("Len %d, want 1", s.Len())
	}
	checkConsistent(t, s)
}

func TestManyKeys(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 2})
	const n = 20000
	for i := range n {
		mustSet(t, s, string(key16(i)), string(value64(i)), 0)
	}
	checkConsistent(t, s)
	for i := range n {
		if v, ok := get(s, string(key16(i))); !ok || !bytes.Equal(v, value64(i)) {
			t.Fatalf("key %d = %q %v", i, v, ok)
		}
	}
	for i := 0; i < n; i += 2 {
		del(s, string(key16(i)))
	}
	checkConsistent(t, s)
	for i := range n {
		_, ok := get(s, string(key16(i)))
		if ok != (i%2 == 1) {
			t.Fatalf("key %d present %v", i, ok)
		}
	}
	for i := 1; i < n; i += 2 {
		del(s, string(key16(i)))
	}
	checkConsistent(t, s)
	if s.Len() != 0 || s.Stats().Memory != 0 {
		t.Fatalf("after deleting all: Len %d Memory %d", s.Len(), s.Stats().Memory)
	}
	// The table shrank as it emptied.
	for i := range s.shards {
		if n := len(s.shards[i].table); n > 16 {
			t.Errorf("shard %d table still %d slots", i, n)
		}
	}
}

func TestOverwriteSizes(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 1})
	sizes := []int{0, 1, 7, 8, 100, 255, 256, 300, 4000, 70000, 200000, 70000, 300, 5, 0, 100000}
	for _, n := range sizes {
		val := bytes.Repeat([]byte{byte(n)}, n)
		mustSet(t, s, "k", string(val), 0)
		mustSet(t, s, "other", "x", 0)
		if v, _ := get(s, "k"); !bytes.Equal(v, val) {
			t.Fatalf("size %d: value differs (len %d)", n, len(v))
		}
		checkConsistent(t, s)
	}
	// A key of every size round the class boundaries.
	for n := 1; n < 600; n++ {
		k := string(bytes.Repeat([]byte{'k'}, n))
		mustSet(t, s, k, "v", 0)
		if v, ok := get(s, k); !ok || string(v) != "v" {
			t.Fatalf("key of %d bytes: %q %v", n, v, ok)
		}
	}
	checkConsistent(t, s)
}

func TestSetOwnValue(t *testing.T) {
	s, _ := newTest(t, Config{Shards: 1})
	mustSet(t, s, "k", "hello world", 0)
	var h Handle
	s.Open(&h, []byte("k"), nil)
	// Shrinking to a part of itself, in place and across classes.
	if err := h.Set(h.Value()[6:], KindString, 0); err != nil {
		t.Fatal(err)
	}
	if string(h.Value()) != "world" {
		t.Fatalf("value %q", h.Value())
	}
	if err := h.SetCache(h.Value(), 0, Cache{FreshUntil: 1}); err != nil {
		t.Fatal(err)
	}
	if string(h.Value()) != "world" {
		t.Fatalf("value after SetCache %q", h.Value())
	}
	if err := h.Set(h.Value(), KindString, 0); err != nil {
		t.Fatal(err)
	}
	if string(h.Value()) != "world" {
		t.Fatalf("value after Set %q", h.Value())
	}
	h.Close()
	checkConsistent(t, s)
}

func TestVersions(t *testing.T) {
	s, clk := newTest(t, Config{Shards: 2})
	seen := map[uint64]bool{}
	note := func(v uint64) {
		t.Helper()
		if v == 0 || seen[v] {
			t.Fatalf("version %d zero or seen before", v)
		}
		seen[v] = true
	}
	if v := version(s, "k"); v != 0 {
		t.Fatalf("absent key version %d", v)
	}
	mustSet(t, s, "k", "1", 0)
	v1 := version(s, "k")
	note(v1)
	if version(s, "k") != v1 {
		t.Fatal("read changed the version")
	}
	mustSet(t, s, "k", "1", 0)
	note(version(s, "k"))
	var h Handle
	s.Open(&h, []byte("k"), nil)
	before := h.Version()
	if err := h.UpdateCache(Cache{FreshUntil: 5}); err != nil {
		t.Fatal(err)
	}
	if h.Version() != before {
		t.Fatal("UpdateCache changed the version")
	}
	h.SetExpireAt(clk.nowMS() + 10)
	note(h.Version())
	if _, err := h.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	note(h.Version())
	if _, err := h.SetRange(0, []byte("y")); err != nil {
		t.Fatal(err)
	}
	note(h.Version())
	h.Delete()
	if h.Version() != 0 {
		t.Fatal("deleted key has a version")
	}
	if err := h.Set([]byte("again"), KindString, 0); err != nil {
		t.Fatal(err)
	}
	note(h.Version())
	h.Close()
	// Expired and created again.
	clk.advance(100)
	mustSet(t, s, "k", "3", 0)
	note(version(s, "k"))
	s.Flush(nil)
	mustSet(t, s, "k", "4", 0)
	note(version(s, "k"))
}

func TestLazyExpiry(t *testing.T) {
	var removed []string
	s, clk := newTest(t, Config{Shards: 4, OnRemove: func(k []byte) { removed = append(removed, string(k)) }})
	mem0 := s.Stats().Memory
	mustSet(t, s, "k", "v", clk.nowMS()+100)
	mustSet(t, s, "p", "v", 0)
	if st := s.Stats(); st.Keys != 2 || st.Expires != 1 {
		t.Fatalf("stats %+v", st)
	}
	clk.advance(100)
	if _, ok := get(s, "k"); !ok {
		t.Fatal("expired at its expiry time: Redis keeps it until the time has passed")
	}
	clk.advance(1)
	if _, ok := get(s, "k"); ok {
		t.Fatal("k outlived its expiry")
	}
	if len(removed) != 1 || removed[0] != "k" {
		t.Fatalf("OnRemove got %q", removed)
	}
	st := s.Stats()
	if st.Expired != 1 || st.Keys != 1 || st.Expires != 0 {
		t.Fatalf("stats %+v", st)
	}
	del(s, "p")
	if got := s.Stats().Memory; got != mem0 {
		t.Fatalf("memory %d after expiry and delete, want %d", got, mem0)
	}
	if len(removed) != 1 {
		t.Fatal("Delete called OnRemove")
	}
	checkConsistent(t, s)
}

func TestExpireAtChanges(t *testing.T) {
	s, clk := newTest(t, Config{Shards: 1})
	mustSet(t, s, "k", "v", 0)
	var h Handle
	s.Open(&h, []byte("k"), nil)
	h.SetExpireAt(clk.nowMS() + 50)
	if h.ExpireAt() != clk.nowMS()+50 || s.Stats().Expires != 1 {
		t.Fatalf("ExpireAt %d expires %d", h.ExpireAt(), s.Stats().Expires)
	}
	h.SetExpireAt(0)
	h.Close()
	if s.Stats().Expires != 0 {
		t.Fatal("persist left the key counted as volatile")
	}
	clk.advance(100)
	if _, ok := get(s, "k"); !ok {
		t.Fatal("persisted key expired")
	}
	// Set replaces the expiry.
	mustSet(t, s, "k", "v", clk.nowMS()+10)
	mustSet(t, s, "k", "v", 0)
	clk.advance(100)
	if _, ok := get(s, "k"); !ok {
		t.Fatal("Set did not clear the expiry")
	}
	// SetExpireAt on an absent key does nothing.
	s.Open(&h, []byte("absent"), nil)
	h.SetExpireAt(clk.nowMS() + 10)
	h.Close()
	if s.Len() != 1 {
		t.Fatal("SetExpireAt created a key")
	}
	checkConsistent(t, s)
}

func TestActiveExpiry(t *testing.T) {
	var removed int
	s, clk := newTest(t, Config{Shards: 16, OnRemove: func([]byte) { removed++ }})
	const volatile, persistent = 30000, 1000
	for i := range volatile {
		mustSet(t, s, fmt.Sprint("v", i), "x", clk.nowMS()+int64(1+i%100))
	}
	for i := range persistent {
		mustSet(t, s, fmt.Sprint("p", i), "x", 0)
	}
	if n := s.ExpireCycle(); n != 0 {
		t.Fatalf("cycle before expiry removed %d", n)
	}
	clk.advance(50)
	total := 0
	calls := 0
	for {
		n := s.ExpireCycle()
		calls++
		total += n
		if n == 0 {
			break
		}
	}
	// Half have expired; sampling stops in a shard once fewer than a quarter
	// of a sample is expired, so most but not necessarily all are gone.
	if total < volatile/2*3/4 || total > volatile/2+volatile/100 {
		t.Fatalf("removed %d of the %d expired (in %d calls)", total, volatile/2, calls)
	}
	clk.advance(100)
	total = 0
	for n := s.ExpireCycle(); n > 0; n = s.ExpireCycle() {
		total += n
	}
	st := s.Stats()
	if st.Keys > persistent+volatile/100 {
		t.Fatalf("after all expired: %d keys left, want about %d (stats %+v)", st.Keys, persistent, st)
	}
	if int64(removed) != st.Expired {
		t.Fatalf("OnRemove called %d times, Expired %d", removed, st.Expired)
	}
	// Whatever sampling left, reads remove.
	for i := range volatile {
		get(s, fmt.Sprint("v", i))
	}
	st = s.Stats()
	if st.Keys != persistent || st.Expires != 0 || st.Expired != volatile {
		t.Fatalf("stats %+v", st)
	}
	checkConsistent(t, s)
}

func TestExpireCycleBounded(t *testing.T) {
	s, clk := newTest(t, Config{Shards: 1})
	for i := range 100000 {
		mustSet(t, s, fmt.Sprint(i), "x", clk.nowMS()+1)
	}
	clk.advance(2)
	n := s.ExpireCycle()
	if n == 0 || n > expireBudget {
		t.Fatalf("one cycle removed %d, want between 1 and %d", n, expireBudget)
	}
	for s.ExpireCycle() > 0 {
	}
	if s.Len() != 0 {
		t.Fatalf("%d keys left", s.Len())
	}
	checkConsistent(t, s)
}
