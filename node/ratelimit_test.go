package node

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestThrottleLikeRedisCell(t *testing.T) {
	n, clock := newTestNode(t, Config{})
	s := connect(t, n)
	// redis-cell's README: 15 max burst, 30 tokens per 60 seconds.
	s.expect([]any{int64(0), int64(16), int64(15), int64(-1), int64(2)}, "CL.THROTTLE", "user123", "15", "30", "60", "1")
	s.expect([]any{int64(0), int64(16), int64(14), int64(-1), int64(4)}, "CL.THROTTLE", "user123", "15", "30", "60")
	// Quantity 0 reads without taking.
	s.expect([]any{int64(0), int64(16), int64(14), int64(-1), int64(4)}, "CL.THROTTLE", "user123", "15", "30", "60", "0")
	s.expect("ratelimit", "TYPE", "user123")
	s.expect(Error(errWrongType), "GET", "user123")
	// Emptying the bucket, then being refused with a retry time.
	for range 14 {
		s.do("CL.THROTTLE", "user123", "15", "30", "60")
	}
	s.expect([]any{int64(1), int64(16), int64(0), int64(2), int64(32)}, "CL.THROTTLE", "user123", "15", "30", "60")
	// After two seconds one token is back.
	clock.Advance(2 * time.Second)
	s.expect([]any{int64(0), int64(16), int64(0), int64(-1), int64(32)}, "CL.THROTTLE", "user123", "15", "30", "60")
	// The record expires when the bucket is full again: no memory for idle buckets.
	clock.Advance(33 * time.Second)
	s.expect(int64(0), "EXISTS", "user123")

	s.expect(Error("Cell error: Store error: Usage: cl.throttle <key> <max_burst> <count per period> <period> [<quantity>]"), "CL.THROTTLE", "k", "1")
	s.expect(Error("Cell error: Store error: Zero rates are not supported"), "CL.THROTTLE", "k", "1", "0", "60")
	s.expect("OK", "SET", "str", "v")
	s.expect(Error(errWrongType), "CL.THROTTLE", "str", "1", "1", "1")
}

func TestTake(t *testing.T) {
	n, clock := newTestNode(t, Config{})
	s := connect(t, n)
	// 10 per second, capacity 10: 100 ms per token.
	s.expect([]any{int64(0), int64(10), int64(9), int64(-1), int64(100)}, "RL.TAKE", "api", "LIMIT", "10", "PERIOD", "1000")
	s.expect([]any{int64(0), int64(10), int64(4), int64(-1), int64(600)}, "RL.TAKE", "api", "LIMIT", "10", "PERIOD", "1000", "COST", "5")
	s.expect([]any{int64(1), int64(10), int64(4), int64(100), int64(600)}, "RL.TAKE", "api", "LIMIT", "10", "PERIOD", "1000", "COST", "5")
	s.expect(Error("ERR COST is larger than the bucket capacity"), "RL.TAKE", "api", "LIMIT", "10", "PERIOD", "1000", "COST", "11")
	s.expect(Error("ERR syntax error"), "RL.TAKE", "api", "LIMIT", "10", "PERIOD", "1000", "NOPE", "1")
	// A clock step backwards never grants tokens: the bucket is then an hour
	// further from full, so the same request is refused for that long.
	clock.Advance(-time.Hour)
	s.expect([]any{int64(1), int64(10), int64(0), int64(3600100), int64(3600600)}, "RL.TAKE", "api", "LIMIT", "10", "PERIOD", "1000", "COST", "5")
}

// TestTakeIsExactUnderConcurrency: 50 callers taking 100 times each from a
// bucket of 1,000 that cannot refill during the test admit exactly 1,000.
func TestTakeIsExactUnderConcurrency(t *testing.T) {
	n, _ := newTestNode(t, Config{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := 0
			for range 100 {
				v, err := n.Do(context.Background(), "RL.TAKE", "shared", "LIMIT", "1000", "PERIOD", "86400000")
				if err != nil {
					t.Error(err)
					return
				}
				if v.([]any)[0] == int64(0) {
					mine++
				}
			}
			mu.Lock()
			allowed += mine
			mu.Unlock()
		}()
	}
	wg.Wait()
	if allowed != 1000 {
		t.Fatalf("admitted %d of 5,000 takes against 1,000 tokens, want exactly 1,000", allowed)
	}
}

func TestThrottleAPI(t *testing.T) {
	n, clock := newTestNode(t, Config{})
	ctx := context.Background()
	lim := Limit{Rate: 2, Period: time.Second}
	for i := range 2 {
		r, err := n.Throttle(ctx, "ip:1", lim, 1)
		if err != nil || !r.Allowed || r.Remaining != int64(1-i) {
			t.Fatalf("take %d: %+v %v", i, r, err)
		}
	}
	r, err := n.Throttle(ctx, "ip:1", lim, 1)
	if err != nil || r.Allowed || r.RetryAfter != 500*time.Millisecond || r.ResetAfter != time.Second {
		t.Fatalf("third take: %+v %v", r, err)
	}
	h := http.Header{}
	r.SetHeaders(h)
	want := map[string]string{"RateLimit-Limit": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "1", "Retry-After": "1"}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	clock.Advance(500 * time.Millisecond)
	if r, _ := n.Throttle(ctx, "ip:1", lim, 1); !r.Allowed {
		t.Fatalf("after the retry time: %+v", r)
	}
	if _, err := n.Throttle(ctx, "ip:1", lim, 3); err == nil {
		t.Fatal("a cost above the burst must be an error")
	}
}

func BenchmarkExecThrottle(b *testing.B) {
	benchExec(b, "CL.THROTTLE", "user123", "1000000", "1000000", "1")
}

func BenchmarkThrottleAPI(b *testing.B) {
	n, _ := newTestNode(b, Config{})
	ctx := context.Background()
	lim := Limit{Rate: 1_000_000, Period: time.Millisecond, Burst: 1 << 30} // never limits
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.Throttle(ctx, "k", lim, 1); err != nil {
			b.Fatal(err)
		}
	}
}
