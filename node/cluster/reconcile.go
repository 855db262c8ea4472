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
	planSince time.Time            // when this leader started or found the plan in progress
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

	table, target, plan := c.placeSlots(cur, next, l)
	if table != cur.table || target != cur.target || plan != cur.plan || !slices.Equal(next, cur.members) {
		if err := c.apply(&agreed{members: next, table: table, target: target, plan: plan}); err != nil {
			return err
		}
	}
	// One pass adds new members as non-voters, the next promotes them:
	// run passes until nothing changes, so that growing from one voter to
	// three spends only a commit or two with two voters, either of whose
	// loss would stop raft.
	for range 4 {
		changed, err := c.manageVoters(next, view, table)
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
		r := record{ID: id, GossipAddr: p.gossipAddr, ClusterAddr: p.meta.ClusterAddr, Meta: p.meta.Meta, Boot: p.meta.Boot}
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

// placeSlots is step 2: the table, and the target and plan of a move in
// progress (see handoff.go).
func (c *Cluster) placeSlots(cur *agreed, next []record, l *leadership) (table, target *ring.Table, plan uint64) {
	table, target, plan = cur.table, cur.target, cur.plan
	var alive []ring.Member
	for _, r := range next {
		if r.State == Alive {
			alive = append(alive, ring.Member{ID: r.ID})
		}
	}
	replicas := c.replicaTarget(len(alive))
	if table == nil {
		if len(alive) == 0 {
			return table, nil, plan
		}
		t, err := ring.Compute(alive, replicas, nil)
		if err != nil {
			c.log.Error("cannot compute a slot table", "err", err)
			return table, nil, plan
		}
		c.log.Info("first slot table", "epoch", t.Epoch, "members", len(alive), "replicas", t.ReplicaCount())
		return t, nil, plan
	}
	// Failover: members of the table that failed or restarted lose their
	// slots at once, to their replicas.
	var keep []ring.Member
	var lost []string
	for _, m := range table.Members() {
		r, _ := findRecord(next, m.ID)
		old, _ := cur.find(m.ID)
		restarted := old.Boot != 0 && r.Boot != 0 && r.Boot != old.Boot
		if r.State == Dead || restarted {
			lost = append(lost, m.ID)
			continue
		}
		keep = append(keep, ring.Member{ID: m.ID})
	}
	if len(lost) > 0 {
		if len(keep) == 0 {
			// Nobody holds what they held: the data is gone, and the
			// members that come back start the table's slots empty.
			c.log.Warn("every member of the slot table was lost", "lost", lost)
			return table, nil, plan
		}
		t, err := ring.Compute(keep, c.replicaTarget(len(keep)), table)
		if err != nil {
			c.log.Error("cannot compute a slot table", "err", err)
			return table, target, plan
		}
		c.log.Info("failover: slots of lost members go to their replicas", "lost", lost, "epoch", t.Epoch,
			"members", len(keep), "replicas", t.ReplicaCount(), "dropped_plan", target != nil)
		return t, nil, plan
	}
	switch {
	case len(alive) == 0 || tableFits(table, alive, replicas):
		if target != nil {
			c.log.Info("slot move no longer needed", "plan", plan)
		}
		return table, nil, plan
	case target == nil || !tableFits(target, alive, replicas):
		t, err := ring.Compute(alive, replicas, table)
		if err != nil {
			c.log.Error("cannot compute a slot table", "err", err)
			return table, target, plan
		}
		plan++
		l.planSince = time.Now()
		c.log.Info("moving slots", "plan", plan, "members", len(alive), "replicas", t.ReplicaCount())
		return table, t, plan
	}
	if l.planSince.IsZero() {
		l.planSince = time.Now() // a plan this leader inherited
	}
	done, missing := c.handedOff(&agreed{table: table, plan: plan})
	if !done && time.Since(l.planSince) < c.timing.HandOff {
		return table, target, plan
	}
	if !done {
		c.log.Warn("hand-off timed out, switching anyway", "plan", plan, "not_reported", missing)
	}
	c.log.Info("new slot table", "epoch", target.Epoch, "plan", plan, "members", len(target.Members()),
		"replicas", target.ReplicaCount(), "took", time.Since(l.planSince).Round(time.Millisecond))
	return target, nil, plan
}

func findRecord(rs []record, id string) (record, bool) {
	i, ok := slices.BinarySearchFunc(rs, id, func(r record, id string) int { return cmp.Compare(r.ID, id) })
	if !ok {
		return record{}, false
	}
	return rs[i], true
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
//   - dead non-voters, leaving members once the table no longer names them,
//     and members no longer agreed are removed.
func (c *Cluster) manageVoters(next []record, view map[string]peerState, table *ring.Table) (changed bool, err error) {
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
		// A leaving member stays until the table no longer names it: it
		// must learn that table to know its hand-off is over.
		left := r.State == Left && (table == nil || !table.Has(id))
		gone := !agreed || left || (s.Suffrage != raft.Voter && r.State == Dead)
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
