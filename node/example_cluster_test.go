package node_test

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/node/cluster"
)

// Two embedded nodes in one program form a cluster: the second joins the
// first by its gossip address, the keys spread over both by slot, and either
// node serves every key (remote keys go to their owner).
func Example_cluster() {
	ctx := context.Background()
	first, _ := node.New(node.Config{NodeName: "first", Cluster: &cluster.Config{BindAddr: "127.0.0.1"}})
	if err := first.Start(); err != nil {
		panic(err)
	}
	defer first.Close(ctx)
	second, _ := node.New(node.Config{NodeName: "second", Cluster: &cluster.Config{
		BindAddr: "127.0.0.1",
		Join:     []string{first.Cluster().Self().GossipAddr},
	}})
	if err := second.Start(); err != nil {
		panic(err)
	}
	defer second.Close(ctx)
	// Wait until both nodes serve the table with both members.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(first.Cluster().Table().Members()) == 2 && len(second.Cluster().Table().Members()) == 2 {
			break
		}
	}

	for i := range 100 {
		if err := first.Set(ctx, "key:"+strconv.Itoa(i), []byte("v"), 0); err != nil {
			panic(err)
		}
	}
	read, owned := 0, map[string]int{}
	for i := range 100 {
		if _, err := second.Get(ctx, "key:"+strconv.Itoa(i)); err == nil {
			read++
		}
	}
	for _, n := range []*node.Node{first, second} {
		owned[n.ID()] = len(n.Cluster().Table().SlotsOf(n.ID()))
	}
	fmt.Println("written through the first node: 100, read through the second:", read)
	fmt.Println("slots:", owned["first"]+owned["second"], "both own some:", owned["first"] > 0 && owned["second"] > 0)
	// Output:
	// written through the first node: 100, read through the second: 100
	// slots: 16384 both own some: true
}
