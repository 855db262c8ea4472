//go:build !race

// The race detector allocates, so allocation counts are checked without it:
// make test runs the allocation tests in a second pass without -race.

package fb

import "testing"

// TestNoAllocs holds the hot paths to zero allocations: the server running
// a request of 64 GETs (through the node's fast path) and of 64 CACHE.GETs
// of fresh entries, by the default user and by an ACL user allowed those
// keys, and the client reading the 64 values out of the response.
func TestNoAllocs(t *testing.T) {
	n, keys := benchNode(t)
	if _, err := n.Do(t.Context(), "ACL", "SETUSER", "reader", "on", ">pw", "~user:*", "+get", "+cache.get"); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"default", "reader"} {
		sess, err := n.Connect(nil, "test", "test")
		if err != nil {
			t.Fatal(err)
		}
		if user != "default" {
			var b Batch
			b.auth(user, "pw")
			var r runner
			r.init(&Server{node: n, maxFrame: DefaultMaxFrame}, sess)
			r.handle(nil, b.encode(1)[4:])
		}
		var r runner
		r.init(&Server{node: n, maxFrame: DefaultMaxFrame}, sess)
		for name, add := range map[string]func(*Batch, string){
			"GET":       func(b *Batch, k string) { b.Get(k) },
			"CACHE.GET": func(b *Batch, k string) { b.CacheGet(k, 0) },
		} {
			var batch Batch
			for _, k := range keys {
				add(&batch, k)
			}
			msg := batch.encode(1)[4:]
			out, _ := r.handle(nil, msg)
			if allocs := testing.AllocsPerRun(100, func() { out, _ = r.handle(out[:0], msg) }); allocs != 0 {
				t.Errorf("%s, user %s: the server allocates %.1f times per request", name, user, allocs)
			}
			batch.frame = out[4:]
			if _, batch.res, err = verifyResponse(batch.frame, len(keys), nil); err != nil {
				t.Fatal(err)
			}
			var sum int
			if allocs := testing.AllocsPerRun(100, func() {
				for i := range keys {
					v, _ := batch.Result(i).Value()
					sum += len(v)
				}
			}); allocs != 0 || sum == 0 {
				t.Errorf("%s: reading the values allocates %.1f times (%d bytes read)", name, allocs, sum)
			}
		}
	}
}
