package cluster

import (
	"encoding/binary"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/sluicedb/sluice/internal/varbin"
)

// nodeMeta is what a node gossips about itself, in memberlist's NodeMeta
// (at most 512 bytes): a version byte, a flags byte, then the cluster, RESP
// and FlatBuffers addresses as uvarint-prefixed strings.
type nodeMeta struct {
	ClusterAddr string
	Meta        Meta
	// Leaving is set by Leave: the leader takes the node out of the table
	// and out of raft while it is still up.
	Leaving bool
	// Boot is random per process start. A member whose Boot changed
	// restarted and lost its memory: the leader takes it out of the table
	// and hands its slots back to it as to a new member.
	Boot uint64
}

const (
	metaVersion = 2
	flagLeaving = 1 << 0
)

func (m nodeMeta) encode() []byte {
	var flags byte
	if m.Leaving {
		flags |= flagLeaving
	}
	b := []byte{metaVersion, flags}
	b = appendString(b, m.ClusterAddr)
	b = appendString(b, m.Meta.RESPAddr)
	b = appendString(b, m.Meta.FBAddr)
	return binary.AppendUvarint(b, m.Boot)
}

func decodeMeta(b []byte) (nodeMeta, bool) {
	d := varbin.Reader{B: b}
	if d.Byte() != metaVersion {
		return nodeMeta{}, false
	}
	var m nodeMeta
	m.Leaving = d.Byte()&flagLeaving != 0
	m.ClusterAddr = d.String()
	m.Meta.RESPAddr = d.String()
	m.Meta.FBAddr = d.String()
	m.Boot = d.Uvarint()
	return m, !d.Err
}

// peerState is a member as gossip sees it on this node.
type peerState struct {
	id, gossipAddr string
	meta           nodeMeta
	state          MemberState // Alive, Dead or Left (Suspect is read from memberlist)
	since          time.Time   // when state last changed
}

// delegate is memberlist's Delegate and EventDelegate for a Cluster.
type delegate struct {
	c *Cluster
}

// NodeMeta implements memberlist.Delegate.
func (d delegate) NodeMeta(limit int) []byte {
	b := *d.c.meta.Load()
	if len(b) > limit {
		d.c.log.Error("node meta too large for gossip", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}

// NotifyMsg implements memberlist.Delegate; no user messages are sent.
func (d delegate) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate.
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState implements memberlist.Delegate; state travels through raft.
func (d delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (d delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin implements memberlist.EventDelegate.
func (d delegate) NotifyJoin(n *memberlist.Node) { d.c.gossipEvent(n, Alive) }

// NotifyLeave implements memberlist.EventDelegate: a failure or a leave.
func (d delegate) NotifyLeave(n *memberlist.Node) {
	s := Dead
	if n.State == memberlist.StateLeft {
		s = Left
	}
	d.c.gossipEvent(n, s)
}

// NotifyUpdate implements memberlist.EventDelegate: new meta.
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.c.gossipEvent(n, Alive) }

// gossipEvent records what memberlist reported and wakes the leader's
// reconciliation. It runs inside memberlist, so it must not block.
func (c *Cluster) gossipEvent(n *memberlist.Node, s MemberState) {
	meta, ok := decodeMeta(n.Meta)
	if !ok && s == Alive {
		c.log.Warn("ignoring member with unreadable meta", "node", n.Name, "addr", n.Address())
		return
	}
	c.gossipMu.Lock()
	p := c.gossip[n.Name]
	if p == nil {
		p = &peerState{id: n.Name}
		c.gossip[n.Name] = p
	}
	p.gossipAddr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	if ok {
		p.meta = meta
	}
	changed := p.state != s
	if changed || p.since.IsZero() {
		p.state, p.since = s, time.Now()
	}
	addr := p.meta.ClusterAddr
	c.gossipMu.Unlock()
	if n.Name != c.id && changed {
		c.log.Info("member "+s.String(), "node", n.Name, "gossip", p.gossipAddr, "cluster", addr)
	}
	if s != Alive {
		// Fail the calls in flight to it now rather than at their deadlines.
		go c.dropPool(n.Name)
	}
	c.kick()
}

// gossipView returns a copy of what gossip knows, with Suspect filled in
// from memberlist's own states.
func (c *Cluster) gossipView() map[string]peerState {
	suspect := map[string]bool{}
	for _, n := range c.ml.Members() {
		if n.State == memberlist.StateSuspect {
			suspect[n.Name] = true
		}
	}
	c.gossipMu.Lock()
	defer c.gossipMu.Unlock()
	v := make(map[string]peerState, len(c.gossip))
	for id, p := range c.gossip {
		q := *p
		if q.state == Alive && suspect[id] {
			q.state = Suspect
		}
		v[id] = q
	}
	return v
}

// gossipState returns gossip's view of one member. Suspect comes from a
// copy of memberlist's states refreshed every Timing.Reconcile, so that this
// lookup (Member, on every MOVED reply) stays a map read.
func (c *Cluster) gossipState(id string) (peerState, bool) {
	c.gossipMu.Lock()
	p := c.gossip[id]
	var q peerState
	if p != nil {
		q = *p
	}
	c.gossipMu.Unlock()
	if p == nil {
		return q, false
	}
	if q.state == Alive && (*c.suspects.Load())[id] {
		q.state = Suspect
	}
	return q, true
}

// refreshSuspects copies which members memberlist suspects.
func (c *Cluster) refreshSuspects() {
	m := map[string]bool{}
	for _, n := range c.ml.Members() {
		if n.State == memberlist.StateSuspect {
			m[n.Name] = true
		}
	}
	c.suspects.Store(&m)
}

// kick wakes the reconciliation loop.
func (c *Cluster) kick() {
	select {
	case c.kicks <- struct{}{}:
	default:
	}
}

// reconnectLoop keeps trying to reach agreed members that gossip lost (dead
// or never heard of), with a backoff per member from Timing.Reconcile up to
// 16 times that. memberlist alone stops gossiping to dead nodes after a
// while; this is what heals a long partition and finds restarted nodes.
func (c *Cluster) reconnectLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.timing.Reconcile)
	defer tick.Stop()
	type retry struct {
		at   time.Time
		wait time.Duration
	}
	retries := map[string]retry{}
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		now := time.Now()
		for _, r := range c.agreed.Load().membersOrNil() {
			if r.ID == c.id || r.State == Left || r.GossipAddr == "" {
				continue
			}
			p, ok := c.gossipState(r.ID)
			if ok && p.state != Dead {
				delete(retries, r.ID)
				continue
			}
			rt := retries[r.ID]
			if now.Before(rt.at) {
				continue
			}
			rt.wait = min(max(2*rt.wait, c.timing.Reconcile), 16*c.timing.Reconcile)
			rt.at = now.Add(rt.wait)
			retries[r.ID] = rt
			if _, err := c.ml.Join([]string{r.GossipAddr}); err == nil {
				c.log.Info("reached lost member again", "node", r.ID, "gossip", r.GossipAddr)
			}
			select {
			case <-c.stop:
				return
			default:
			}
		}
	}
}
