package fb

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluicedb/sluice/node"
	"github.com/sluicedb/sluice/node/cluster"
	"github.com/sluicedb/sluice/ring"
)

// member is one node of a test cluster with its FlatBuffers server.
type member struct {
	n  *node.Node
	fb *Server
}

// startMember starts a node on loopback that joins the cluster at join
// (none: it founds one) and advertises its FlatBuffers address.
func startMember(t *testing.T, name string, join ...string) *member {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	n, err := node.New(node.Config{NodeName: name, Logger: log, Cluster: &cluster.Config{
		BindAddr: "127.0.0.1", Join: join, Timing: cluster.FastTiming(),
		Meta: cluster.Meta{FBAddr: ln.Addr().String()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(n, Config{Listener: ln, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	n.Attach(s)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return &member{n: n, fb: s}
}

// converge waits until every member serves the same table with all of
// them in it, and returns its epoch.
func converge(t *testing.T, ms []*member) uint64 {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var epoch uint64
		ok := true
		for i, m := range ms {
			tb := m.n.Cluster().Table()
			if tb == nil || len(tb.Members()) != len(ms) || (i > 0 && tb.Epoch != epoch) {
				ok = false
				break
			}
			epoch = tb.Epoch
		}
		if ok {
			return epoch
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d members did not agree on a table", len(ms))
		}
	}
}

// ownerOf returns the member that owns key.
func ownerOf(ms []*member, key string) *member {
	id := ms[0].n.Cluster().Table().Owner(ring.KeySlot([]byte(key)))
	for _, m := range ms {
		if m.n.ID() == id {
			return m
		}
	}
	return nil
}

func dbsize(t *testing.T, m *member) int64 {
	t.Helper()
	v, err := m.n.Do(context.Background(), "DBSIZE")
	if err != nil {
		t.Fatal(err)
	}
	return v.(int64)
}

// TestCluster runs the client against a cluster of nodes on loopback: it
// learns the slot table from the node it dials, sends each key straight to
// its owner (a batch split over the owners), follows MOVED when its table
// is stale and when a join moves slots, while connections that never asked
// for the table are served by forwarding.
func TestCluster(t *testing.T) {
	a := startMember(t, "a")
	b := startMember(t, "b", a.n.Cluster().Self().GossipAddr)
	ms := []*member{a, b}
	epoch := converge(t, ms)

	c := dialClient(t, a.fb, Options{})
	if got := c.epoch(); got != epoch {
		t.Fatalf("the client's table has epoch %d, the cluster's %d", got, epoch)
	}
	keys := make([]string, 200)
	var batch Batch
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
		batch.Set(keys[i], []byte("v"+keys[i]), 0)
		if want := ownerOf(ms, keys[i]).fb.Addr(); c.owner(keys[i]) != want {
			t.Fatalf("%s goes to %s, its owner is %s", keys[i], c.owner(keys[i]), want)
		}
	}
	do(t, c, &batch)
	for i := range keys {
		if err := batch.Result(i).Err(); err != nil {
			t.Fatalf("SET %s: %v", keys[i], err)
		}
	}
	// Each key was written on its owner, not through a, which would have
	// forwarded it to the same place: a's forwarding count stays 0.
	if sa, sb := dbsize(t, a), dbsize(t, b); sa+sb != 200 || sa == 0 || sb == 0 {
		t.Fatalf("keys per node: %d and %d", sa, sb)
	}
	if info, _ := a.n.Do(context.Background(), "INFO", "cluster"); !strings.Contains(fmt.Sprint(info), "cluster_forwarded_commands:0") {
		t.Errorf("the client's operations were forwarded: %s", info)
	}
	batch.Reset()
	for _, k := range keys {
		batch.Get(k)
	}
	do(t, c, &batch)
	for i, k := range keys {
		if v, ok := batch.Result(i).Value(); !ok || string(v) != "v"+k {
			t.Fatalf("GET %s: %q, %v", k, v, batch.Result(i).Err())
		}
	}

	// A connection that never asked for the table is served by forwarding;
	// one that asked gets MOVED with the owner's FlatBuffers address.
	remote := keys[0]
	for _, k := range keys {
		if ownerOf(ms, k) == b {
			remote = k
			break
		}
	}
	plain := rawConn(t, a.fb)
	var req Batch
	get := req.Get(remote)
	plain.Write(req.encode(1))
	if _, r := readResponse(t, plain, 1); r.Result(get).Err() != nil {
		t.Fatalf("forwarded GET: %v", r.Result(get).Err())
	} else if v, _ := r.Result(get).Value(); string(v) != "v"+remote {
		t.Fatalf("forwarded GET: %q", v)
	}
	aware := rawConn(t, a.fb)
	req.Reset()
	req.slots()
	get = req.Get(remote)
	aware.Write(req.encode(2))
	_, r := readResponse(t, aware, 2)
	want := fmt.Sprintf("MOVED %d %s", ring.KeySlot([]byte(remote)), b.fb.Addr())
	if err := r.Result(get).Err(); err == nil || err.Error() != want {
		t.Fatalf("GET of a key b owns on a cluster-aware connection to a: %v, want %s", err, want)
	}

	// A stale table: everything to a. The operations b owns come back
	// MOVED, are sent to b, and the table is refreshed.
	stale := &routes{epoch: 0, pools: []*pool{c.seedPool()}}
	c.routes.Store(stale)
	batch.Reset()
	for _, k := range keys {
		batch.Get(k)
	}
	do(t, c, &batch)
	for i, k := range keys {
		if v, ok := batch.Result(i).Value(); !ok || string(v) != "v"+k {
			t.Fatalf("GET %s with a stale table: %q, %v", k, v, batch.Result(i).Err())
		}
	}
	if got := c.epoch(); got != epoch {
		t.Fatalf("after MOVED the client's table has epoch %d, want %d", got, epoch)
	}

	// A third node joins and takes slots: the client's table is stale
	// again, and MOVED leads it to the new owners.
	ms = append(ms, startMember(t, "c", a.n.Cluster().Self().GossipAddr))
	epoch = converge(t, ms)
	batch.Reset()
	for _, k := range keys {
		batch.Set(k, []byte("w"+k), 0)
		batch.Get(k)
	}
	do(t, c, &batch)
	for i, k := range keys {
		if v, ok := batch.Result(2*i + 1).Value(); !ok || string(v) != "w"+k {
			t.Fatalf("GET %s after the join: %q, %v", k, v, batch.Result(2*i+1).Err())
		}
	}
	if got := c.epoch(); got != epoch {
		t.Fatalf("after the join the client's table has epoch %d, want %d", got, epoch)
	}
	if n := dbsize(t, ms[2]); n == 0 {
		t.Fatal("the new node received none of the keys it owns")
	}
}
