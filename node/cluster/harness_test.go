package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicedb/sluice/ring"
)

// harness runs clusters of nodes on a MemNetwork. Node "n3" lives on host
// 10.0.0.3, gossips on :7946 and serves the cluster port on :7947.
type harness struct {
	t     *testing.T
	net   *MemNetwork
	logs  *syncBuffer
	mu    sync.Mutex
	nodes map[string]*testNode
}

type testNode struct {
	name string
	host string
	dir  string
	c    *Cluster
	h    *fakeHandler
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, net: NewMemNetwork(), logs: &syncBuffer{}, nodes: map[string]*testNode{}}
	t.Cleanup(func() {
		h.mu.Lock()
		nodes := slices.Collect(maps.Values(h.nodes))
		h.mu.Unlock()
		for _, n := range nodes {
			if n.c != nil {
				n.c.Close()
			}
		}
		if t.Failed() {
			t.Logf("cluster logs:\n%s", h.logs.String())
		}
	})
	return h
}

func hostOf(name string) string { return "10.0.0." + name[1:] }

// config is the Config of node name; join names the node whose gossip
// address it joins ("" to bootstrap).
func (h *harness) config(name, join string) Config {
	host := hostOf(name)
	cfg := Config{
		NodeID:      name,
		BindAddr:    host,
		GossipPort:  7946,
		ClusterPort: 7947,
		Replicas:    -1,
		Meta:        Meta{RESPAddr: host + ":6379", FBAddr: host + ":6380"},
		Logger:      slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("at", name),
		Timing:      FastTiming(),
		Network:     h.net.Host(host),
	}
	if join != "" {
		cfg.Join = []string{hostOf(join) + ":7946"}
	}
	return cfg
}

// start starts node name with cfg and fails the test if it cannot.
func (h *harness) start(name string, cfg Config) *testNode {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := &testNode{name: name, host: hostOf(name), dir: cfg.DataDir, h: &fakeHandler{id: name}}
	c, err := Start(ctx, cfg, n.h)
	if err != nil {
		h.t.Fatalf("start %s: %v", name, err)
	}
	n.c = c
	n.h.c = c
	h.mu.Lock()
	h.nodes[name] = n
	h.mu.Unlock()
	return n
}

// startN starts n1 (bootstrapping) and n2…nN joining it.
func (h *harness) startN(n int) []*testNode {
	nodes := []*testNode{h.start("n1", h.config("n1", ""))}
	for i := 2; i <= n; i++ {
		name := "n" + strconv.Itoa(i)
		nodes = append(nodes, h.start(name, h.config(name, "n1")))
	}
	return nodes
}

// kill cuts node name off the network and closes it without a word: to the
// others it has crashed.
func (h *harness) kill(name string) {
	h.mu.Lock()
	n := h.nodes[name]
	delete(h.nodes, name)
	h.mu.Unlock()
	n.c.Close()
}

// converged reports whether every node has the same table over exactly
// the members named, and returns it.
func converged(nodes []*testNode, members ...string) (*ring.Table, bool) {
	var first *ring.Table
	for _, n := range nodes {
		t := n.c.Table()
		if t == nil || !sameMembers(t, members) {
			return nil, false
		}
		if first == nil {
			first = t
			continue
		}
		if t.Epoch != first.Epoch || !sameOwners(t, first) {
			return nil, false
		}
	}
	return first, true
}

func sameMembers(t *ring.Table, ids []string) bool {
	ms := t.Members()
	if len(ms) != len(ids) {
		return false
	}
	sorted := slices.Sorted(slices.Values(ids))
	for i, m := range ms {
		if m.ID != sorted[i] {
			return false
		}
	}
	return true
}

func sameOwners(a, b *ring.Table) bool {
	for s := range ring.Slots {
		if a.Owner(uint16(s)) != b.Owner(uint16(s)) || !slices.Equal(a.Replicas(uint16(s)), b.Replicas(uint16(s))) {
			return false
		}
	}
	return true
}

func moved(a, b *ring.Table) int {
	n := 0
	for s := range ring.Slots {
		if a.Owner(uint16(s)) != b.Owner(uint16(s)) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or timeout passes, and returns how long
// it took.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// waitConverged waits until nodes agree on a table of exactly members.
func waitConverged(t testing.TB, timeout time.Duration, nodes []*testNode, members ...string) (*ring.Table, time.Duration) {
	t.Helper()
	var table *ring.Table
	d := waitFor(t, timeout, fmt.Sprintf("a table of %v on every node", members), func() bool {
		var ok bool
		table, ok = converged(nodes, members...)
		return ok
	})
	return table, d
}

func names(nodes []*testNode) []string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.name)
	}
	return s
}

// fakeHandler serves the commands of replies by name; "owned" and
// "notowned" decide by argument, and "block" waits until released.
type fakeHandler struct {
	id      string
	c       *Cluster
	mu      sync.Mutex
	served  int
	release chan struct{}
}

func (f *fakeHandler) ServeReplicate(payload []byte) error { return nil }

// HandOff has nothing to move: the fake holds no data.
func (f *fakeHandler) HandOff(ctx context.Context, p Placement) error { return nil }

func (f *fakeHandler) ServePeer(args [][]byte, w ReplyWriter) (bool, error) {
	return f.serve(args, w), nil
}

func (f *fakeHandler) serve(args [][]byte, w ReplyWriter) bool {
	f.mu.Lock()
	f.served++
	release := f.release
	f.mu.Unlock()
	switch cmd := string(args[0]); cmd {
	case "notowned":
		return false
	case "whoami":
		w.BulkString(f.id)
	case "echo":
		w.Bulk(args[1])
	case "block":
		<-release
		w.SimpleString("released")
	default:
		write, ok := replies[cmd]
		if !ok {
			w.Error("ERR unknown command '" + cmd + "'")
			return true
		}
		write(w)
	}
	return true
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
