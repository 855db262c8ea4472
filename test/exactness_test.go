package test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sluicedb/sluice/node"
)

// TestCacheStampedeOverSockets: 200 connections read one missing key at the
// same moment and exactly one gets the lease to load it; then 200 read one
// stale key and exactly one gets the lease to refresh it.
func TestCacheStampedeOverSockets(t *testing.T) {
	t.Parallel()
	addr := startSluice(t, node.Config{})
	const clients = 200
	conns := make([]*rawConn, clients)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
	}
	stampede := func() map[string]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		states := map[string]int{}
		start := make(chan struct{})
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := c.Do("CACHE.GET", "hot")
				mu.Lock()
				defer mu.Unlock()
				if len(r.Elems) != 3 {
					states["bad reply "+r.String()]++
					return
				}
				states[r.Elems[0].Str]++
			}()
		}
		close(start)
		wg.Wait()
		return states
	}
	if got := stampede(); got["miss"] != 1 || got["wait"] != clients-1 {
		t.Fatalf("200 readers of a missing key: %v, want 1 miss and 199 wait", got)
	}
	c := conns[0]
	// The lease holder is whoever got "miss"; fill under a fresh lease instead
	// (the DEL revokes the first one), then make the entry stale.
	c.Do("DEL", "hot")
	lease := c.Do("CACHE.GET", "hot")
	token, ok := lease.Elems[2].Int()
	if !ok {
		t.Fatalf("no lease: %s", lease)
	}
	if r := c.Do("CACHE.FILL", "hot", strconv.FormatInt(token, 10), "v", "FRESH", "60000", "STALE", "60000"); r.Str != "OK" {
		t.Fatalf("CACHE.FILL: %s", r)
	}
	if r := c.Do("CACHE.INVALIDATE", "hot"); r.String() != "(integer) 1" {
		t.Fatalf("CACHE.INVALIDATE: %s", r)
	}
	if got := stampede(); got["revalidate"] != 1 || got["stale"] != clients-1 {
		t.Fatalf("200 readers of a stale key: %v, want 1 revalidate and 199 stale", got)
	}
}

// TestLimiterIsExactOverSockets: 50 connections each pipelining 100 takes
// against a bucket of 1,000 tokens that cannot refill during the test admit
// exactly 1,000, for both commands.
func TestLimiterIsExactOverSockets(t *testing.T) {
	t.Parallel()
	addr := startSluice(t, node.Config{})
	for _, tc := range []struct {
		name string
		args []any
	}{
		{"CL.THROTTLE", []any{"CL.THROTTLE", "bucket:cell", 999, 1, 86400}},
		{"RL.TAKE", []any{"RL.TAKE", "bucket:take", "LIMIT", 1000, "PERIOD", 86400000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			var wg sync.WaitGroup
			var mu sync.Mutex
			allowed := 0
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 1})
					defer c.Close()
					cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
						for range 100 {
							p.Do(ctx, tc.args...)
						}
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
					mine := 0
					for _, cmd := range cmds {
						reply, err := cmd.(*redis.Cmd).Int64Slice()
						if err != nil || len(reply) != 5 {
							t.Errorf("reply %v %v", reply, err)
							return
						}
						if reply[0] == 0 {
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
		})
	}
}
