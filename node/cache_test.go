package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCacheStates(t *testing.T) {
	n, clock := newTestNode(t, Config{})
	s := connect(t, n)
	// A miss hands out one lease; others wait.
	miss := s.do("CACHE.GET", "k").([]any)
	if norm(miss[0]) != "miss" || miss[1] != nil || miss[2].(int64) <= 0 {
		t.Fatalf("first reader of a missing key: %#v", norm(miss))
	}
	token := miss[2].(int64)
	s.expect([]any{"wait", nil, nil}, "CACHE.GET", "k")
	s.expect(int64(0), "EXISTS", "k") // the lease is not a key
	s.expect(int64(0), "DBSIZE")
	s.expect("OK", "CACHE.FILL", "k", token, "v1", "FRESH", "1000", "STALE", "5000")
	s.expect(Error(string(ErrNoLease)), "CACHE.FILL", "k", token, "v1", "FRESH", "1000")
	s.expect([]any{"fresh", "v1", nil}, "CACHE.GET", "k")
	s.expect("v1", "GET", "k")
	s.expect(int64(6), "TTL", "k") // to the end of the stale window

	// Stale: exactly one revalidation lease, then stale for everyone else.
	clock.Advance(1000 * time.Millisecond)
	re := s.do("CACHE.GET", "k", "LEASE", "100").([]any)
	if norm(re[0]) != "revalidate" || norm(re[1]) != "v1" || re[2].(int64) <= token {
		t.Fatalf("first reader of a stale key: %#v", norm(re))
	}
	s.expect([]any{"stale", "v1", nil}, "CACHE.GET", "k")
	// An unfilled lease lapses and passes to the next reader with a new token.
	clock.Advance(100 * time.Millisecond)
	re2 := s.do("CACHE.GET", "k").([]any)
	if norm(re2[0]) != "revalidate" || re2[2].(int64) <= re[2].(int64) {
		t.Fatalf("after the lease lapsed: %#v", norm(re2))
	}
	s.expect(Error(string(ErrNoLease)), "CACHE.FILL", "k", re[2], "old", "FRESH", "1000")
	// ABORT returns the lease; the stale value stays (stale-if-error).
	s.expect(int64(1), "CACHE.ABORT", "k", re2[2])
	s.expect(int64(0), "CACHE.ABORT", "k", re2[2])
	re3 := s.do("CACHE.GET", "k").([]any)
	if norm(re3[0]) != "revalidate" || norm(re3[1]) != "v1" {
		t.Fatalf("after ABORT: %#v", norm(re3))
	}
	// SET revokes the lease: the late fill cannot overwrite newer data.
	s.expect("OK", "SET", "k", "direct")
	s.expect(Error(string(ErrNoLease)), "CACHE.FILL", "k", re3[2], "stale-data", "FRESH", "1000")
	s.expect("direct", "GET", "k")
	s.expect([]any{"fresh", "direct", nil}, "CACHE.GET", "k")

	// INVALIDATE turns an entry stale now and kills its leases.
	s.expect("OK", "CACHE.SET", "p", "v", "FRESH", "10000", "STALE", "10000")
	s.expect([]any{"fresh", "v", nil}, "CACHE.GET", "p")
	s.expect(int64(1), "CACHE.INVALIDATE", "p")
	r := s.do("CACHE.GET", "p").([]any)
	if norm(r[0]) != "revalidate" {
		t.Fatalf("after INVALIDATE: %#v", norm(r))
	}
	s.expect(int64(1), "CACHE.INVALIDATE", "p")
	s.expect(Error(string(ErrNoLease)), "CACHE.FILL", "p", r[2], "x", "FRESH", "1")
	s.expect(int64(0), "CACHE.INVALIDATE", "nope")

	// The whole entry goes at the end of the stale window (a key expires
	// once the clock is past its expiry time, as in Redis).
	clock.Advance(20*time.Second + time.Millisecond)
	s.expect(nil, "GET", "p")

	// DEL revokes a miss's lease.
	m := s.do("CACHE.GET", "d").([]any)
	s.expect(int64(0), "DEL", "d")
	s.expect(Error(string(ErrNoLease)), "CACHE.FILL", "d", m[2], "x", "FRESH", "1")

	for _, bad := range [][]any{
		{"CACHE.SET", "k", "v"},
		{"CACHE.SET", "k", "v", "FRESH"},
		{"CACHE.SET", "k", "v", "FRESH", "-1"},
		{"CACHE.SET", "k", "v", "FRESH", "x"},
		{"CACHE.SET", "k", "v", "STALE", "10"},
		{"CACHE.GET", "k", "LEASE", "0"},
		{"CACHE.GET", "k", "NOPE"},
		{"CACHE.FILL", "k", "abc", "v", "FRESH", "1"},
		{"CACHE.FILL", "k", "-1", "v", "FRESH", "1"},
	} {
		if _, ok := s.do(bad...).(Error); !ok {
			t.Errorf("%v: not an error", bad)
		}
	}
}

// oneLease runs 1,000 concurrent CACHE.GETs and counts the states.
func oneLease(t *testing.T, n *Node, key string) map[CacheState]int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[CacheState]int{}
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := n.CacheGet(context.Background(), key, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[r.State]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts
}

func TestCacheHandsOutExactlyOneLease(t *testing.T) {
	n, clock := newTestNode(t, Config{})
	ctx := context.Background()
	if got := oneLease(t, n, "missing"); got[CacheMiss] != 1 || got[CacheWait] != 999 {
		t.Fatalf("1,000 readers of a missing key: %v, want 1 miss and 999 wait", got)
	}
	if err := n.CacheSet(ctx, "hot", []byte("v"), time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	if got := oneLease(t, n, "hot"); got[CacheRevalidate] != 1 || got[CacheStale] != 999 {
		t.Fatalf("1,000 readers of a stale key: %v, want 1 revalidate and 999 stale", got)
	}
}

func TestFetchCallsTheLoaderOnce(t *testing.T) {
	n, clock := newTestNode(t, Config{})
	var calls atomic.Int32
	started, release := make(chan struct{}, 1), make(chan struct{})
	loader := func(ctx context.Context) ([]byte, error) {
		calls.Add(1)
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		return []byte("loaded"), nil
	}
	opts := FetchOptions{Fresh: time.Second, Stale: time.Minute}
	var wg sync.WaitGroup
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := n.Fetch(context.Background(), "k", loader, opts)
			if err != nil || string(v) != "loaded" {
				t.Errorf("Fetch: %q %v", v, err)
			}
		}()
	}
	<-started
	close(release)
	wg.Wait()
	if c := calls.Load(); c != 1 {
		t.Fatalf("loader ran %d times for 1,000 concurrent misses, want 1", c)
	}

	// A stale hit returns at once and refreshes in the background; a failed
	// refresh keeps the stale value and is reported.
	clock.Advance(2 * time.Second)
	reported := make(chan error, 1)
	failing := FetchOptions{Fresh: time.Second, Stale: time.Minute, OnError: func(_ string, err error) { reported <- err }}
	boom := errors.New("database down")
	v, err := n.Fetch(context.Background(), "k", func(context.Context) ([]byte, error) { return nil, boom }, failing)
	if err != nil || string(v) != "loaded" {
		t.Fatalf("stale Fetch: %q %v", v, err)
	}
	if got := <-reported; !errors.Is(got, boom) {
		t.Fatalf("OnError got %v", got)
	}
	v, _ = n.Fetch(context.Background(), "k", func(context.Context) ([]byte, error) { return []byte("new"), nil }, opts)
	if string(v) != "loaded" {
		t.Fatalf("stale value after a failed refresh: %q", v)
	}
}

func BenchmarkExecCacheGet(b *testing.B) {
	n, _ := newTestNode(b, Config{})
	if err := n.CacheSet(context.Background(), "key:000001", make([]byte, 64), time.Hour, time.Hour); err != nil {
		b.Fatal(err)
	}
	c := n.newClient(nil, "bench", "bench")
	argv := [][]byte{[]byte("CACHE.GET"), []byte("key:000001")}
	var w nopWriter
	b.ReportAllocs()
	for b.Loop() {
		c.Exec(w, argv)
	}
}
