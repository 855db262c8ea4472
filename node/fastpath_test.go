package node

import (
	"context"
	"fmt"
	"testing"
)

// TestFastPath checks that the fast path gives GET's and CACHE.GET's
// answers, counts them as the commands, and declines what it must leave to
// Exec: an unauthenticated client, an ACL refusal, a wrong type, a lease
// to grant.
func TestFastPath(t *testing.T) {
	ctx := context.Background()
	n, err := New(Config{RequirePass: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	for _, cmd := range [][]any{
		{"SET", "k", "v"},
		{"CACHE.SET", "c", "cv", "FRESH", 60000},
		{"RL.TAKE", "rl", "LIMIT", 10, "PERIOD", 1000},
		{"ACL", "SETUSER", "reader", "on", ">pw", "~public:*", "+get"},
		{"SET", "public:x", "px"},
	} {
		if _, err := n.Do(ctx, cmd...); err != nil {
			t.Fatal(err)
		}
	}
	c, err := n.Connect(nil, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, r := c.FastGet(nil, []byte("k")); r.Status != FastSlow {
		t.Fatalf("before AUTH: %+v, want FastSlow", r)
	}
	c.login([]byte("default"), []byte("pw"))
	calls := func() int64 { g, _ := fastCommands(); return n.stats.perCmd[g.id].calls.Load() }
	before := calls()
	for _, tt := range []struct {
		key, want string
		found     bool
		status    FastStatus
	}{
		{"k", "v", true, FastDone},
		{"missing", "", false, FastDone},
		{"rl", "", false, FastSlow}, // WRONGTYPE
	} {
		v, r := c.FastGet(nil, []byte(tt.key))
		if string(v) != tt.want || r.Found != tt.found || r.Status != tt.status {
			t.Errorf("GET %s: %q %+v", tt.key, v, r)
		}
	}
	if got := calls() - before; got != 2 {
		t.Errorf("GET's call count grew by %d, want 2", got)
	}
	if v, r := c.FastCacheGet(nil, []byte("c"), 0); string(v) != "cv" || r.State != CacheFresh || r.Status != FastDone {
		t.Errorf("CACHE.GET fresh: %q %+v", v, r)
	}
	if _, r := c.FastCacheGet(nil, []byte("absent"), 0); r.Status != FastSlow {
		t.Errorf("CACHE.GET of a missing key (a lease to grant): %+v", r)
	}

	// A user allowed GET on public:* only.
	u, _ := n.Connect(nil, "test", "test")
	u.login([]byte("reader"), []byte("pw"))
	if v, r := u.FastGet(nil, []byte("public:x")); string(v) != "px" || r.Status != FastDone {
		t.Errorf("permitted GET: %q %+v", v, r)
	}
	if _, r := u.FastGet(nil, []byte("k")); r.Status != FastSlow {
		t.Errorf("GET of a key the user may not read: %+v, want FastSlow (Exec answers NOPERM)", r)
	}
	if _, r := u.FastCacheGet(nil, []byte("c"), 0); r.Status != FastSlow {
		t.Errorf("CACHE.GET the user may not run: %+v", r)
	}
	if rt := u.RouteKey("get", []byte("k")); rt.Moved {
		t.Errorf("RouteKey outside a cluster: %+v", rt)
	}

}

// BenchmarkFastGet is GET through the fast path, against BenchmarkExecGet.
func BenchmarkFastGet(b *testing.B) {
	n, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close(context.Background())
	n.Set(context.Background(), "k", make([]byte, 64), 0)
	c, _ := n.Connect(nil, "bench", "bench")
	key := []byte("k")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = c.FastGet(buf[:0], key)
	}
}

// TestFastBatch checks the batch form of the fast path: the same answers
// as FastGet and FastCacheGet, call counts and keyspace hits and misses
// exact once End returns, nothing counted for what it declines, ACL
// permissions on the command and on each key, and the client's state read
// again after End.
func TestFastBatch(t *testing.T) {
	ctx := context.Background()
	n, err := New(Config{RequirePass: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	for _, cmd := range [][]any{
		{"SET", "k", "v"},
		{"SET", "public:x", "px"},
		{"CACHE.SET", "c", "cv", "FRESH", 60000},
		{"CACHE.SET", "public:c", "pc", "FRESH", 60000},
		{"RL.TAKE", "rl", "LIMIT", 10, "PERIOD", 1000},
		{"ACL", "SETUSER", "reader", "on", ">pw", "~public:*", "+get"},
	} {
		if _, err := n.Do(ctx, cmd...); err != nil {
			t.Fatal(err)
		}
	}
	get, cacheGet := fastCommands()
	type counts struct{ gets, cacheGets, hits, misses int64 }
	now := func() counts {
		return counts{n.stats.perCmd[get.id].calls.Load(), n.stats.perCmd[cacheGet.id].calls.Load(), n.stats.hits.Load(), n.stats.misses.Load()}
	}
	grew := func(before counts) counts {
		a := now()
		return counts{a.gets - before.gets, a.cacheGets - before.cacheGets, a.hits - before.hits, a.misses - before.misses}
	}

	c, err := n.Connect(nil, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	var b FastBatch
	c.BeginFast(&b)
	if _, r := b.Get(nil, []byte("k")); r.Status != FastSlow {
		t.Fatalf("before AUTH: %+v, want FastSlow", r)
	}
	b.End()
	c.login([]byte("default"), []byte("pw"))

	before := now()
	c.BeginFast(&b)
	for _, tt := range []struct {
		cache     bool
		key, want string
		found     bool
		state     CacheState
		status    FastStatus
	}{
		{false, "k", "v", true, "", FastDone},
		{false, "missing", "", false, "", FastDone},
		{false, "rl", "", false, "", FastSlow}, // WRONGTYPE
		{true, "c", "cv", true, CacheFresh, FastDone},
		{true, "absent", "", false, "", FastSlow},    // a lease to grant
		{true, "k", "v", true, CacheFresh, FastDone}, // a plain string: always fresh
		{false, "k", "v", true, "", FastDone},
	} {
		var v []byte
		var r FastResult
		if tt.cache {
			v, r = b.CacheGet(nil, []byte(tt.key), 0)
		} else {
			v, r = b.Get(nil, []byte(tt.key))
		}
		if string(v) != tt.want || r.Found != tt.found || r.Status != tt.status || r.State != tt.state {
			t.Errorf("%v %s: %q %+v", tt.cache, tt.key, v, r)
		}
	}
	if _, r := b.CacheGet(nil, []byte("c"), -1); r.Status != FastSlow {
		t.Errorf("CACHE.GET with a negative lease: %+v, want FastSlow", r)
	}
	b.End()
	// 3 GETs ran (2 hits, 1 miss) and 2 CACHE.GETs (hits).
	want := counts{3, 2, 4, 1}
	if got := grew(before); got != want {
		t.Errorf("after End, counts grew by %+v, want %+v", got, want)
	}
	if cmd := c.lastCmd.Load(); cmd != get {
		t.Errorf("last command %v, want GET", cmd)
	}
	b.End() // twice: nothing more
	if got := grew(before); got != want {
		t.Errorf("after a second End, counts grew by %+v, want %+v", got, want)
	}

	// The batch goes on after End; a declined batch counts nothing.
	before = now()
	for range 3 {
		b.Get(nil, []byte("k"))
	}
	if got := grew(before); got != (counts{}) {
		t.Errorf("before End, counts grew by %+v", got)
	}
	b.End()
	if got := grew(before); got != (counts{3, 0, 3, 0}) {
		t.Errorf("second batch: counts grew by %+v, want 3 GETs, 3 hits", got)
	}
	before = now()
	c.Exec(nopWriter{}, [][]byte{[]byte("MULTI")})
	if _, r := b.Get(nil, []byte("k")); r.Status != FastSlow {
		t.Errorf("GET in MULTI: %+v, want FastSlow", r)
	}
	b.End()
	c.Exec(nopWriter{}, [][]byte{[]byte("DISCARD")})
	if got := grew(before); got != (counts{}) {
		t.Errorf("declined batch: counts grew by %+v", got)
	}

	// A user allowed GET on public:* only.
	u, _ := n.Connect(nil, "test", "test")
	u.login([]byte("reader"), []byte("pw"))
	before = now()
	u.BeginFast(&b)
	if v, r := b.Get(nil, []byte("public:x")); string(v) != "px" || r.Status != FastDone {
		t.Errorf("permitted GET: %q %+v", v, r)
	}
	if _, r := b.Get(nil, []byte("k")); r.Status != FastSlow {
		t.Errorf("GET of a key the user may not read: %+v, want FastSlow (Exec answers NOPERM)", r)
	}
	if _, r := b.CacheGet(nil, []byte("public:c"), 0); r.Status != FastSlow {
		t.Errorf("CACHE.GET the user may not run: %+v, want FastSlow", r)
	}
	if v, r := b.Get(nil, []byte("public:missing")); v != nil || r.Status != FastDone || r.Found {
		t.Errorf("permitted GET of a missing key: %q %+v", v, r)
	}
	b.End()
	if got := grew(before); got != (counts{2, 0, 1, 1}) {
		t.Errorf("ACL user's batch: counts grew by %+v, want 2 GETs, 1 hit, 1 miss", got)
	}

	// Permissions are read when a batch starts: after End, a changed user
	// applies.
	if _, err := n.Do(ctx, "ACL", "SETUSER", "reader", "-get", "+cache.get"); err != nil {
		t.Fatal(err)
	}
	if _, r := b.Get(nil, []byte("public:x")); r.Status != FastSlow {
		t.Errorf("GET after -get: %+v, want FastSlow", r)
	}
	if v, r := b.CacheGet(nil, []byte("public:c"), 0); string(v) != "pc" || r.Status != FastDone {
		t.Errorf("CACHE.GET after +cache.get: %q %+v", v, r)
	}
	if _, r := b.CacheGet(nil, []byte("c"), 0); r.Status != FastSlow {
		t.Errorf("CACHE.GET of a key the user may not read: %+v, want FastSlow", r)
	}
	b.End()
}

// BenchmarkFastBatch is 64 GETs through one FastBatch, against 64 calls of
// FastGet (BenchmarkFastGet64).
func BenchmarkFastBatch(b *testing.B) {
	n, c, keys := fastBenchNode(b)
	defer n.Close(context.Background())
	buf := make([]byte, 0, 64)
	var fb FastBatch
	b.ReportAllocs()
	for b.Loop() {
		c.BeginFast(&fb)
		for _, k := range keys {
			buf, _ = fb.Get(buf[:0], k)
		}
		fb.End()
	}
}

// BenchmarkFastGet64 is 64 GETs through FastGet, one at a time.
func BenchmarkFastGet64(b *testing.B) {
	n, c, keys := fastBenchNode(b)
	defer n.Close(context.Background())
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range keys {
			buf, _ = c.FastGet(buf[:0], k)
		}
	}
}

// fastBenchNode is a node with 64 keys of 64-byte values and a client.
func fastBenchNode(b *testing.B) (*Node, *Client, [][]byte) {
	n, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	var keys [][]byte
	for i := range 64 {
		k := fmt.Sprintf("key:%d", i)
		n.Set(context.Background(), k, make([]byte, 64), 0)
		keys = append(keys, []byte(k))
	}
	c, _ := n.Connect(nil, "bench", "bench")
	return n, c, keys
}

// BenchmarkFastBatchParallel and BenchmarkFastGet64Parallel are the same
// from a client per goroutine on every core, where per-key accounting
// shares cache lines between cores.
func BenchmarkFastBatchParallel(b *testing.B) {
	n, _, keys := fastBenchNode(b)
	defer n.Close(context.Background())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, _ := n.Connect(nil, "bench", "bench")
		buf := make([]byte, 0, 64)
		var fb FastBatch
		for pb.Next() {
			c.BeginFast(&fb)
			for _, k := range keys {
				buf, _ = fb.Get(buf[:0], k)
			}
			fb.End()
		}
	})
}

func BenchmarkFastGet64Parallel(b *testing.B) {
	n, _, keys := fastBenchNode(b)
	defer n.Close(context.Background())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, _ := n.Connect(nil, "bench", "bench")
		buf := make([]byte, 0, 64)
		for pb.Next() {
			for _, k := range keys {
				buf, _ = c.FastGet(buf[:0], k)
			}
		}
	})
}
