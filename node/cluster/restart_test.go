package cluster

import (
	"context"
	"testing"
	"time"
)

// TestRestartWithDataDir kills a node of three and starts it again from its
// data dir, with no ID and no join address: it comes back as itself, a voter
// again, found by the others.
func TestRestartWithDataDir(t *testing.T) {
	h := newHarness(t)
	var nodes []*testNode
	for i, name := range []string{"n1", "n2", "n3"} {
		cfg := h.config(name, "n1")
		if i == 0 {
			cfg.Join = nil
		}
		cfg.DataDir = t.TempDir()
		nodes = append(nodes, h.start(name, cfg))
	}
	waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	waitVoters(t, nodes, 3, 0)

	n3 := nodes[2]
	h.kill("n3")
	waitConverged(t, 15*time.Second, nodes[:2], "n1", "n2")

	cfg := h.config("n3", "")
	cfg.NodeID = ""
	cfg.DataDir = n3.dir
	start := time.Now()
	back := h.start("n3", cfg)
	startTook := time.Since(start)
	if id := back.c.Self().ID; id != "n3" {
		t.Fatalf("restarted as %q", id)
	}
	nodes[2] = back
	_, d := waitConverged(t, 15*time.Second, nodes, "n1", "n2", "n3")
	t.Logf("restart: Start returned in %v (a table from raft), and n3 was in every node's table %v later",
		startTook.Round(time.Millisecond), d.Round(time.Millisecond))
	if s := raftServers(t, back); len(s) != 3 || !s["n3"] {
		t.Errorf("raft servers after the restart: %v", s)
	}

	cfg.NodeID = "other"
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := Start(ctx, cfg, nil); err == nil {
		t.Error("started another node on n3's data dir")
	}
}

// TestRestartAlone restarts a one-node cluster from its data dir: it leads
// again at once with the same table.
func TestRestartAlone(t *testing.T) {
	h := newHarness(t)
	cfg := h.config("n1", "")
	cfg.DataDir = t.TempDir()
	n := h.start("n1", cfg)
	before := n.c.Table()
	h.kill("n1")
	start := time.Now()
	n = h.start("n1", cfg)
	t.Logf("a lone node restarted from its data dir had its table in %v", time.Since(start).Round(time.Millisecond))
	if got := n.c.Table(); got.Epoch != before.Epoch || !sameOwners(got, before) {
		t.Errorf("table after restart: epoch %d, was %d", got.Epoch, before.Epoch)
	}
}

// TestRestartAfterLeave: a node that left gracefully (a rolling restart's
// SIGTERM) and restarts from its data dir with no join address finds the
// cluster through the peers it saved, though nobody looks for it any more.
func TestRestartAfterLeave(t *testing.T) {
	h := newHarness(t)
	var nodes []*testNode
	for i, name := range []string{"n1", "n2", "n3"} {
		cfg := h.config(name, "n1")
		if i == 0 {
			cfg.Join = nil
		}
		cfg.DataDir = t.TempDir()
		nodes = append(nodes, h.start(name, cfg))
	}
	waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	waitVoters(t, nodes, 3, 0)
	n3 := nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n3.c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	h.kill("n3")
	waitConverged(t, 10*time.Second, nodes[:2], "n1", "n2")
	waitFor(t, 5*time.Second, "n3 forgotten", func() bool {
		_, ok := nodes[0].c.Member("n3")
		return !ok
	})

	cfg := h.config("n3", "")
	cfg.DataDir = n3.dir
	nodes[2] = h.start("n3", cfg)
	_, d := waitConverged(t, 15*time.Second, nodes, "n1", "n2", "n3")
	t.Logf("a node that had left came back from its data dir; in every table %v after Start returned", d.Round(time.Millisecond))
	waitVoters(t, nodes, 3, 0)
}
