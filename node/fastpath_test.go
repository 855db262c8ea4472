package node

import (
	"context"
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
