package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/sluicedb/sluice/ring"
)

// The raft leader reconciles the agreed state with what gossip sees, on
// every gossip event and every Timing.Reconcile:
//
//  1. Members: alive ones (suspects included, so a slow node keeps its
//     slots until it is declared dead) with their gossiped addresses;
//     leaving ones marked Left; dead ones kept as Dead until Timing.Reap so
//     every node keeps trying to reach them (a healed partition rejoins by
//     itself); ones that left dropped.
//  2. The table: ring.Compute over the alive members with the table in force
//     as prev, so a change moves about 1/N of the slots. Members and table go
//     in one raft entry, so every owner in a table is an agreed member.
//  3. Raft's configuration, one change at a time: see manageVoters.
//
// A new leader first waits for its FSM to apply everything before it (a
// raft barrier), and for members it has never heard from by gossip it
// waits a grace period (unknownGrace) before calling them dead: after a
// restart of the whole cluster, gossip takes a moment to find everyone, and
// a table computed before would move every slot twice.

// reconcileLoop runs reconcile while this node leads.
func (c *Cluster) reconcileLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.timing.Reconcile)
	defer tick.Stop()
	leaderCh := c.raft.LeaderCh()
	var l leadership
	for {
		select {
		case <-c.stop:
			return
		case leads := <-leaderCh:
			l = leadership{}
			if leads {
				c.log.Info("raft leadership acquired", "node", c.id)
			}
		case <-c.kicks:
		case <-tick.C:
		}
		c.refreshSuspects()
		if c.raft.State() != raft.Leader {
			l = leadership{}
			continue
		}
		if err := c.reconcile(&l); err != nil && !errors.Is(err, raft.ErrNotLeader) &&
			!errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, raft.ErrRaftShutdown) {
			c.log.Warn("cluster reconciliation failed, retrying", "err", err)
		}
	}
}

// leadership is what the leader remembers during its term.
type leadership struct {
	since     time.Time            // zero until the barrier passed
	deadSince map[string]time.Time // when each dead member was first seen dead
}

// unknownGrace is how long a new leader keeps agreed members that gossip
// has not reported at all: long enough for a push-pull or a reconnect.
func (c *Cluster) unknownGrace() time.Duration {
	return 3*c.timing.Reconcile + time.Duration(c.timing.SuspicionMult)*c.timing.ProbeInterval
}

func (c *Cluster) reconcile(l *leadership) error {
	if l.since.IsZero() {
		if err := c.raft.Barrier(c.timing.DialTimeout).Error(); err != nil {
			return err
		}
		l.since = time.Now()
		l.deadSince = map[string]time.Time{}
	}
	cur := c.agreed.Load()
	if cur == nil {
		cur = &agreed{}
	}
	view := c.gossipView()
	next := c.nextMembers(cur, view, l)

	var alive []ring.Member
	for _, r := range next {
		if r.State == Alive {
			alive = append(alive, ring.Member{ID: r.ID})
		}
	}
	table := cur.table
	if len(alive) > 0 && !tableFits(table, alive, c.replicaTarget(len(alive))) {
		t, err := ring.Compute(alive, c.replicaTarget(len(alive)), table)
		if err != nil {
			return fmt.Errorf("compute table: %w", err)
		}
		table = t
	}
	if table != cur.table || !slices.Equal(next, cur.members) {
		if err := c.apply(&agreed{members: next, table: table}); err != nil {
			return err
		}
		if table != cur.table {
			c.log.Info("new slot table", "epoch", table.Epoch, "members", len(alive), "replicas", table.ReplicaCount())
		}
	}
	// One pass adds new members as non-voters, the next promotes them:
	// run passes until nothing changes, so that growing from one voter to
	// three spends only a commit or two with two voters, either of whose
	// loss would stop raft.
	for range 4 {
		changed, err := c.manageVoters(next, view)
		if err != nil || !changed {
			return err
		}
	}
	return nil
}

// nextMembers is step 1: the member list the leader wants agreed.
func (c *Cluster) nextMembers(cur *agreed, view map[string]peerState, l *leadership) []record {
	now := time.Now()
	byID := map[string]record{}
	for id, p := range view {
		r := record{ID: id, GossipAddr: p.gossipAddr, ClusterAddr: p.meta.ClusterAddr, Meta: p.meta.Meta}
		switch {
		case p.state == Left, p.state == Dead && p.meta.Leaving:
			continue // gone for good
		case p.state == Dead:
			r.State = Dead
		case p.meta.Leaving:
			r.State = Left
		default:
			r.State = Alive
		}
		byID[id] = r
	}
	for _, r := range cur.members {
		if _, known := view[r.ID]; known {
			continue
		}
		if now.Sub(l.since) >= c.unknownGrace() {
			r.State = Dead
		}
		byID[r.ID] = r
	}
	next := make([]record, 0, len(byID))
	for id, r := range byID {
		if r.State != Dead {
			delete(l.deadSince, id)
		} else if first, ok := l.deadSince[id]; !ok {
			l.deadSince[id] = now
		} else if now.Sub(first) > c.timing.Reap {
			c.log.Info("dropping member dead too long", "node", id, "dead_for", now.Sub(first).Round(time.Second))
			continue
		}
		next = append(next, r)
	}
	slices.SortFunc(next, func(a, b record) int { return cmp.Compare(a.ID, b.ID) })
	return next
}

// replicaTarget is the replica count for n members: Config.Replicas, by
// default 1 once there are two nodes.
func (c *Cluster) replicaTarget(n int) int {
	r := c.replicas
	if r < 0 {
		r = 0
		if n >= 2 {
			r = 1
		}
	}
	return min(r, ring.MaxReplicas)
}

// tableFits reports whether t already serves exactly these members with
// this many replicas.
func tableFits(t *ring.Table, alive []ring.Member, replicas int) bool {
	if t == nil {
		return false
	}
	have := t.Members()
	if len(have) != len(alive) || t.ReplicaCount() != min(replicas, len(alive)-1) {
		return false
	}
	for i := range have {
		if have[i].ID != alive[i].ID {
			return false
		}
	}
	return true
}

// apply commits a new agreed state through raft.
func (c *Cluster) apply(a *agreed) error {
	b, err := encodeState([]byte{opState}, a)
	if err != nil {
		return err
	}
	f := c.raft.Apply(b, c.timing.DialTimeout)
	if err := f.Error(); err != nil {
		return err
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// voterTarget is how many voters a cluster of n members (alive or dead,
// not leaving) keeps: 3, or 5 from 7 members, never more than n, and odd,
// since an even count tolerates no more failures than the odd one below it.
func voterTarget(n int) int {
	limit := 3
	if n >= 7 {
		limit = 5
	}
	t := min(limit, n)
	if t%2 == 0 {
		t--
	}
	return max(t, 1)
}

// manageVoters is step 3, the raft configuration. Each change waits for the
// previous one to commit, and none ever leaves a majority of the voters
// dead:
//
//   - alive members not in raft join as non-voters (and a member whose
//     cluster address changed is re-added at the new one);
//   - while fewer alive voters than voterTarget, non-voters that were
//     already in raft before this pass (so they have had time to catch up)
//     are promoted, in ID order;
//   - a dead voter is removed only once the alive voters reach the target
//     without it, that is once it has been replaced; until then it stays a
//     voter, so a node that only restarted comes back as one;
//   - with no dead voters left, voters beyond the target are demoted;
//   - dead non-voters, leaving members (already out of the table) and
//     members no longer agreed are removed.
func (c *Cluster) manageVoters(next []record, view map[string]peerState) (changed bool, err error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return false, err
	}
	// change makes one configuration change and waits for it to commit.
	change := func(what string, id raft.ServerID, args ...any) func(raft.IndexFuture) error {
		return func(f raft.IndexFuture) error {
			if err := f.Error(); err != nil {
				return fmt.Errorf("%s %s: %w", what, id, err)
			}
			c.log.Info(what, append([]any{"node", id}, args...)...)
			changed = true
			return nil
		}
	}
	servers := f.Configuration().Servers
	state := map[string]record{}
	total := 0
	for _, r := range next {
		state[r.ID] = r
		if r.State != Left {
			total++
		}
	}
	isAlive := func(id string) bool {
		p, ok := view[id]
		return state[id].State == Alive && ok && (p.state == Alive || p.state == Suspect)
	}
	target := voterTarget(total)
	timeout := c.timing.DialTimeout

	inRaft := map[string]raft.Server{}
	for _, s := range servers {
		inRaft[string(s.ID)] = s
	}
	for _, r := range next {
		if r.ID == c.id || !isAlive(r.ID) {
			continue
		}
		s, ok := inRaft[r.ID]
		switch {
		case !ok:
			id := raft.ServerID(r.ID)
			if err := change("added raft non-voter", id, "addr", r.ClusterAddr)(
				c.raft.AddNonvoter(id, raft.ServerAddress(r.ClusterAddr), 0, timeout)); err != nil {
				return changed, err
			}
		case string(s.Address) != r.ClusterAddr:
			add := c.raft.AddNonvoter
			if s.Suffrage == raft.Voter {
				add = c.raft.AddVoter
			}
			if err := change("moved raft server", s.ID, "from", s.Address, "to", r.ClusterAddr)(
				add(s.ID, raft.ServerAddress(r.ClusterAddr), 0, timeout)); err != nil {
				return changed, err
			}
		}
	}

	var aliveVoters, deadVoters, candidates []raft.Server
	for _, s := range servers {
		id := string(s.ID)
		switch {
		case s.Suffrage == raft.Voter && isAlive(id):
			aliveVoters = append(aliveVoters, s)
		case s.Suffrage == raft.Voter && state[id].State == Dead:
			deadVoters = append(deadVoters, s)
		case s.Suffrage == raft.Nonvoter && isAlive(id):
			candidates = append(candidates, s)
		}
	}
	for len(aliveVoters) < target && len(candidates) > 0 {
		s := candidates[0]
		candidates = candidates[1:]
		if err := change("promoted raft non-voter", s.ID, "voters", len(aliveVoters)+1, "target", target)(
			c.raft.AddVoter(s.ID, s.Address, 0, timeout)); err != nil {
			return changed, err
		}
		aliveVoters = append(aliveVoters, s)
	}
	if len(aliveVoters) >= target {
		for _, s := range deadVoters {
			if err := change("removed dead raft voter, replaced", s.ID)(
				c.raft.RemoveServer(s.ID, 0, timeout)); err != nil {
				return changed, err
			}
		}
		deadVoters = nil
	}
	if len(deadVoters) == 0 && len(aliveVoters) > target {
		slices.SortFunc(aliveVoters, func(a, b raft.Server) int { return cmp.Compare(b.ID, a.ID) })
		for _, s := range aliveVoters {
			if len(aliveVoters) <= target {
				break
			}
			if string(s.ID) == c.id {
				continue
			}
			if err := change("demoted raft voter", s.ID, "target", target)(
				c.raft.DemoteVoter(s.ID, 0, timeout)); err != nil {
				return changed, err
			}
			aliveVoters = slices.DeleteFunc(aliveVoters, func(v raft.Server) bool { return v.ID == s.ID })
		}
	}
	for _, s := range servers {
		id := string(s.ID)
		r, agreed := state[id]
		gone := !agreed || r.State == Left || (s.Suffrage != raft.Voter && r.State == Dead)
		if id == c.id || !gone {
			continue
		}
		if err := change("removed raft server", s.ID, "suffrage", s.Suffrage.String(), "state", r.State.String())(
			c.raft.RemoveServer(s.ID, 0, timeout)); err != nil {
			return changed, err
		}
	}
	return changed, nil
}
