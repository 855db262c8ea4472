package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Moving slots. The leader never switches a slot to a node that does not
// hold it yet, unless the slot's owner is lost:
//
//   - When the members change (a join, a graceful leave, a new replica
//     count), the leader agrees a target table and a plan number alongside
//     the table in force. Every member of the table runs Handler.HandOff for
//     the plan: the node feeds each slot it owns to the nodes the target
//     adds to it (and keeps feeding them its writes), then stops writing the
//     slots it gives away, and reports to the leader. Once every member of
//     the table has reported (or Timing.HandOff passed), the leader makes
//     the target the table. Writes to a slot being given away wait, between
//     the report and the switch, for the new table (a few milliseconds).
//   - When a member of the table fails (memberlist declares it dead) or
//     comes back as a new process (its Boot changed: it lost its memory),
//     the leader at once agrees a table without it, computed with the
//     table in force as prev, so each of its slots goes to its first
//     replica, which holds its data; any plan in progress is dropped. A
//     restarted member then comes back through a plan like any new member.
//
// Members report with msgHandedOff to whoever leads, every Timing.Reconcile
// until the plan ends, so a new leader learns the reports too.

// handoffState is this node's run of Handler.HandOff for the latest plan.
type handoffState struct {
	mu     sync.Mutex
	plan   uint64
	stop   context.CancelFunc
	active bool
}

func (h *handoffState) cancel() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
	h.active = false
}

func newBoot() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1 // never 0, which means unknown
}

// serving reports whether the agreed state knows this process as this node
// (one atomic load: routing asks on every command).
func (c *Cluster) serving() bool { return !c.stale.Load() }

// noteServing updates serving for a newly agreed state, and reports
// whether it changed.
func (c *Cluster) noteServing(a *agreed) bool {
	r, ok := a.find(c.id)
	stale := ok && r.Boot != 0 && r.Boot != c.boot
	return c.stale.Swap(stale) != stale
}

// quorumLoop keeps HasQuorum's flag fresh: ten times a heartbeat timeout.
func (c *Cluster) quorumLoop() {
	defer c.wg.Done()
	tick := time.NewTicker(max(c.timing.HeartbeatTimeout/10, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		has := c.status().HasQuorum
		if was := c.quorum.Swap(has); was != has {
			if has {
				c.log.Info("in touch with a raft quorum again: taking writes")
			} else {
				c.log.Warn("cut off from a raft quorum: refusing writes until it is back")
			}
		}
	}
}

// startHandOff runs the handler's HandOff for a new plan in the background,
// and cancels the run for a plan that ended or was replaced.
func (c *Cluster) startHandOff(p Placement) {
	h := &c.handoff
	h.mu.Lock()
	defer h.mu.Unlock()
	if p.Target != nil && h.active && h.plan == p.Plan {
		return
	}
	if h.stop != nil {
		h.stop()
		h.stop = nil
	}
	h.active = false
	if p.Target == nil || c.handler == nil {
		return
	}
	if !p.Table.Has(c.id) {
		return // nothing of the table is here to hand over
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.plan, h.stop, h.active = p.Plan, cancel, true
	c.wg.Add(1)
	go c.runHandOff(ctx, p)
}

func (c *Cluster) runHandOff(ctx context.Context, p Placement) {
	defer c.wg.Done()
	start := time.Now()
	if err := c.handler.HandOff(ctx, p); err != nil {
		if ctx.Err() == nil {
			c.log.Warn("hand-off failed", "plan", p.Plan, "err", err)
		}
		return
	}
	c.log.Info("slots handed off", "plan", p.Plan, "took", time.Since(start).Round(time.Millisecond))
	tick := time.NewTicker(c.timing.Reconcile)
	defer tick.Stop()
	for {
		c.reportHandedOff(ctx, p.Plan)
		select {
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

// reportHandedOff tells the leader this node is done with plan.
func (c *Cluster) reportHandedOff(ctx context.Context, plan uint64) {
	_, leader := c.raft.LeaderWithID()
	if leader == "" {
		return
	}
	if string(leader) == c.id {
		c.handedOffBy(c.id, plan)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.timing.DialTimeout)
	defer cancel()
	payload := binary.AppendUvarint(nil, plan)
	payload = append(payload, c.id...)
	_, _, _ = c.request(ctx, string(leader), msgHandedOff, len(payload), func(b []byte) []byte {
		return append(b, payload...)
	})
}

// handedOffBy records a member's report and wakes the reconciliation.
func (c *Cluster) handedOffBy(id string, plan uint64) {
	c.doneMu.Lock()
	if plan > c.doneBy[id] {
		c.doneBy[id] = plan
	}
	c.doneMu.Unlock()
	c.kick()
}

// answerHandedOff serves msgHandedOff: uvarint plan, then the member's ID.
func (c *Cluster) answerHandedOff(out []byte, id uint32, payload []byte) []byte {
	plan, k := binary.Uvarint(payload)
	if k <= 0 {
		return appendFail(out, id, "malformed hand-off report")
	}
	if c.raft.State() != raft.Leader {
		return appendFail(out, id, "not the raft leader")
	}
	c.handedOffBy(string(payload[k:]), plan)
	return appendHeader(out, msgReply, id, 0)
}

// handedOff reports whether every member of the table reported plan done.
func (c *Cluster) handedOff(a *agreed) (bool, []string) {
	c.doneMu.Lock()
	defer c.doneMu.Unlock()
	var missing []string
	for _, m := range a.table.Members() {
		if c.doneBy[m.ID] < a.plan {
			missing = append(missing, m.ID)
		}
	}
	return len(missing) == 0, missing
}

func (c *Cluster) replicate(ctx context.Context, nodeID string, payload []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if nodeID == c.id {
		return errors.New("cluster: replicating to itself")
	}
	typ, reply, err := c.request(ctx, nodeID, msgReplicate, len(payload), func(b []byte) []byte {
		return append(b, payload...)
	})
	switch {
	case err != nil:
		return err
	case typ == msgReply:
		return nil
	case typ == msgFail:
		return fmt.Errorf("cluster: %s: %s", nodeID, reply)
	}
	return fmt.Errorf("cluster: %s: unexpected reply type %d", nodeID, typ)
}

// serveReplicate runs Handler.ServeReplicate for msgReplicate. A panicking
// handler fails this request, not the process.
func (c *Cluster) serveReplicate(payload []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("replication handler panicked", "panic", p)
			err = errors.New("internal error applying replication")
		}
	}()
	if c.handler == nil {
		return errors.New("node has no handler")
	}
	return c.handler.ServeReplicate(payload)
}
