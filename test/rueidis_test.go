package test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/sluicedb/sluice/node"
)

// invalidationWait bounds how long a cached value may outlive a write by
// another client: the server pushes the invalidation at once, so this is
// only slack for a loaded machine.
const invalidationWait = 5 * time.Second

// newRueidis returns a rueidis client of addr with the default options:
// RESP3 and client-side caching (CLIENT TRACKING ON OPTIN).
func newRueidis(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}})
	if err != nil {
		t.Fatalf("rueidis.NewClient with default options (RESP3, client-side caching): %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// awaitCached polls DoCache of GET key until it returns want (or a nil
// reply when want is nil) and returns the last result.
func awaitCached(t *testing.T, ctx context.Context, c rueidis.Client, key string, want *string) rueidis.RedisResult {
	t.Helper()
	deadline := time.Now().Add(invalidationWait)
	for {
		r := c.DoCache(ctx, c.B().Get().Key(key).Cache(), time.Minute)
		v, err := r.ToString()
		switch {
		case want == nil && rueidis.IsRedisNil(err):
			return r
		case want != nil && err == nil && v == *want:
			return r
		case err != nil && !rueidis.IsRedisNil(err):
			t.Fatalf("DoCache GET %s: %v", key, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("DoCache GET %s still returns %q (err %v) %v after another client changed it",
				key, v, err, invalidationWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRueidisClientSideCaching(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr := startSluice(t, node.Config{})
	c := newRueidis(t, addr)
	writer := newRueidis(t, addr)

	if err := writer.Do(ctx, writer.B().Set().Key("k").Value("v1").Build()).Error(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	get := func() rueidis.RedisResult {
		return c.DoCache(ctx, c.B().Get().Key("k").Cache(), time.Minute)
	}
	first := get()
	if v, err := first.ToString(); err != nil || v != "v1" {
		t.Fatalf("first DoCache GET = %q, %v", v, err)
	}
	if first.IsCacheHit() {
		t.Error("the first DoCache was served from the local cache")
	}
	second := get()
	if v, err := second.ToString(); err != nil || v != "v1" {
		t.Fatalf("second DoCache GET = %q, %v", v, err)
	}
	if !second.IsCacheHit() {
		t.Error("the second DoCache was not served from the local cache")
	}

	// Another client writes: the server's invalidation push evicts the entry.
	if err := writer.Do(ctx, writer.B().Set().Key("k").Value("v2").Build()).Error(); err != nil {
		t.Fatalf("SET by the other client: %v", err)
	}
	want := "v2"
	awaitCached(t, ctx, c, "k", &want)
	if r := get(); !r.IsCacheHit() {
		t.Error("the value read after the invalidation was not cached again")
	}

	// Deletes, appends and a flush invalidate too.
	if err := writer.Do(ctx, writer.B().Append().Key("k").Value("+").Build()).Error(); err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	want = "v2+"
	awaitCached(t, ctx, c, "k", &want)
	if err := writer.Do(ctx, writer.B().Del().Key("k").Build()).Error(); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	awaitCached(t, ctx, c, "k", nil)
	if err := writer.Do(ctx, writer.B().Set().Key("k").Value("v3").Build()).Error(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	want = "v3"
	awaitCached(t, ctx, c, "k", &want)
	if err := writer.Do(ctx, writer.B().Flushall().Build()).Error(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	awaitCached(t, ctx, c, "k", nil)
}

// TestRueidisCacheTTL checks that the local cache honours the key's TTL,
// which rueidis reads with a PTTL inside MULTI/EXEC.
func TestRueidisCacheTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newRueidis(t, startSluice(t, node.Config{}))

	if err := c.Do(ctx, c.B().Set().Key("t").Value("v").Px(2*time.Second).Build()).Error(); err != nil {
		t.Fatalf("SET PX: %v", err)
	}
	r := c.DoCache(ctx, c.B().Get().Key("t").Cache(), time.Minute)
	if v, err := r.ToString(); err != nil || v != "v" {
		t.Fatalf("DoCache GET = %q, %v", v, err)
	}
	r = c.DoCache(ctx, c.B().Get().Key("t").Cache(), time.Minute)
	if ttl := r.CacheTTL(); !r.IsCacheHit() || ttl <= 0 || ttl > 2 {
		t.Errorf("cached entry: hit %v, TTL %ds; want a hit whose TTL follows the key's 2s", r.IsCacheHit(), ttl)
	}
	awaitCached(t, ctx, c, "t", nil)
}

// TestRueidisMultiCache caches several keys at once and checks MGET through
// the cache.
func TestRueidisMultiCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newRueidis(t, startSluice(t, node.Config{}))

	if err := c.Do(ctx, c.B().Mset().KeyValue().KeyValue("a", "1").KeyValue("b", "2").Build()).Error(); err != nil {
		t.Fatalf("MSET: %v", err)
	}
	for round := range 2 {
		rs := c.DoMultiCache(ctx,
			rueidis.CT(c.B().Get().Key("a").Cache(), time.Minute),
			rueidis.CT(c.B().Get().Key("b").Cache(), time.Minute),
			rueidis.CT(c.B().Get().Key("missing").Cache(), time.Minute))
		for i, want := range []string{"1", "2"} {
			if v, err := rs[i].ToString(); err != nil || v != want {
				t.Errorf("round %d: DoMultiCache GET %d = %q, %v", round, i, v, err)
			}
			if hit := rs[i].IsCacheHit(); hit != (round == 1) {
				t.Errorf("round %d: DoMultiCache GET %d cache hit = %v", round, i, hit)
			}
		}
		if err := rs[2].Error(); !rueidis.IsRedisNil(err) {
			t.Errorf("round %d: DoMultiCache GET missing: err = %v, want nil", round, err)
		}
	}
	m, err := c.DoCache(ctx, c.B().Mget().Key("a", "b").Cache(), time.Minute).AsStrSlice()
	if err != nil || len(m) != 2 || m[0] != "1" || m[1] != "2" {
		t.Errorf("DoCache MGET = %v, %v", m, err)
	}
}
