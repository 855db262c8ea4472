package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/sluicedb/sluice/ring"
)

func TestSingleNodeBootstraps(t *testing.T) {
	for name, timing := range map[string]Timing{"fast": FastTiming(), "production": {}} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			cfg := h.config("n1", "")
			cfg.Timing = timing
			start := time.Now()
			n := h.start("n1", cfg)
			took := time.Since(start)
			table := n.c.Table()
			if table == nil || !sameMembers(table, []string{"n1"}) {
				t.Fatalf("table %v after Start", table)
			}
			if table.Epoch != 1 || table.ReplicaCount() != 0 {
				t.Errorf("epoch %d replicas %d, want 1 and 0", table.Epoch, table.ReplicaCount())
			}
			st := n.c.Status()
			if st.Leader != "n1" || !st.HasQuorum || st.Voters != 1 || st.NonVoters != 0 || st.RaftState != "Leader" {
				t.Errorf("status %+v", st)
			}
			if self := n.c.Self(); self.ID != "n1" || self.ClusterAddr != "10.0.0.1:7947" || self.GossipAddr != "10.0.0.1:7946" {
				t.Errorf("self %+v", self)
			}
			t.Logf("with %s timing a lone node had its table %v after Start began", name, took.Round(time.Millisecond))
			if took > time.Second {
				t.Errorf("a lone node took %v to have a table", took)
			}
		})
	}
}

// TestJoinGrowLeave runs a cluster through its life: three nodes converge,
// a fourth joins and takes about a quarter of the slots, one leaves
// gracefully.
func TestJoinGrowLeave(t *testing.T) {
	h := newHarness(t)
	start := time.Now()
	nodes := h.startN(3)
	table, d := waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	t.Logf("3 nodes: started and converged in %v (the last join converged %v after its Start returned)",
		time.Since(start).Round(time.Millisecond), d.Round(time.Millisecond))
	if table.ReplicaCount() != 1 {
		t.Errorf("replicas %d, want the default 1", table.ReplicaCount())
	}
	waitVoters(t, nodes, 3, 0)

	joined := time.Now()
	nodes = append(nodes, h.start("n4", h.config("n4", "n2")))
	grown, _ := waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3", "n4")
	t.Logf("join: a 4th node was in every node's table %v after its Start began", time.Since(joined).Round(time.Millisecond))
	if grown.Epoch <= table.Epoch {
		t.Errorf("epoch %d after a join, was %d", grown.Epoch, table.Epoch)
	}
	m := moved(table, grown)
	t.Logf("join: %d of %d slots moved (%.1f%%), n4 owns %d", m, 16384, 100*float64(m)/16384, len(grown.SlotsOf("n4")))
	if m > 16384*11/10/4 || m < 16384/4*9/10 {
		t.Errorf("%d slots moved on a join to 4 nodes, want about %d", m, 16384/4)
	}
	if st := nodes[0].c.Status(); st.Voters != 3 || st.NonVoters != 1 {
		t.Errorf("4 nodes: %d voters and %d non-voters, want 3 and 1", st.Voters, st.NonVoters)
	}
	for _, n := range nodes {
		if got := len(n.c.Members()); got != 4 {
			t.Errorf("%s knows %d members, want 4", n.name, got)
		}
	}

	// The leader leaves: it hands leadership on first.
	leader := leaderOf(t, nodes)
	left := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := leader.c.Leave(ctx); err != nil {
		t.Fatalf("leave: %v", err)
	}
	leader.c.Close()
	rest := slices.DeleteFunc(slices.Clone(nodes), func(n *testNode) bool { return n == leader })
	after, _ := waitConverged(t, 10*time.Second, rest, names(rest)...)
	t.Logf("leave: the leader %s left in %v; %d slots moved", leader.name, time.Since(left).Round(time.Millisecond), moved(grown, after))
	waitFor(t, 5*time.Second, "members and voters without the leaver", func() bool {
		for _, n := range rest {
			if _, ok := n.c.Member(leader.name); ok || len(n.c.Members()) != 3 {
				return false
			}
		}
		st := rest[0].c.Status()
		return st.Voters == 3 && st.NonVoters == 0 && st.Leader != "" && st.Leader != leader.name
	})
}

// waitVoters waits until every node's raft configuration has that many
// voters and non-voters.
func waitVoters(t *testing.T, nodes []*testNode, voters, nonVoters int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%d voters and %d non-voters everywhere", voters, nonVoters), func() bool {
		for _, n := range nodes {
			if st := n.c.Status(); st.Voters != voters || st.NonVoters != nonVoters {
				return false
			}
		}
		return true
	})
}

func leaderOf(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, 5*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.c.Status().RaftState == "Leader" {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// TestKill kills a follower, then the leader, of three nodes, and times how
// long the survivors take to agree a table without it.
func TestKill(t *testing.T) {
	for _, victim := range []string{"follower", "leader"} {
		t.Run(victim, func(t *testing.T) {
			h := newHarness(t)
			nodes := h.startN(3)
			before, _ := waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
			waitVoters(t, nodes, 3, 0)
			leader := leaderOf(t, nodes)
			dead := leader
			if victim == "follower" {
				dead = nodes[0]
				if dead == leader {
					dead = nodes[1]
				}
			}
			rest := slices.DeleteFunc(slices.Clone(nodes), func(n *testNode) bool { return n == dead })
			h.kill(dead.name)
			after, d := waitConverged(t, 15*time.Second, rest, names(rest)...)
			t.Logf("kill %s %s: survivors agreed a table without it in %v (epoch %d→%d, %d slots moved)",
				victim, dead.name, d.Round(time.Millisecond), before.Epoch, after.Epoch, moved(before, after))
			for s := range 16384 {
				if after.Owner(uint16(s)) == dead.name || slices.Contains(after.Replicas(uint16(s)), dead.name) {
					t.Fatalf("slot %d still on the dead node", s)
				}
			}
			// The dead voter stays a voter: no non-voter can replace it,
			// and a restart brings it back as one.
			st := rest[0].c.Status()
			if !st.HasQuorum || st.Voters != 3 {
				t.Errorf("after the kill: %+v", st)
			}
			if m, ok := rest[0].c.Member(dead.name); !ok || m.State != Dead {
				t.Errorf("dead member: %+v %v", m, ok)
			}
		})
	}
}

// TestPartition cuts a node, the leader or a follower, off from the other
// two: it keeps its last table and says it has no quorum; the majority moves
// on; healing converges with no action.
func TestPartition(t *testing.T) {
	for _, victim := range []string{"leader", "follower"} {
		t.Run(victim, func(t *testing.T) { testPartition(t, victim) })
	}
}

func testPartition(t *testing.T, victim string) {
	h := newHarness(t)
	nodes := h.startN(3)
	before, _ := waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3")
	waitVoters(t, nodes, 3, 0)
	old := leaderOf(t, nodes)
	if victim == "follower" {
		old = slices.DeleteFunc(slices.Clone(nodes), func(n *testNode) bool { return n == old })[0]
	}
	rest := slices.DeleteFunc(slices.Clone(nodes), func(n *testNode) bool { return n == old })

	h.net.Partition([]string{old.host})
	cut := time.Now()
	var noQuorum, agreed time.Duration
	var after *ring.Table
	waitFor(t, 15*time.Second, "the minority to lose quorum and the majority to agree a table without it", func() bool {
		if noQuorum == 0 && !old.c.Status().HasQuorum {
			noQuorum = time.Since(cut)
		}
		if t, ok := converged(rest, names(rest)...); ok && agreed == 0 {
			after, agreed = t, time.Since(cut)
		}
		return noQuorum > 0 && agreed > 0
	})
	t.Logf("partition of the %s %s: it reported no quorum after %v; the majority agreed a table without it after %v",
		victim, old.name, noQuorum.Round(time.Millisecond), agreed.Round(time.Millisecond))
	if got := old.c.Table(); got.Epoch != before.Epoch || !sameOwners(got, before) {
		t.Errorf("the minority's table changed: epoch %d, was %d", got.Epoch, before.Epoch)
	}
	if st := old.c.Status(); st.RaftState == "Leader" {
		t.Errorf("the cut-off node leads: %+v", st)
	}
	if st := rest[0].c.Status(); !st.HasQuorum || st.Leader == old.name || st.Epoch != after.Epoch {
		t.Errorf("majority status %+v", st)
	}

	h.net.Heal()
	healed, d := waitConverged(t, 20*time.Second, nodes, "n1", "n2", "n3")
	t.Logf("heal: all three agreed again in %v (epoch %d)", d.Round(time.Millisecond), healed.Epoch)
	waitFor(t, 5*time.Second, "quorum everywhere", func() bool {
		for _, n := range nodes {
			if st := n.c.Status(); !st.HasQuorum || st.Voters != 3 {
				return false
			}
		}
		return true
	})
}

// TestVoterReplacement kills a voter of four nodes (three voters, one
// non-voter): the non-voter is promoted and the dead voter removed.
func TestVoterReplacement(t *testing.T) {
	h := newHarness(t)
	nodes := h.startN(4)
	waitConverged(t, 10*time.Second, nodes, "n1", "n2", "n3", "n4")
	var nonVoter string
	waitVoters(t, nodes, 3, 1)
	servers := raftServers(t, nodes[0])
	for id, voter := range servers {
		if !voter {
			nonVoter = id
		}
	}
	leader := leaderOf(t, nodes)
	var victim *testNode
	for _, n := range nodes {
		if n != leader && n.name != nonVoter {
			victim = n
			break
		}
	}
	h.kill(victim.name)
	rest := slices.DeleteFunc(slices.Clone(nodes), func(n *testNode) bool { return n == victim })
	d := waitFor(t, 15*time.Second, "the non-voter promoted and the dead voter removed", func() bool {
		s := raftServers(t, leader)
		_, deadIn := s[victim.name]
		return len(s) == 3 && !deadIn && s[nonVoter]
	})
	t.Logf("voter %s killed: %s promoted and %s removed in %v", victim.name, nonVoter, victim.name, d.Round(time.Millisecond))
	waitConverged(t, 10*time.Second, rest, names(rest)...)
}

func raftServers(t *testing.T, n *testNode) map[string]bool {
	t.Helper()
	f := n.c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, s := range f.Configuration().Servers {
		m[string(s.ID)] = s.Suffrage == raft.Voter
	}
	return m
}

// TestLeaveLastVoter: of two nodes only one votes; when it leaves, the other
// is promoted and takes over before it goes.
func TestLeaveLastVoter(t *testing.T) {
	h := newHarness(t)
	nodes := h.startN(2)
	waitConverged(t, 10*time.Second, nodes, "n1", "n2")
	waitVoters(t, nodes, 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	h.kill("n1")
	waitConverged(t, 10*time.Second, nodes[1:], "n2")
	waitVoters(t, nodes[1:], 1, 0)
	if st := nodes[1].c.Status(); st.Leader != "n2" || !st.HasQuorum {
		t.Errorf("status %+v", st)
	}
}

// TestFiveVoters: from seven members the cluster keeps five voters, and
// back to three when it shrinks.
func TestFiveVoters(t *testing.T) {
	h := newHarness(t)
	nodes := h.startN(7)
	waitConverged(t, 20*time.Second, nodes, names(nodes)...)
	waitVoters(t, nodes, 5, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	last := nodes[6]
	if err := last.c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	h.kill(last.name)
	waitConverged(t, 10*time.Second, nodes[:6], names(nodes[:6])...)
	waitVoters(t, nodes[:6], 3, 3)
}

// TestStartGivesUp: a node whose seeds never answer gives up when its ctx
// ends, releasing its ports.
func TestStartGivesUp(t *testing.T) {
	h := newHarness(t)
	cfg := h.config("n2", "n1") // nobody on n1
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Start(ctx, cfg, nil); !errors.Is(err, ErrNoTable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrNoTable and the deadline", err)
	}
	h.start("n2", h.config("n2", "")) // the ports are free again
}

// TestGossipKey: nodes with the same key form a cluster; one with another
// key cannot join it.
func TestGossipKey(t *testing.T) {
	h := newHarness(t)
	key := []byte("0123456789abcdef")
	with := func(name, join string, key []byte) Config {
		cfg := h.config(name, join)
		cfg.GossipKey = key
		return cfg
	}
	nodes := []*testNode{h.start("n1", with("n1", "", key)), h.start("n2", with("n2", "n1", key))}
	waitConverged(t, 10*time.Second, nodes, "n1", "n2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c, err := Start(ctx, with("n3", "n1", []byte("fedcba9876543210")), nil); err == nil {
		c.Close()
		t.Fatal("a node with another gossip key joined")
	}
}
