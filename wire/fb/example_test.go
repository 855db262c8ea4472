package fb_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/wire/fb"
)

// A node served on the FlatBuffers port, and a client reading a batch.
func Example() {
	ctx := context.Background()
	n, _ := node.New(node.Config{})
	srv, err := fb.NewServer(n, fb.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	n.Attach(srv)
	n.Start()
	defer n.Close(ctx)
	n.Set(ctx, "user:42", []byte("Ada"), 0)

	c, err := fb.Dial(srv.Addr())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	var b fb.Batch
	user := b.Get("user:42")
	missing := b.Get("user:43")
	page := b.CacheGet("page:/home", 0)
	quota := b.Throttle("rl:alice", node.Limit{Rate: 100, Period: time.Minute, Burst: 10}, 1)
	if err := c.Do(ctx, &b); err != nil {
		panic(err)
	}
	v, ok := b.Result(user).Value() // a slice of the received frame
	fmt.Printf("%s %v\n", v, ok)
	_, ok = b.Result(missing).Value()
	fmt.Println(ok)
	r := b.Result(page)
	fmt.Println(r.CacheState(), r.Token() > 0) // a miss: this caller holds the lease
	t := b.Result(quota).Throttle()
	fmt.Println(t.Allowed, t.Remaining)
	// Output:
	// Ada true
	// false
	// miss true
	// true 9
}
